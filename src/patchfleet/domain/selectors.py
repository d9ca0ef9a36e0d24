"""Target expressions: which inventory nodes a run applies to.

An expression is a comma-separated list of selectors; a node is targeted when it matches any:

- ``*``                  every node
- ``web-1``, ``web-*``   node ids (shell-style wildcards)
- ``tag:KEY=VALUE``      nodes whose tag KEY equals VALUE (VALUE may use wildcards)
- ``tag-key:KEY``        nodes that carry tag KEY at all
- ``group:NAME``         nodes in patch group NAME (tag ``PatchGroup`` or ``Patch Group``)
- ``os:NAME``            nodes running AWS OperatingSystem NAME (``os:DEBIAN``,
                         ``os:AMAZON_LINUX*``; case-insensitive)

patchfleet is agentless, so a node's OS is known up front only when the inventory declares it
(``os:`` on the node or in ``defaults``). Statically, a node without a declared OS *may* match an
``os:`` selector and stays selected; at run time :mod:`patchfleet.ops.targeting` reads its
/etc/os-release and decides (:func:`node_selected` with the OS it found).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from patchfleet.domain.baseline import OperatingSystem
from patchfleet.domain.inventory import OS_NAMES, ResolvedNode
from patchfleet.errors import ConfigError

_PREFIXES = ("tag:", "tag-key:", "group:", "os:")
_HELP = "use an id, tag:K=V, tag-key:K, group:NAME, os:NAME or '*'"


def _match_one(selector: str, node: ResolvedNode, operating_system: str | None) -> bool | None:
    if selector == "*":
        return True
    if selector.startswith("tag:"):
        key, _, value = selector[4:].partition("=")
        return key in node.tags and fnmatch.fnmatchcase(node.tags[key], value)
    if selector.startswith("tag-key:"):
        return selector[8:] in node.tags
    if selector.startswith("group:"):
        return node.patch_group is not None and fnmatch.fnmatchcase(
            node.patch_group, selector[6:]
        )
    if selector.startswith("os:"):
        known = operating_system or node.os
        return None if known is None else fnmatch.fnmatchcase(str(known), selector[3:])
    return fnmatch.fnmatchcase(node.id, selector)


def _os_selector(selector: str, source: str) -> str:
    pattern = selector[3:].strip().upper()
    if not pattern:
        raise ConfigError(f"{selector!r} needs an operating system: os:NAME, one of {OS_NAMES}",
                          source=source)
    if not any(fnmatch.fnmatchcase(o, pattern) for o in OperatingSystem):
        raise ConfigError(
            f"{selector!r} matches no operating system; use os:NAME (wildcards allowed, "
            f"e.g. os:AMAZON_LINUX*) with one of {OS_NAMES}",
            source=source,
        )
    return f"os:{pattern}"


def parse_targets(expression: str, source: str = "--targets") -> list[str]:
    """The expression's selectors, validated; ``os:`` names upper-cased."""
    selectors = [s.strip() for s in expression.split(",") if s.strip()]
    if not selectors:
        raise ConfigError("is empty; use '*' for every node, or ids, tag:K=V, group:NAME, "
                          "os:NAME", source=source)
    for i, s in enumerate(selectors):
        if s.startswith("tag:") and "=" not in s:
            raise ConfigError(f"{s!r} needs KEY=VALUE (or use tag-key:KEY)", source=source)
        if s[:3].lower() == "os:":
            selectors[i] = _os_selector(s, source)
        elif ":" in s and not s.startswith(_PREFIXES):
            raise ConfigError(f"{s!r} is not a target selector; {_HELP}", source=source)
    return selectors


def os_selectors(selectors: Sequence[str]) -> list[str]:
    """The ``os:`` selectors among parsed selectors."""
    return [s for s in selectors if s.startswith("os:")]


def node_selected(
    selectors: Sequence[str], node: ResolvedNode, operating_system: str | None = None
) -> bool | None:
    """Whether parsed ``selectors`` select ``node``: True, False, or None when only an ``os:``
    selector could select it and its OS is unknown (not declared, ``operating_system`` not
    given). ``operating_system`` (what the node really runs) takes precedence over ``node.os``.
    """
    undecided = False
    for s in selectors:
        matched = _match_one(s, node, operating_system)
        if matched:
            return True
        undecided = undecided or matched is None
    return None if undecided else False


def select_targets(
    nodes: Sequence[ResolvedNode], expression: str, source: str = "--targets"
) -> list[ResolvedNode]:
    """The nodes the expression selects or may select (an ``os:`` selector and an undeclared
    OS), in inventory order. Selecting nothing is an error."""
    selectors = parse_targets(expression, source)
    chosen = [n for n in nodes if node_selected(selectors, n) is not False]
    if not nodes:
        raise ConfigError(f"{expression!r} selects no node: the inventory lists none; add nodes "
                          "to it (or pass another --inventory)", source=source)
    if not chosen:
        known = ", ".join(
            f"{n.id} (os {n.os})" if n.os and os_selectors(selectors) else n.id
            for n in nodes[:10]
        )
        raise ConfigError(
            f"{expression!r} selects no node; the inventory has: {known}", source=source
        )
    return chosen
