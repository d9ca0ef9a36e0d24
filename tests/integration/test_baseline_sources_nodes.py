"""A baseline's ``sources`` on real test nodes (apt, dnf, zypper): the source for the node's
product replaces the node's repositories for the scan and the install, and nothing is left on
the node afterwards.

Each node gets an application repository at /srv/appsrc that nothing in /etc points at
(``tests/cases/app_source.py``): fake-app 1.0 is installed, the repository offers only the
newer security build 1.1. Scanned through the source the node sees exactly that update (and
none of the updates its own repositories offer); the install brings fake-app to 1.1; the
node's repository configuration, its metadata caches and /var/tmp are as before. A source
that cannot be refreshed fails the node with a ``SOURCE_FAILED`` reason naming it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import install_runs
import pytest
import yaml
from app_source import (
    APP,
    APT_SOURCE_LINES,
    RPM_SOURCE_REPO,
    add_apt_app_source,
    add_rpm_app_source,
)

from patchfleet.domain.records import PatchState
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_node
from patchfleet.transport.connector import SSHConnector


@dataclass(frozen=True)
class Family:
    node: str
    operating_system: str
    products: tuple[str, ...]
    configuration: str
    new_version: str
    config_dirs: tuple[str, ...]
    """The node's own repository configuration: must be exactly as before."""
    state_dirs: tuple[str, ...]
    """The package manager's lists and metadata caches: as before, but for ``installs``."""
    installs: tuple[str, ...] = ()
    """Files under ``state_dirs`` that any install writes (dnf's package database)."""
    version_query: str = ""


FAMILIES = {
    "apt": Family("deb-a", "DEBIAN", ("Debian12",), APT_SOURCE_LINES, "1.1",
                  ("/etc/apt",), ("/var/lib/apt/lists", "/var/cache/apt"),
                  version_query=f"dpkg-query -W -f '${{Version}}' {APP}"),
    "dnf": Family("rocky-a", "ROCKY_LINUX", ("RockyLinux9.*",), RPM_SOURCE_REPO, "1.1-1",
                  ("/etc/yum.repos.d", "/etc/dnf"), ("/var/cache/dnf",),
                  version_query=f"rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' {APP}"),
    "zypper": Family("sles-a", "SUSE", ("Suse15.6",), RPM_SOURCE_REPO, "1.1-1",
                     ("/etc/zypp",), ("/var/cache/zypp",),
                     version_query=f"rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' {APP}"),
}
BROKEN = {"apt": "deb [trusted=yes] file:/srv/no-such-mirror ./",
          "dnf": RPM_SOURCE_REPO.replace("/srv/appsrc", "/srv/no-such-mirror"),
          "zypper": RPM_SOURCE_REPO.replace("/srv/appsrc", "/srv/no-such-mirror")}


@pytest.fixture(scope="module")
def nodes(fleet: Any, rpm_fleet: Any) -> Iterator[dict[str, Any]]:
    """Every family's node with the application source, reset afterwards."""
    by_family = {"apt": fleet, "dnf": rpm_fleet, "zypper": rpm_fleet}
    try:
        add_apt_app_source(fleet, "deb-a")
        add_rpm_app_source(rpm_fleet, "sles-a", build_on="rocky-a")  # no createrepo_c on SLES
        add_rpm_app_source(rpm_fleet, "rocky-a")
        yield by_family
    finally:
        fleet.reset("deb-a")
        rpm_fleet.reset("rocky-a")
        rpm_fleet.reset("sles-a")


def baseline(tmp_path: Path, family: Family, configuration: str) -> str:
    """An approve-everything baseline whose source for the node's product is
    ``configuration`` (listed after one for another product, which must not apply)."""
    path = tmp_path / "baseline.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"app-source-{family.node}",
        "operating_system": family.operating_system,
        "approval_rules": [{"patch_filters": [{"key": "PRODUCT", "values": ["*"]}],
                            "approve_after_days": 0, "compliance_level": "CRITICAL"}],
        "sources": [
            {"name": "other-product", "products": ["AmazonLinux2023", "Debian11"],
             "configuration": BROKEN["apt"]},
            {"name": "app-vendor", "products": list(family.products),
             "configuration": configuration},
        ],
    }))
    return str(path)


def listing(fleet: Any, node: str, dirs: tuple[str, ...]) -> set[str]:
    """Every entry under ``dirs``: path, type, size, mtime, mode."""
    quoted = " ".join(dirs)
    out = fleet.ssh(node, f"for d in {quoted}; do [ -e \"$d\" ] && "
                    "find \"$d\" -printf '%p %y %s %T@ %m\\n'; done; true", check=True).stdout
    return set(out.splitlines())


def leftovers(fleet: Any, node: str) -> list[str]:
    return fleet.ssh(node, "ls -d /var/tmp/patchfleet-source.* 2>/dev/null; true",
                     check=True).stdout.split()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_scan_and_install_through_the_source(nodes: dict[str, Any], tmp_path: Path,
                                             name: str) -> None:
    family = FAMILIES[name]
    fleet = nodes[name]
    config_before = listing(fleet, family.node, family.config_dirs)
    state_before = listing(fleet, family.node, family.state_dirs)

    scanned, done = install_runs.scan_and_install(
        fleet, tmp_path, family.node, baseline(tmp_path, family, family.configuration))

    missing = {r.package: r.available_version for r in scanned.records
               if r.state is PatchState.MISSING}
    # only the source's update: the node's own repositories (with updates pending) are not read
    assert missing == {APP: family.new_version}
    assert done.outcome.ok, done.outcome.reason
    assert (APP, "all" if name == "apt" else "noarch", family.new_version) in done.installed
    assert fleet.ssh(family.node, family.version_query, check=True).stdout == family.new_version
    rescanned = {r.package: r.state for r in done.result.records if r.package == APP}
    assert rescanned == {APP: PatchState.INSTALLED_PENDING_REBOOT}

    assert listing(fleet, family.node, family.config_dirs) == config_before
    changed = {e.split()[0] for e in state_before ^ listing(fleet, family.node,
                                                            family.state_dirs)}
    assert changed <= set(family.installs), f"{name} metadata state changed: {sorted(changed)}"
    assert leftovers(fleet, family.node) == []


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_source_that_cannot_be_refreshed_fails_the_node(nodes: dict[str, Any],
                                                          tmp_path: Path, name: str) -> None:
    family = FAMILIES[name]
    fleet = nodes[name]
    # what an operation whose connection dropped left behind: removed once a day old
    fleet.ssh(family.node, "mkdir /var/tmp/patchfleet-source.OldOldOld1 "
              "/var/tmp/patchfleet-source.NewNewNew1 && "
              "touch -d '2 days ago' /var/tmp/patchfleet-source.OldOldOld1", check=True)
    p = plan_scan(inventory=str(fleet.inventory), targets=family.node,
                  baseline=baseline(tmp_path, family, BROKEN[name]),
                  store=str(tmp_path / "store"))

    async def scan() -> Any:
        with SSHConnector() as connector:
            return await scan_node(p.nodes[0], p.registry, connector, p.options)

    result = asyncio.run(scan())
    assert result.failed
    reason = result.failure_reason or ""
    assert reason.startswith("SOURCE_FAILED: source 'app-vendor' could not be refreshed: "), reason
    assert "already on the node" not in reason
    assert result.baseline_id == f"app-source-{family.node}"
    assert leftovers(fleet, family.node) == ["/var/tmp/patchfleet-source.NewNewNew1"]
    fleet.ssh(family.node, "rmdir /var/tmp/patchfleet-source.NewNewNew1", check=True)
