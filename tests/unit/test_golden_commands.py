"""Every golden capture was made with the command its probe sends today.

``<probe>.cmd`` beside each capture records the exact string sent to the node. The capture
scripts (``testnodes/capture_golden.py``, ``tests/golden/post/capture.py``) build their commands
from the package managers' probes; here the same functions rebuild them, so a probe whose
command changed without a re-capture fails (its parsers would be tested on output of an older
command). Re-capture with those scripts; see tests/golden/<manager>/README.md.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
sys.path.insert(0, str(ROOT / "testnodes"))
import capture_golden  # noqa: E402
import parse_golden  # noqa: E402


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


post_capture = _load(GOLDEN / "post" / "capture.py", "golden_post_capture")

HOST_CASES = {
    "debian12-host": "apt-get-update",
    "debian12-host-autoremove": "apt-get-simulate",
}
"""Cases captured on a real Debian 12 host, not on a test node (no capture_golden case), with
one probe each that is sure to be there."""

CAPTURED_BEFORE_TZ_UTC = {"apt/debian12-host"}
"""The one documented exception (tests/golden/apt/README.md): captured on a real host, which no
test node can reproduce, before every command got ``TZ=UTC`` (commit 280100d). Its .cmd files
record what was sent then; they may differ from today's commands by exactly that."""


def _as_sent(case: Path, command: str) -> str:
    """``command`` as it was sent when ``case`` was captured (today's, but for the exception)."""
    if f"{case.parent.name}/{case.name}" in CAPTURED_BEFORE_TZ_UTC:
        return command.replace(" TZ=UTC ", " ", 1)
    return command


def _recorded(case: Path) -> dict[str, str]:
    return {f.name[: -len(".cmd")]: f.read_text().removesuffix("\n")
            for f in case.glob("*.cmd")}


def _captured(case: Path) -> set[str]:
    return {f.name[: -len(".stdout")] for f in case.glob("*.stdout")}


def _arguments(case: Path, recorded: dict[str, str]) -> dict[str, list[str]]:
    """The words each argument-taking probe was sent with, read back from its .cmd."""
    args = {}
    for probe in parse_golden.support_of(case).probes:
        if probe.build is None or probe.name not in recorded:
            continue
        bare = _as_sent(case, probe.command.render(sudo=False)) + " "
        assert recorded[probe.name].startswith(bare), (
            f"{case.name}/{probe.name}.cmd does not start with today's command {bare!r}")
        args[probe.name] = shlex.split(recorded[probe.name][len(bare):])
    return args


def _expected(case: Path, recorded: dict[str, str]) -> dict[str, str]:
    spec = next((c for c in capture_golden.CASES if c.name == case.name), None)
    if spec is None:
        assert case.name in HOST_CASES, f"{case}: no capture_golden case of that name"
        spec = capture_golden.Case(case.name, chain="", variant="default")
    commands = capture_golden.case_commands(spec, _arguments(case, recorded))
    return {c.name: _as_sent(case, c.render(sudo=False)) for c in commands}


SCAN_CASES = parse_golden.cases()
POST_CASES = sorted(p for p in (GOLDEN / "post").iterdir() if p.is_dir())


def test_every_capture_folder_is_known() -> None:
    names = {c.name for c in capture_golden.CASES} | set(HOST_CASES)
    assert {c.name for c in SCAN_CASES} <= names
    assert {c.name for c in POST_CASES} == {c[0] for c in post_capture.CASES}


@pytest.mark.parametrize("case", SCAN_CASES, ids=[f"{c.parent.name}/{c.name}" for c in SCAN_CASES])
def test_scan_capture_commands_are_todays(case: Path) -> None:
    recorded = _recorded(case)
    assert set(recorded) == _captured(case), f"{case}: every capture needs its .cmd"
    expected = _expected(case, recorded)
    if case.name in HOST_CASES:
        assert HOST_CASES[case.name] in recorded
        expected = {name: cmd for name, cmd in expected.items() if name in recorded}
    else:
        assert set(recorded) == set(expected), f"{case}: captured probes differ from the scan's"
    for name, command in expected.items():
        assert recorded[name] == command, (
            f"{case.parent.name}/{case.name}/{name}.cmd is not the command the probe sends "
            "today: re-capture with testnodes/capture_golden.py")


@pytest.mark.parametrize("case", POST_CASES, ids=[c.name for c in POST_CASES])
def test_post_install_capture_commands_are_todays(case: Path) -> None:
    variant = next(c[2] for c in post_capture.CASES if c[0] == case.name)
    expected = {c.name: c.render(sudo=False) for c in post_capture.case_commands(variant)}
    recorded = _recorded(case)
    assert set(recorded) == _captured(case) == set(expected)
    for name, command in expected.items():
        assert recorded[name] == command, (
            f"post/{case.name}/{name}.cmd is not the command the probe sends today: "
            "re-capture with tests/golden/post/capture.py")
