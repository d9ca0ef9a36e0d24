"""The strict YAML loader, and that every loader of a patchfleet file goes through it."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import patchfleet.domain
from patchfleet.config.baselines import load_baseline
from patchfleet.config.files import MAX_CONFIG_BYTES
from patchfleet.config.hooks import load_hooks_file
from patchfleet.config.inventory import load_inventory
from patchfleet.config.overrides import load_install_override
from patchfleet.config.policies import load_deployments
from patchfleet.config.sources import load_nodes_source
from patchfleet.config.yaml_loader import MAX_ALIAS_EXPANSION, MAX_DEPTH, parse_yaml
from patchfleet.errors import ConfigError

# 1.3 KB: nine levels of nine aliases each, 10**9 strings once expanded.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
DEEP_FLOW = "[" * 20_000 + "]" * 20_000
DEEP_BLOCK = "- " * 20_000 + "x\n"


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    assert info.value.source == "f.yaml"
    return info.value


def test_plain_documents_load() -> None:
    assert parse_yaml("a: 1\nb: [x, {c: d}]\n", "f.yaml") == {"a": 1, "b": ["x", {"c": "d"}]}
    assert parse_yaml("", "f.yaml") is None
    assert parse_yaml("# only a comment\n", "f.yaml") is None


def test_duplicate_key_names_both_lines() -> None:
    err = error("nodes:\n  - id: a\n    host: 10.0.0.1\n    host: 10.0.0.2\n")
    assert str(err) == (
        "f.yaml: not valid YAML at line 4, column 5: duplicate key 'host' (first at line 3); "
        "keep only one of them"
    )


def test_duplicate_key_is_found_at_any_depth_and_for_any_scalar_type() -> None:
    assert "line 2" in str(error("1: a\n1: b\n"))
    assert "duplicate key 'x'" in str(error("a:\n  b:\n    - {x: 1, x: 2}\n"))


def test_merge_keys_may_be_overridden_but_not_repeated() -> None:
    text = "base: &base {user: root, port: 22}\nnode:\n  <<: *base\n  port: 2222\n"
    assert parse_yaml(text, "f.yaml")["node"] == {"user": "root", "port": 2222}
    assert "duplicate key 'port' (first at line 4)" in str(error(text + "  port: 2223\n"))


def test_chained_merges_are_not_duplicates() -> None:
    """A merge splices a mapping's keys into another; only keys written twice are duplicates."""
    text = "a: &a {x: 1}\nx: {b: &b {<<: *a, x: 2}}\nc: {<<: *b, y: 3}\n"
    assert parse_yaml(text, "f.yaml")["x"] == {"b": {"x": 2}}


def test_syntax_error_names_line_and_column() -> None:
    err = error("nodes:\n  - id: a\n   host: b\n")
    assert str(err).startswith("f.yaml: not valid YAML at line 3, column")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("when: 2024-13-45\n", "line 1, column 7: month must be in 1..12; quote the value"),
        ("n: " + "9" * 5000 + "\n", "line 1, column 4: Exceeds the limit"),
        ("a: b\nc: \x00\n", "line 2, column 4: special characters are not allowed"),
        ("a: !!python/object/apply:os.system [true]\n", "could not determine a constructor"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1: but found another document"),
        ("a: *nowhere\n", "found undefined alias"),
    ],
)
def test_value_and_character_errors_are_config_errors(text: str, fragment: str) -> None:
    assert fragment in str(error(text))


def test_long_values_are_shortened_in_messages() -> None:
    key = "k" * 5000  # an explicit key: implicit ones are limited to 1024 characters
    message = str(error(f"? {key}\n: 1\n? {key}\n: 2\n"))
    assert "duplicate key" in message and len(message) < 300


def test_alias_bomb_fails_fast() -> None:
    assert len(ALIAS_BOMB) < 2048
    started = time.perf_counter()
    err = error(ALIAS_BOMB)
    assert time.perf_counter() - started < 1.0
    assert str(err).startswith("f.yaml: YAML aliases expand too far at line ")
    assert f"more than {MAX_ALIAS_EXPANSION} nodes" in str(err)


def test_aliases_within_the_bound_work() -> None:
    text = "d: &d {user: root, sudo: true}\n" + "".join(f"n{i}: *d\n" for i in range(1000))
    data = parse_yaml(text, "f.yaml")
    assert data["n999"] == {"user": "root", "sudo": True}


def test_recursive_alias_is_refused() -> None:
    assert str(error("a: &a [1, *a]\n")).startswith("f.yaml: recursive YAML alias at line 1")


@pytest.mark.parametrize("text", [DEEP_FLOW, DEEP_BLOCK, "{a: " * 20_000 + "}" * 20_000])
def test_deep_nesting_fails_fast(text: str) -> None:
    started = time.perf_counter()
    err = error(text)
    assert time.perf_counter() - started < 1.0
    assert str(err).startswith("f.yaml: YAML nested too deeply at line 1")
    assert f"more than {MAX_DEPTH} levels" in str(err)


def test_depth_counts_expanded_aliases() -> None:
    inner = "[" * 60 + "]" * 60
    assert parse_yaml(f"a: &a {inner}\n", "f.yaml") is not None
    err = error(f"a: &a {inner}\nb: {'[' * 60}*a{']' * 60}\n")
    assert "once this alias is expanded" in str(err)


def test_size_is_bounded() -> None:
    assert "larger than 10 MiB" in str(error("a: " + "x" * MAX_CONFIG_BYTES))


# -- every loader uses it ---------------------------------------------------------------------

Loader = Callable[[Path], Any]


def _node_source(path: Path) -> Any:
    return load_nodes_source(str(path))


LOADERS: dict[str, tuple[Loader, str, str]] = {
    # name: (loader, a valid file, a key to repeat on the last line of that file)
    "inventory": (load_inventory, "nodes:\n  - id: a\n    host: h1\n", "    host: h2\n"),
    "node source": (_node_source, "nodes:\n  - id: a\n    host: h1\n", "    host: h2\n"),
    "ansible yaml": (_node_source,
                     "all:\n  hosts:\n    web-1:\n      ansible_host: h1\n",
                     "      ansible_host: h2\n"),
    "baseline": (load_baseline, "name: my-baseline\noperating_system: DEBIAN\n",
                 "operating_system: UBUNTU\n"),
    "policies": (load_deployments, "policies:\n  - name: pol-1\n    targets: '*'\n",
                 "    targets: web\n"),
    "hooks": (load_hooks_file, "pre_install:\n  command: 'true'\n", "  command: 'false'\n"),
    "override list": (load_install_override, "patches:\n  - id: kernel.x86_64\n",
                      "    id: bash.x86_64\n"),
}


@pytest.mark.parametrize("name", list(LOADERS))
def test_every_loader_rejects_duplicate_keys_with_the_line(tmp_path: Path, name: str) -> None:
    load, good, repeat = LOADERS[name]
    path = tmp_path / "file.yaml"
    path.write_text(good)
    load(path)  # the valid file loads
    path.write_text(good + repeat)
    line = good.count("\n") + 1
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: not valid YAML at line {line}, column ")
    assert f"(first at line {line - 1})" in str(info.value)


@pytest.mark.parametrize("name", list(LOADERS))
@pytest.mark.parametrize("text", [ALIAS_BOMB, DEEP_FLOW], ids=["alias-bomb", "deep-list"])
def test_every_loader_refuses_bombs_fast(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"YAML (aliases expand too far|nested too deeply)"):
        LOADERS[name][0](path)
    assert time.perf_counter() - started < 1.0


def test_domain_reads_no_files() -> None:
    """domain/ validates plain data; reading files and YAML is config/'s job."""
    forbidden = ("yaml", "patchfleet.config", "patchfleet.atomicio", "patchfleet.report",
                 "patchfleet.store", "pathlib", "importlib.resources")
    found = []
    for path in Path(patchfleet.domain.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names
                      if any(n == f or n.startswith(f + ".") for f in forbidden)]
    assert found == []
