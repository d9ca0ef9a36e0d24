"""The one YAML loader for every file patchfleet reads: strict, bounded, and precise in its errors.

PyYAML's ``safe_load`` keeps the last of two equal keys (an inventory with ``host:`` twice
silently loses one), lets a 2 KB "billion laughs" document expand to billions of nodes for
whatever walks it next, and overflows the stack on a 20,000-deep ``[[[[...``. :class:`StrictLoader`
is a ``SafeLoader`` (no Python objects are ever built) that also:

- rejects a duplicate key in a mapping, naming both lines. Keys brought in by a ``<<:`` merge
  may be overridden, as YAML intends;
- refuses input over :data:`~patchfleet.config.files.MAX_CONFIG_BYTES` (10 MiB);
- refuses nesting deeper than :data:`MAX_DEPTH` lists and mappings, counted after aliases are
  expanded, before it can recurse that deep;
- bounds aliases by what they expand to: anchors and aliases (and ``<<: *defaults`` merges, common
  in Ansible inventories) stay usable, but all alias uses of a document together may add at most
  :data:`MAX_ALIAS_EXPANSION` nodes, and an alias inside the node it names (a recursive
  structure) is refused. Sizes are computed once per node, so the check costs no more than
  reading the document, and a billion-laughs document fails at the first alias over the bound;
- turns every problem (syntax, a bad date, an oversized integer, a limit) into a
  :class:`~patchfleet.errors.ConfigError` naming the file, line and column. Values are quoted
  in messages only in shortened form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from patchfleet.config.files import MAX_CONFIG_BYTES, read_text_file, too_large
from patchfleet.errors import ConfigError

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "StrictLoader",
    "load_yaml_file",
    "parse_yaml",
]

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted (patchfleet's files need fewer than 10)."""
MAX_ALIAS_EXPANSION = 100_000
"""Most nodes that the alias uses of one document may add together."""
_SHOWN = 80
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class _LimitError(yaml.MarkedYAMLError):
    """A document that is valid YAML but over one of the loader's bounds."""

    def __init__(self, kind: str, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.kind = kind


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class StrictLoader(yaml.SafeLoader):
    """SafeLoader plus duplicate-key, depth and alias-expansion checks (see the module doc)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._expanded = 0
        self._measured: dict[int, tuple[int, int]] = {}
        self._own_keys: dict[int, list[Node]] = {}

    # -- scanning: the scanner reads ahead over flow brackets, so it is bounded too -----------

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep(self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise self._too_deep(self.get_mark())
        added: bool = super().add_indent(column)
        return added

    # -- composing: depth and aliases, checked before PyYAML recurses ------------------------

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._check_alias(event)
            return super().compose_node(parent, index)
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise self._too_deep(event.start_mark)
        self._depth += 1
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        # The keys written in this mapping: a ``<<`` merge elsewhere may later splice another
        # mapping's keys into ``node.value`` before this one is constructed.
        self._own_keys[id(node)] = [k for k, _ in node.value
                                    if isinstance(k, ScalarNode) and k.tag != _MERGE_TAG]
        return node

    def _too_deep(self, mark: Any, alias: bool = False) -> _LimitError:
        return _LimitError(
            "YAML nested too deeply",
            f"lists and mappings nest more than {MAX_DEPTH} levels"
            + (" once this alias is expanded" if alias else "")
            + "; patchfleet's files need only a few levels: flatten the structure",
            mark,
        )

    def _check_alias(self, event: yaml.AliasEvent) -> None:
        anchor = str(event.anchor)
        if anchor in self._open_anchors:
            raise _LimitError(
                "recursive YAML alias",
                f"alias *{_short(anchor)} is used inside the node it names, which would nest "
                "without end; write the value out instead",
                event.start_mark,
            )
        target = self.anchors.get(anchor)
        if target is None:
            return  # PyYAML reports the undefined alias
        size, depth = self._measure(target)
        if self._depth + depth > MAX_DEPTH:
            raise self._too_deep(event.start_mark, alias=True)
        self._expanded += size
        if self._expanded > MAX_ALIAS_EXPANSION:
            raise _LimitError(
                "YAML aliases expand too far",
                f"with alias *{_short(anchor)} the document's aliases add more than "
                f"{MAX_ALIAS_EXPANSION} nodes (an alias bomb?); write the values out or use "
                "fewer aliases",
                event.start_mark,
            )

    def _measure(self, root: Node) -> tuple[int, int]:
        """(expanded node count, nesting depth) of a fully composed node, memoised per node.
        Iterative: aliased nodes may nest deeper than Python's recursion limit allows."""
        memo = self._measured
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in memo:
                continue
            kids = _children(node)
            if not ready:
                stack.append((node, True))
                stack.extend((k, False) for k in kids if id(k) not in memo)
                continue
            size = min(1 + sum(memo[id(k)][0] for k in kids), MAX_ALIAS_EXPANSION + 1)
            depth = 0 if isinstance(node, ScalarNode) else (
                1 + max((memo[id(k)][1] for k in kids), default=0))
            memo[id(node)] = (size, depth)
        return memo[id(root)]

    # -- constructing: duplicate keys, and value errors PyYAML lets escape ---------------------

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node in self._own_keys.get(id(node), []):
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {_short(repr(key))} (first at line {seen[key]}); keep only "
                    "one of them",
                    key_node.start_mark,
                )
            seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as err:  # a date like 2024-13-45, a huge integer
            raise yaml.constructor.ConstructorError(
                None, None,
                f"{_short(str(err))}; quote the value if it is meant as text",
                node.start_mark,
            ) from None


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _reader_where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f" at line {line}, column {column}"


def _error(err: yaml.YAMLError, text: str, source: str) -> ConfigError:
    if isinstance(err, _LimitError):
        return ConfigError(f"{err.kind}{_where(err.problem_mark)}: {err.problem}", source=source)
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = _short(str(err.problem or err.context))
        if err.problem and err.context:
            problem += f" ({_short(str(err.context))})"
        return ConfigError(f"not valid YAML{_where(mark)}: {problem}", source=source)
    if isinstance(err, yaml.reader.ReaderError):
        return ConfigError(
            f"not valid YAML{_reader_where(text, err.position)}: {_short(str(err.reason))} "
            f"(character #x{err.character if isinstance(err.character, int) else 0:04x}); "
            "remove it or save the file as UTF-8 text",
            source=source,
        )
    return ConfigError(f"not valid YAML: {_short(str(err))}", source=source)


def parse_yaml(text: str, source: str) -> Any:
    """The one document in ``text`` as plain data (None when empty). ``source`` names the file
    or URL in errors. Raises ConfigError for anything invalid or over a bound."""
    if len(text) > MAX_CONFIG_BYTES:
        raise too_large(source)
    try:
        loader = StrictLoader(text)  # checks the characters already
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise _error(err, text, source) from None


def load_yaml_file(path: Path, missing: str = "file not found") -> Any:
    """Read and parse a YAML file; ``missing`` is the message (with its fix) if it is absent."""
    return parse_yaml(read_text_file(path, missing), str(path))
