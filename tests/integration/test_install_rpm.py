"""Scan-and-install on real dnf (Rocky 9) and zypper (SLES 15) test nodes over SSH: scan,
install the approved set with :func:`patchfleet.ops.install.install_node`, then check the node
independently with ``rpm -q``."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from install_runs import scan_and_install

from patchfleet.domain.records import PatchState
from patchfleet.domain.results import NodeResult

ROCKY_APPROVED = {"fake-openssl-libs", "fake-curl", "fake-libcurl", "fake-coreutils",
                  "fake-tzdata", "fake-daemon", "fake-libzypp", "fake-sudo"}
SLES_APPROVED = {"fake-openssl-libs", "fake-curl", "fake-libcurl"}


def rpm_versions(fleet: Any, node_id: str) -> dict[str, set[str]]:
    out = fleet.ssh(node_id, "rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'",
                    check=True).stdout
    versions: dict[str, set[str]] = {}
    for line in out.splitlines():
        name, evr = line.split()
        versions.setdefault(name, set()).add(evr.removeprefix("0:"))
    return versions


def states(result: NodeResult) -> dict[str, PatchState]:
    return {r.package: r.state for r in result.records if "fake" in r.package}


@pytest.fixture
def clean(rpm_fleet: Any) -> Iterator[Any]:
    yield rpm_fleet
    for name in ("rocky-a", "sles-a"):
        rpm_fleet.reset(name)


@pytest.mark.parametrize(("node_id", "approved"), [("rocky-a", ROCKY_APPROVED),
                                                   ("sles-a", SLES_APPROVED)])
def test_install_approved(clean: Any, tmp_path: Path, node_id: str, approved: set[str]) -> None:
    before = rpm_versions(clean, node_id)
    scanned, done = scan_and_install(clean, tmp_path, node_id)
    wanted = {r.package: r.available_version for r in scanned.records
              if r.state is PatchState.MISSING}
    assert set(wanted) == approved
    assert done.outcome.ok, done.outcome.reason
    after = rpm_versions(clean, node_id)
    for name, version in wanted.items():
        assert after[name] == {version}, name
    changed = set(wanted)
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed}
    s = states(done.result)
    assert {n for n, st in s.items() if st is PatchState.INSTALLED_PENDING_REBOOT} == approved
    assert {n for n, _, _ in done.installed} == approved


@pytest.mark.parametrize("node_id", ["rocky-a", "sles-a"])
def test_block(clean: Any, tmp_path: Path, node_id: str) -> None:
    os_name = "ROCKY_LINUX" if node_id == "rocky-a" else "SUSE"
    path = tmp_path / "block.yaml"
    path.write_text(f"name: block\noperating_system: {os_name}\n" + textwrap.dedent("""\
        approval_rules:
          - patch_filters:
              - {key: CLASSIFICATION, values: [Security]}
        rejected_patches: [fake-curl]
        rejected_patches_action: BLOCK
        """))
    scanned, done = scan_and_install(clean, tmp_path, node_id, baseline=str(path),
                                     block=("fake-curl",))
    assert "fake-curl" not in {r.package for r in scanned.records
                               if r.state is PatchState.MISSING}
    assert done.outcome.ok, done.outcome.reason
    after = rpm_versions(clean, node_id)
    assert after["fake-curl"] == {"1.0-1"}
    assert after["fake-openssl-libs"] == {"1:1.1-1"}
    if node_id == "sles-a":
        locks = clean.ssh(node_id, "zypper -n locks", check=True).stdout
        assert "There are no package locks defined." in locks
    assert states(done.result)["fake-curl"] is PatchState.INSTALLED_REJECTED
