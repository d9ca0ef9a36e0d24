"""dpkg and rpm version ordering, checked against the real tools' verdicts."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from patchfleet.domain.versions import (
    DebVersion,
    Evr,
    dpkg_compare,
    dpkg_key,
    parse_dpkg_version,
    parse_evr,
    rpm_compare,
    rpm_key,
    rpmvercmp,
)

CASES = Path(__file__).resolve().parents[1] / "cases" / "versions"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, CASES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _golden(name: str) -> list[tuple[str, str, int]]:
    rows = []
    for line in (CASES / name).read_text().splitlines():
        a, b, r = line.split(" ")
        rows.append((a, b, int(r)))
    return rows


DPKG_CASES = _golden("dpkg_compare.txt")
RPM_CASES = _golden("rpm_compare.txt")


def test_golden_files_are_large() -> None:
    assert len(DPKG_CASES) > 5000
    assert len(RPM_CASES) > 5000
    for cases in (DPKG_CASES, RPM_CASES):
        assert {r for _, _, r in cases} == {-1, 0, 1}


def test_dpkg_compare_matches_dpkg_golden() -> None:
    wrong = [(a, b, r, dpkg_compare(a, b)) for a, b, r in DPKG_CASES if dpkg_compare(a, b) != r]
    assert wrong == []


def test_dpkg_compare_is_antisymmetric_on_golden() -> None:
    for a, b, r in DPKG_CASES:
        assert dpkg_compare(b, a) == -r


def test_golden_generator_is_deterministic() -> None:
    gen = _load("gen_dpkg_cases")
    assert gen.generate() == [(a, b) for a, b, _ in DPKG_CASES]
    gen_rpm = _load("gen_rpm_cases")
    assert gen_rpm.generate() == [(a, b) for a, b, _ in RPM_CASES]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_dpkg_golden_still_matches_live_dpkg() -> None:
    # Every fourth pair keeps this near a second; the generator re-checks them all.
    gen = _load("gen_dpkg_cases")
    sample = DPKG_CASES[::4]
    live = gen.judge_with_dpkg([(a, b) for a, b, _ in sample])
    assert [r for _, _, r in sample] == live


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_rpm_golden_still_matches_live_rpm() -> None:
    gen = _load("gen_rpm_cases")
    live = gen.judge_with_rpm([(a, b) for a, b, _ in RPM_CASES])
    assert [r for _, _, r in RPM_CASES] == live


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0~rc1", "1.0", -1),  # tilde sorts before the end of the string
        ("1.0~~", "1.0~", -1),
        ("1.0a", "1.0+", -1),  # letters sort before non-letters
        ("1.0", "1.0-0", 0),  # a missing revision is "0"
        ("1:0.1", "9.9", 1),  # epoch first
        ("2.30-1ubuntu1.1", "2.30-1ubuntu1", 1),
        ("1.2-1+deb12u1", "1.2-1", 1),
        ("1.2-1~bpo12+1", "1.2-1", -1),
        ("007", "7", 0),
    ],
)
def test_dpkg_compare_examples(a: str, b: str, expected: int) -> None:
    assert dpkg_compare(a, b) == expected


def test_parse_dpkg_version() -> None:
    assert parse_dpkg_version("1:2.3-4-5") == DebVersion(1, "2.3-4", "5")
    assert parse_dpkg_version("2.3") == DebVersion(0, "2.3", "")
    assert str(parse_dpkg_version("1:2.3-4")) == "1:2.3-4"
    assert dpkg_compare(DebVersion(0, "1", ""), "1") == 0


@pytest.mark.parametrize("bad", ["", " ", "1 2", "a:1", ":1", "1:", "1.0-", "-1"])
def test_parse_dpkg_version_rejects_what_dpkg_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_dpkg_version(bad)


def test_dpkg_key_sorts() -> None:
    versions = ["1.0", "1.0~rc1", "1:0.1", "1.0-1", "1.0+b1", "0.9"]
    assert sorted(versions, key=dpkg_key) == ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.1"]
    assert max(versions, key=dpkg_key) == "1:0.1"


def test_rpm_compare_matches_rpm_golden() -> None:
    wrong = [(a, b, r, rpm_compare(a, b)) for a, b, r in RPM_CASES if rpm_compare(a, b) != r]
    assert wrong == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),  # caret sorts after the end of the string...
        ("1.0^git1", "1.0.1", -1),  # ...but before any further segment
        ("1.0a", "1.0.a", 0),  # separators only separate
        ("10", "9", 1),
        ("a", "1", -1),  # numeric beats alpha
    ],
)
def test_rpmvercmp_examples(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected


def test_parse_evr() -> None:
    assert parse_evr("1:2.3-4.el9") == Evr("1", "2.3", "4.el9")
    assert parse_evr("2.3") == Evr(None, "2.3", None)
    assert parse_evr(":2.3-1") == Evr("0", "2.3", "1")
    assert parse_evr("1.2:3-4") == Evr(None, "1.2:3", "4")  # an epoch is leading digits only
    assert parse_evr("2.3-") == Evr(None, "2.3", "")
    assert parse_evr("3:1.0-2").epoch_int == 3
    assert str(parse_evr("3:1.0-2")) == "3:1.0-2"
    with pytest.raises(ValueError):
        parse_evr("")


def test_rpm_compare_release_rules() -> None:
    assert rpm_compare("1.0", "1.0-1") == -1  # no release sorts before a release
    assert rpm_compare("0:1.0-1", "1.0-1") == 0
    assert rpm_compare("1:1.0", "2.0") == 1
    assert rpm_compare(Evr(None, "1.0", "1"), "1.0-1") == 0
    assert sorted(["1.0-2", "1.0-10", "1:0.1", "1.0~b-1"], key=rpm_key) == [
        "1.0~b-1",
        "1.0-2",
        "1.0-10",
        "1:0.1",
    ]
