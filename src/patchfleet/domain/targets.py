"""Target expressions: which inventory nodes a run applies to.

An expression is a comma-separated list of selectors; a node is targeted when it matches any:

- ``*``                  every node
- ``web-1``, ``web-*``   node ids (shell-style wildcards)
- ``tag:KEY=VALUE``      nodes whose tag KEY equals VALUE (VALUE may use wildcards)
- ``tag-key:KEY``        nodes that carry tag KEY at all
- ``group:NAME``         nodes in patch group NAME (tag ``PatchGroup`` or ``Patch Group``)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import ConfigError


def _match_one(selector: str, node: ResolvedNode) -> bool:
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
    return fnmatch.fnmatchcase(node.id, selector)


def parse_targets(expression: str, source: str = "--targets") -> list[str]:
    selectors = [s.strip() for s in expression.split(",") if s.strip()]
    if not selectors:
        raise ConfigError("is empty; use '*' for every node, or ids, tag:K=V, group:NAME",
                          source=source)
    for s in selectors:
        if s.startswith("tag:") and "=" not in s:
            raise ConfigError(f"{s!r} needs KEY=VALUE (or use tag-key:KEY)", source=source)
        if ":" in s and not s.startswith(("tag:", "tag-key:", "group:")):
            raise ConfigError(
                f"{s!r} is not a target selector; use an id, tag:K=V, tag-key:K, group:NAME "
                "or '*'",
                source=source,
            )
    return selectors


def select_targets(
    nodes: Sequence[ResolvedNode], expression: str, source: str = "--targets"
) -> list[ResolvedNode]:
    """The nodes the expression selects, in inventory order. Selecting nothing is an error."""
    selectors = parse_targets(expression, source)
    chosen = [n for n in nodes if any(_match_one(s, n) for s in selectors)]
    if not chosen:
        known = ", ".join(n.id for n in nodes[:10])
        raise ConfigError(
            f"{expression!r} selects no node; the inventory has: {known}", source=source
        )
    return chosen
