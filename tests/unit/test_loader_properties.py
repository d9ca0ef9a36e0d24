"""Property tests (hypothesis) for the loaders test_parser_properties.py does not cover: hooks
files, InstallOverrideLists, deployments files (patch policies and maintenance windows) and AWS
baseline JSON (issue 13, "Done when" 2).

Whatever a file holds, these raise only patchfleet's InputError (ConfigError) subclasses, never
a bare ValueError, KeyError, OSError or RecursionError. Inputs are random text, random
mutations of the text of the valid examples in the repository (a slice replaced by random
text), and random mutations of their parsed structure (one value anywhere replaced by random
JSON-like data, or one key dropped), so the checks behind the first key are reached too. Each
test is bounded (``max_examples`` and ``deadline``); the whole file runs in a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchfleet.config.baselines import load_aws_json_file
from patchfleet.config.hooks import load_hooks
from patchfleet.config.overrides import parse_install_override_text
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.baseline_aws import baselines_from_aws_json
from patchfleet.domain.install_override import parse_install_override
from patchfleet.domain.policies import parse_deployments
from patchfleet.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("PATCHFLEET_PROPERTY_EXAMPLES", "40"))
"""Examples per test; raise it for a deeper local search (the CI default keeps the file fast)."""
SETTINGS = settings(max_examples=EXAMPLES, deadline=2000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

HOOKS_TEXT = (ROOT / "deployments" / "hooks.example.yaml").read_text()
POLICIES_TEXT = (ROOT / "deployments" / "policies.yaml").read_text()
AWS_TEXTS = [p.read_text() for p in sorted((ROOT / "tests" / "cases" / "baselines" / "aws")
                                           .glob("*.json"))]
OVERRIDE_TEXT = """\
# the example of AWS's documentation, and the forms patchfleet reads
patches:
  - id: 'kernel.x86_64'
  - id: 'bind*.x86_64'
    title: '32:9.8.2-0.62.rc1.57.amzn1'
  - id: openssl
  - id: 'libc6'
    title: '2.36-9+deb12u*'
"""

_KEYS = ["pre_install", "post_install", "on_exit", "command", "script", "timeout", "patches",
         "id", "title", "policies", "windows", "name", "operation", "scan_schedule",
         "install_schedule", "schedule", "duration_hours", "cutoff_hours", "tasks", "priority",
         "targets", "inventory", "hooks", "max_concurrency", "max_errors", "Name",
         "OperatingSystem", "ApprovalRules", "PatchRules", "PatchFilterGroup", "PatchFilters",
         "Key", "Values", "ApproveAfterDays", "ComplianceLevel", "EnableNonSecurity"]
_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
            | st.sampled_from(["cron(0 1 30 2 ? *)", "rate(99999999999999999999 minutes)",
                               "at(1999-01-01T00:00:00)", "100%", "0", "-1", "a" * 300,
                               "\x00", "../../etc/passwd", "/etc/passwd", "Scan", "Install",
                               "UTC", "Mars/Olympus", "DEBIAN", "PRIORITY", "*"]))
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(_KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=15)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed document a value can be replaced (the root included)."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _paths(value, (*prefix, i))
    return found


def _replace(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(tree, default=str))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


def _structural(examples: list[Any]) -> st.SearchStrategy[Any]:
    """A valid example with one value (anywhere) replaced by random data, or a key dropped."""
    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        base = draw(st.sampled_from(examples))
        path = draw(st.sampled_from(_paths(base)))
        if path and draw(st.booleans()) and draw(st.booleans()):
            parent = _replace(base, (), base)
            node = json.loads(json.dumps(parent, default=str))
            holder = node
            for step in path[:-1]:
                holder = holder[step]
            del holder[path[-1]]
            return node
        return _replace(base, path, draw(_JSON))

    return mutate()


def _textual(examples: list[str]) -> st.SearchStrategy[str]:
    """A valid example's text with a random slice replaced by random text, or random text."""
    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        base = draw(st.sampled_from(examples))
        i = draw(st.integers(0, len(base)))
        j = draw(st.integers(i, min(len(base), i + 80)))
        return base[:i] + draw(st.text(max_size=40)) + base[j:]

    return st.one_of(mutate(), st.text(max_size=300))


def _only_input_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(InputError):
        call()


# -- hooks files ----------------------------------------------------------------------------------

HOOKS_DATA = parse_yaml(HOOKS_TEXT, "hooks.example.yaml")


@pytest.fixture(scope="module")
def hooks_dir() -> Any:
    """A folder with one real script, so ``script:`` values can also resolve."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "check.sh").write_text("#!/bin/sh\ntrue\n")
        yield Path(folder)


def test_hooks_from_mutated_structure_raise_only_input_errors(hooks_dir: Path) -> None:
    script_data = {"pre_install": {"script": "check.sh", "timeout": 5}}

    @SETTINGS
    @given(_structural([HOOKS_DATA, script_data]) | _JSON)
    def check(data: Any) -> None:
        _only_input_errors(lambda: load_hooks(data, "hooks.yaml", base_dir=hooks_dir))

    check()


def test_hooks_from_mutated_text_raise_only_input_errors(hooks_dir: Path) -> None:
    @SETTINGS
    @given(_textual([HOOKS_TEXT]))
    def check(text: str) -> None:
        _only_input_errors(lambda: load_hooks(parse_yaml(text, "hooks.yaml"), "hooks.yaml",
                                              base_dir=hooks_dir))

    check()


# -- install override lists -------------------------------------------------------------------


def test_override_lists_from_mutated_text_raise_only_input_errors() -> None:
    @SETTINGS
    @given(_textual([OVERRIDE_TEXT]))
    def check(text: str) -> None:
        _only_input_errors(lambda: parse_install_override_text(text, "override.yaml"))

    check()


def test_override_lists_from_mutated_structure_raise_only_input_errors() -> None:
    example = parse_yaml(OVERRIDE_TEXT, "override.yaml")

    @SETTINGS
    @given(_structural([example]) | _JSON)
    def check(data: Any) -> None:
        _only_input_errors(lambda: parse_install_override(data, "override.yaml"))

    check()


# -- deployments files (patch policies and maintenance windows) ------------------------------


def test_deployments_from_mutated_text_raise_only_input_errors() -> None:
    @SETTINGS
    @given(_textual([POLICIES_TEXT]))
    def check(text: str) -> None:
        _only_input_errors(lambda: parse_deployments(parse_yaml(text, "p.yaml"), "p.yaml"))

    check()


def test_deployments_from_mutated_structure_raise_only_input_errors() -> None:
    example = parse_yaml(POLICIES_TEXT, "p.yaml")

    @SETTINGS
    @given(_structural([example]) | _JSON)
    def check(data: Any) -> None:
        _only_input_errors(lambda: parse_deployments(data, "p.yaml"))

    check()


# -- AWS baseline JSON (baseline import, --baseline FILE.json) --------------------------------


def test_aws_json_files_from_mutated_text_raise_only_input_errors() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.json"

        @SETTINGS
        @given(_textual(AWS_TEXTS))
        def check(text: str) -> None:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            _only_input_errors(lambda: load_aws_json_file(path))

        check()


def test_aws_json_from_mutated_structure_raise_only_input_errors() -> None:
    examples = [json.loads(t) for t in AWS_TEXTS]

    @SETTINGS
    @given(_structural(examples) | _JSON)
    def check(data: Any) -> None:
        _only_input_errors(lambda: baselines_from_aws_json(data, "b.json"))

    check()
