"""The layer table, held by a test: imports point down, never in a cycle; the pure core stays pure.

Layers, top to bottom (a module may import its own layer and any layer below it)::

    cli -> flows -> tasks -> ops
        -> {managers, transport, store, report, config}
        -> {parsers, domain}

``patchfleet/__init__.py``, ``patchfleet/errors.py`` and ``patchfleet/atomicio.py`` (the one
atomic file writer, stdlib only) are importable from every layer (so they import nothing of the
project themselves; the pure core still may not write files). Siblings of one layer may
import each other, but no module takes part in an import cycle.

Every ``import`` counts, wherever it sits: at module level, inside a function (an import moved
into a function hides a cycle from the interpreter, not from the design), under
``if TYPE_CHECKING:`` (the same dependency, only hidden from the interpreter: an annotation that
names an upper layer is still an upward edge), and ``importlib.import_module("literal")``. An
``import_module`` whose argument is not a literal is itself reported, since it hides its edge.

The modules are parsed with :mod:`ast`, not imported: nothing runs, and a module that only
imports its dependency lazily is still caught. One test (``test_pure_core_loads_no_io_library``)
does import the pure core, in a fresh interpreter, to also catch what it pulls in indirectly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Top-level import name -> its folder.
ROOTS = {
    "patchfleet": REPO / "src" / "patchfleet",
    "flows": REPO / "flows",
    "tasks": REPO / "tasks",
}

# Top to bottom; each entry is (layer name, the packages it holds).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("patchfleet.cli",)),
    ("flows", ("flows",)),
    ("tasks", ("tasks",)),
    ("ops", ("patchfleet.ops",)),
    ("adapters", ("patchfleet.managers", "patchfleet.transport", "patchfleet.store",
                  "patchfleet.report", "patchfleet.config")),
    ("core", ("patchfleet.parsers", "patchfleet.domain")),
)
SHARED = frozenset({"patchfleet", "patchfleet.errors", "patchfleet.atomicio"})
ENTRY = frozenset({"patchfleet.__main__"})  # `python -m patchfleet`: may import anything
LOOSE_ALLOWED = frozenset({"__init__.py", "errors.py", "atomicio.py", "__main__.py"})

PURE = ("patchfleet.domain", "patchfleet.parsers")
IO_LIBRARIES = frozenset(
    {"prefect", "asyncssh", "boto3", "botocore", "duckdb", "pyarrow", "pandas"})
# Also no file or YAML I/O in the pure core: no YAML library, no process or filesystem modules.
PURE_FORBIDDEN = IO_LIBRARIES | {"yaml", "subprocess", "shutil", "tempfile", "socket"}
FILE_CALLS = frozenset({"open", "read_text", "read_bytes", "write_text", "write_bytes"})


@dataclass(frozen=True)
class Edge:
    """One import statement's dependency of ``source`` on ``target`` (both module names)."""

    source: str
    target: str
    line: int
    where: str  # "module level", "in a function", "under TYPE_CHECKING"

    @property
    def at(self) -> str:
        return f"{rel(path_of(self.source))}:{self.line}"


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


@cache
def modules() -> dict[str, Path]:
    """Every module of the project, by dotted name (a package by its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for top, folder in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def path_of(module: str) -> Path:
    return modules()[module]


def is_package(module: str) -> bool:
    return path_of(module).name == "__init__.py"


def layer_rank(module: str) -> tuple[str, int] | None:
    """(layer name, rank: 0 is the top) of ``module``; None for shared, entry or unknown ones."""
    for rank, (name, packages) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return name, rank
    return None


def layer_folder(module: str) -> str:
    """The package that puts ``module`` in its layer, as a folder name (``store``, ``flows``)."""
    for _, packages in LAYERS:
        for p in packages:
            if module == p or module.startswith(p + "."):
                return p.rsplit(".", 1)[-1]
    return module


def _own(name: str) -> str | None:
    """The project module an import of ``name`` executes: the longest known prefix."""
    if name.split(".")[0] not in ROOTS:
        return None
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules():
            return candidate
        parts.pop()
    return None


class _Imports(ast.NodeVisitor):
    """Collects every import of one module, wherever it sits, with where it sits."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.package = module if is_package(module) else module.rpartition(".")[0]
        self.found: list[tuple[str, int, str]] = []  # (imported name, line, where)
        self.dynamic: list[int] = []  # lines of import_module calls with a non-literal name
        self._functions = 0
        self._type_checking = 0

    def _where(self) -> str:
        if self._type_checking:
            return "under TYPE_CHECKING"
        return "in a function" if self._functions else "module level"

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        self.visit(node.test)
        self._type_checking += guarded
        for child in node.body:
            self.visit(child)
        self._type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, node.lineno, self._where()))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            stem = ".".join([*base, node.module] if node.module else base)
        else:
            stem = node.module or ""
        for alias in node.names:
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            sub = f"{stem}.{alias.name}"
            self.found.append((sub if sub in modules() else stem, node.lineno, self._where()))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.found.append((arg.value, node.lineno, self._where()))
            else:
                self.dynamic.append(node.lineno)
        self.generic_visit(node)


@cache
def _parsed(module: str) -> _Imports:
    visitor = _Imports(module)
    visitor.visit(ast.parse(path_of(module).read_text(encoding="utf-8"), str(path_of(module))))
    return visitor


def edges() -> Iterator[Edge]:
    """Every import of a project module by a project module (self-imports left out)."""
    seen: set[Edge] = set()
    for module in modules():
        for name, line, where in _parsed(module).found:
            target = _own(name)
            edge = Edge(module, target or "", line, where)
            if target is not None and target != module and edge not in seen:
                seen.add(edge)
                yield edge


def _hidden(edge: Edge) -> str:
    return "" if edge.where == "module level" else f" ({edge.where}: still counts)"


def layer_violations() -> list[str]:
    """One line per import that points up the layer table, or leaves errors/root impure."""
    out: list[str] = []
    for e in edges():
        if e.target in SHARED or e.source in ENTRY:
            if e.source in SHARED and e.target not in SHARED:
                out.append(
                    f"{e.at}: [shared-imports-project] {e.source} imports {e.target}{_hidden(e)}; "
                    "errors.py and patchfleet/__init__.py are imported by every layer, so they "
                    f"must not import any layer. Fix: move what {e.source} needs from "
                    f"{e.target} into {e.source}, or drop the import")
            continue
        if e.source in SHARED:
            out.append(
                f"{e.at}: [shared-imports-project] {e.source} imports {e.target}{_hidden(e)}; "
                "errors.py and patchfleet/__init__.py are imported by every layer, so they must "
                "not import any layer. Fix: drop the import")
            continue
        src, dst = layer_rank(e.source), layer_rank(e.target)
        if src is None or dst is None:
            continue  # reported by test_every_module_has_a_layer
        if dst[1] < src[1]:
            low, high = layer_folder(e.source), layer_folder(e.target)
            out.append(
                f"{e.at}: [upward-import] {e.source} ({src[0]} layer) imports {e.target} "
                f"({dst[0]} layer){_hidden(e)}; {low}/ sits below {high}/. Fix: move the code that "
                f"needs {high}/ up into {high}/ or above, or move what it uses from {high}/ "
                f"down into {low}/ or below, or have a caller above pass it in")
    for module in modules():
        for line in _parsed(module).dynamic:
            out.append(
                f"{rel(path_of(module))}:{line}: [dynamic-import] import_module with a computed "
                "name hides its dependency from this test (usually to dodge a cycle). Fix: import "
                "the module by name at the top of the file, after breaking the cycle")
    return out


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the graph's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(start: str, graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def import_cycles() -> list[str]:
    """One block per cycle: the modules, one shortest loop, then every edge inside it."""
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    by_pair: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges():
        graph[e.source].add(e.target)
        by_pair[(e.source, e.target)].append(e)
    out: list[str] = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        loop = _shortest_cycle(component[0], graph, members)
        out.append(f"[import-cycle] {len(component)} modules: {' -> '.join(loop)}")
        for (source, target), found in sorted(by_pair.items()):
            if source in members and target in members:
                for e in found:
                    out.append(f"    {e.at}: {source} imports {target}{_hidden(e)}")
        out.append(
            "    Fix: move what both sides need into the lower module (or a new one both import), "
            "or merge them; moving an import into a function or under TYPE_CHECKING does not "
            "break a cycle")
    return out


def _report(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n" + "\n".join(problems), pytrace=False)


# --- the tests -----------------------------------------------------------------------------------


def test_the_table_knows_the_project() -> None:
    """Guards the test itself: the scan sees the packages it is about."""
    found = modules()
    for name in ("patchfleet.errors", "patchfleet.domain", "patchfleet.parsers.apt",
                 "patchfleet.store.writer", "patchfleet.cli", "flows.patch_nodes", "tasks.scan"):
        assert name in found, name
    assert sum(1 for _ in edges()) > 100


def test_imports_point_down_the_layers() -> None:
    _report(layer_violations(), "imports that break the layer table "
            "(cli -> flows -> tasks -> ops -> {managers, transport, store, report, config} "
            "-> {parsers, domain}; errors and the package root from anywhere)")


def test_no_import_cycles() -> None:
    _report(import_cycles(), "import cycles (function-level and TYPE_CHECKING imports included)")


def test_every_module_has_a_layer() -> None:
    """A new package must be placed in the table above (or it escapes every rule)."""
    problems = [
        f"{rel(path)}:1: [no-layer] {module} is in no layer. Fix: move it into its layer's "
        "package, or add its package to LAYERS in tests/unit/test_layers.py"
        for module, path in modules().items()
        if module not in SHARED | ENTRY and layer_rank(module) is None
    ]
    _report(problems, "modules outside the layer table")


def test_no_loose_modules_in_the_package_root() -> None:
    root = ROOTS["patchfleet"]
    problems = [
        f"{rel(path)}:1: [loose-module] {path.name} lies loose in src/patchfleet/. Fix: move it "
        "into the package of its layer (domain/, parsers/, managers/, transport/, config/, "
        "store/, report/, ops/ or cli/)"
        for path in sorted(root.glob("*.py"))
        if path.name not in LOOSE_ALLOWED
    ]
    _report(problems, "modules loose in src/patchfleet/ "
            "(only __init__.py, errors.py, atomicio.py, __main__.py)")


def _pure_modules() -> list[str]:
    return [m for m in modules() if any(m == p or m.startswith(p + ".") for p in PURE)]


def pure_core_violations() -> list[str]:
    """Imports of I/O libraries and file-I/O calls in domain/ and parsers/."""
    out: list[str] = []
    for module in _pure_modules():
        where = rel(path_of(module))
        for name, line, how in _parsed(module).found:
            top = name.split(".")[0]
            if top in PURE_FORBIDDEN:
                out.append(
                    f"{where}:{line}: [impure-import] {module} imports {name}"
                    f"{'' if how == 'module level' else f' ({how})'}; domain/ and parsers/ "
                    "are pure. Fix: do the I/O in transport/, store/, config/ or ops/ and pass "
                    "the result in")
        tree = ast.parse(path_of(module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FILE_CALLS:
                out.append(
                    f"{where}:{node.lineno}: [file-io] {module} calls {name}(); domain/ and "
                    "parsers/ do no file I/O. Fix: read or write the file in config/ or store/ "
                    "and pass the text or the parsed data in")
    return out


def test_pure_core_does_no_io() -> None:
    assert "patchfleet.domain.versions" in _pure_modules()
    assert "patchfleet.parsers.apt" in _pure_modules()
    _report(pure_core_violations(), "I/O in the pure core (domain/, parsers/)")


def test_pure_core_loads_no_io_library() -> None:
    """Importing the pure core, in a fresh interpreter (so other tests' imports don't mask it),
    loads no I/O library, directly or through anything it imports."""
    pure = _pure_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {pure!r}: importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {sorted(IO_LIBRARIES)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"importing the pure core loaded: {out}"


# --- the checker checks itself on small made-up trees ---------------------------------------------


def test_tarjan_finds_cycles_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(c for c in strongly_connected(graph) if len(c) > 1) == [["a", "b", "c"]]
    assert _shortest_cycle("a", graph, {"a", "b", "c"}) == ["a", "b", "c", "a"]


def test_every_kind_of_import_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "patchfleet"
    (pkg / "domain").mkdir(parents=True)
    (pkg / "ops").mkdir()
    for init in (pkg, pkg / "domain", pkg / "ops"):
        (init / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "ops" / "scan.py").write_text("")
    (pkg / "domain" / "facts.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import rules\n"
        "from ..errors import ConfigError\n"
        "if TYPE_CHECKING:\n"
        "    from patchfleet.ops import scan\n"
        "def f():\n"
        "    import patchfleet.ops.scan\n"
        "    importlib.import_module('patchfleet.ops')\n"
        "    importlib.import_module(name)\n"
        "    return open('x')\n"
    )
    (pkg / "domain" / "rules.py").write_text("def g():\n    from .facts import f\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOTS", {"patchfleet": pkg})
    for cached in (modules, _parsed):
        cached.cache_clear()
    try:
        found = {(e.source, e.target, e.line, e.where) for e in edges()}
        layers = layer_violations()
        cycles = import_cycles()
        pure = pure_core_violations()
    finally:
        for cached in (modules, _parsed):
            cached.cache_clear()
    facts = "patchfleet.domain.facts"
    assert found == {
        (facts, "patchfleet.domain.rules", 2, "module level"),
        (facts, "patchfleet.errors", 3, "module level"),
        (facts, "patchfleet.ops.scan", 5, "under TYPE_CHECKING"),
        (facts, "patchfleet.ops.scan", 7, "in a function"),
        (facts, "patchfleet.ops", 8, "in a function"),
        ("patchfleet.domain.rules", facts, 2, "in a function"),
    }
    assert [v.split(": [")[1].split("]")[0] for v in layers] == ["upward-import"] * 3 + [
        "dynamic-import"]
    assert cycles[0] == ("[import-cycle] 2 modules: patchfleet.domain.facts -> "
                         "patchfleet.domain.rules -> patchfleet.domain.facts")
    assert any("facts.py:10: [file-io]" in v for v in pure)
