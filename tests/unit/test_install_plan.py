"""Install plans: pinned specs per package manager, BLOCK lists, override lists, and the
no-major-upgrade rule (patchfleet.domain.install_plan)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import apt_facts as A
import pytest
import rpm_facts as R

from patchfleet.config.baselines import load_baseline
from patchfleet.domain.baseline import Baseline, parse_baseline
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import PackageManager
from patchfleet.domain.install_override import parse_install_override
from patchfleet.domain.install_plan import (
    ItemReason,
    check_override_combination,
    is_release_package,
    package_spec,
    plan_install,
)
from patchfleet.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


APT, DNF, ZYP = PackageManager.APT, PackageManager.DNF, PackageManager.ZYPPER


def aws(name: str) -> Baseline:
    return load_baseline(REPO / "baselines" / f"{name}.yaml")


def baseline(os: str, **fields: Any) -> Baseline:
    return parse_baseline({"name": "test-baseline", "operating_system": os, **fields}, "test")


ALL_RPM = {"approval_rules": [{"patch_filters": [], "enable_non_security": True}]}


@pytest.mark.parametrize(
    ("manager", "name", "arch", "version", "native", "spec"),
    [
        (APT, "openssl", "amd64", "3.0.11-1~deb12u2", "amd64", "openssl=3.0.11-1~deb12u2"),
        (APT, "libc6", "i386", "2.36-9+deb12u4", "amd64", "libc6:i386=2.36-9+deb12u4"),
        (APT, "tzdata", "all", "2025a-0+deb12u1", "amd64", "tzdata=2025a-0+deb12u1"),
        (APT, "vim", "amd64", "2:9.0.1378-2", "amd64", "vim=2:9.0.1378-2"),
        (DNF, "fake-curl", "x86_64", "1.1-1", "", "fake-curl-1.1-1.x86_64"),
        (DNF, "bind", "x86_64", "32:9.8.2-0.62", "", "bind-32:9.8.2-0.62.x86_64"),
        (PackageManager.YUM, "tzdata", "noarch", "2025a-1", "", "tzdata-2025a-1.noarch"),
        (ZYP, "fake-curl", "x86_64", "1.1-1", "", "fake-curl.x86_64=1.1-1"),
        (ZYP, "bind", "x86_64", "32:9.8.2-0.62", "", "bind.x86_64=32:9.8.2-0.62"),
    ],
)
def test_package_spec(
    manager: PackageManager, name: str, arch: str, version: str, native: str, spec: str
) -> None:
    assert package_spec(manager, name, arch, version, native) == spec


def test_dnf_plan_pins_missing_records_and_describes_them() -> None:
    facts = R.rocky()
    b = aws("AWS-RockyLinuxDefaultPatchBaseline")
    plan = plan_install(facts, evaluate(facts, b, R.NOW), b)
    assert all(i.reason is ItemReason.MISSING for i in plan.items)
    assert "fake-curl-1.1-1.x86_64" in plan.specs
    assert "fake-noadvisory-1.1-1.x86_64" not in plan.specs  # not approved by the default
    curl = next(line for line in plan.describe() if " fake-curl " in line)
    assert curl == "would install fake-curl 1.0-1 -> 1.1-1 (MISSING, Security, FAKESA-2025:0002)"
    assert plan.block == () and plan.refused == ()


def test_apt_plan_uses_the_approved_version_not_the_candidate() -> None:
    facts = A.mixed()
    b = aws("AWS-DebianDefaultPatchBaseline")
    plan = plan_install(facts, evaluate(facts, b, A.NOW), b)
    assert plan.specs == ("openssl=3.0.11-1~deb12u2",)  # security version; candidate is newer


def test_block_lists_installed_and_available_rejected_names() -> None:
    facts = R.rocky()
    b = baseline(
        "ROCKY_LINUX",
        **ALL_RPM,
        rejected_patches=["fake-sudo", "fake-*curl-1.1-1.x86_64", "not-there"],
        rejected_patches_action="BLOCK",
    )
    plan = plan_install(facts, evaluate(facts, b, R.NOW), b)
    assert plan.block == ("fake-curl", "fake-libcurl", "fake-sudo")
    assert not {"fake-sudo", "fake-curl", "fake-libcurl"} & {i.name for i in plan.items}
    assert "would block (rejected, BLOCK): fake-curl, fake-libcurl, fake-sudo" in plan.describe()
    allow = baseline("ROCKY_LINUX", **ALL_RPM, rejected_patches=["fake-sudo"])
    assert plan_install(facts, evaluate(facts, allow, R.NOW), allow).block == ()


def test_apt_block_uses_names() -> None:
    facts = A.mixed()
    b = baseline("DEBIAN", rejected_patches=["telnet", "open*"], rejected_patches_action="BLOCK")
    assert plan_install(facts, evaluate(facts, b, A.NOW), b).block == ("openssl", "telnet")


def test_release_package_major_upgrade_is_refused() -> None:
    facts = R.facts(
        [R.pkg("rocky-release", "9.4-1", arch="noarch"), R.pkg("fake-curl")],
        [
            R.update("rocky-release", "10.0", "1", arch="noarch", installed="9.4-1"),
            R.update("fake-curl"),
        ],
    )
    b = baseline("ROCKY_LINUX", **ALL_RPM)
    plan = plan_install(facts, evaluate(facts, b, R.NOW), b)
    assert plan.specs == ("fake-curl-1.1-1.x86_64",)
    assert [(r.name, r.to_version) for r in plan.refused] == [("rocky-release", "10.0-1")]
    assert any("major OS upgrade" in line for line in plan.describe())
    minor = replace(facts, updates=(R.update("rocky-release", "9.5", "1", arch="noarch"),))
    plan = plan_install(minor, evaluate(minor, b, R.NOW), b)
    assert plan.specs == ("rocky-release-9.5-1.noarch",)


@pytest.mark.parametrize(
    ("name", "release"),
    [
        ("base-files", True),
        ("system-release", True),
        ("sles-release", True),
        ("lsb-release", False),
        ("openssl", False),
        ("release-notes", False),
    ],
)
def test_is_release_package(name: str, release: bool) -> None:
    assert is_release_package(name) is release


def test_override_replaces_the_baseline_and_blocks_nothing() -> None:
    facts = R.rocky()
    b = baseline("ROCKY_LINUX", rejected_patches=["kernel"], rejected_patches_action="BLOCK")
    o = parse_install_override({"patches": [{"id": "kernel.x86_64"}, {"id": "nothing*"}]}, "o.yaml")
    plan = plan_install(facts, evaluate(facts, b, R.NOW), b, override=o)
    assert plan.specs == ("kernel-1.1-1.x86_64",)
    assert plan.items[0].reason is ItemReason.OVERRIDE and plan.block == ()
    assert plan.unmatched_override == ("nothing*",)
    assert "override entry 'nothing*' selects nothing" in plan.describe()


def test_nothing_to_install() -> None:
    facts = R.rocky_patched()
    b = aws("AWS-RockyLinuxDefaultPatchBaseline")
    plan = plan_install(facts, evaluate(facts, b, R.NOW), b)
    assert plan.empty and plan.describe() == ["nothing to install"]


def test_override_and_baseline_override_together_fail() -> None:
    check_override_combination(None, "s3://b/list.yaml")
    check_override_combination("s3://b/baseline.json", None)
    with pytest.raises(ConfigError, match="cannot be used together"):
        check_override_combination("s3://b/baseline.json", "s3://b/list.yaml")
