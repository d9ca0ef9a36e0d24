"""collect_post_install on real test nodes: a stale process after upgrading the running
fake-daemon, and an enabled unattended-upgrades configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchfleet.managers.common import collect_os
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.post_install import PostInstallState, collect_post_install
from patchfleet.transport.connector import SSHConnector

GOLDEN_CAPTURE = Path(__file__).resolve().parents[1] / "golden" / "post" / "capture.py"


def collect(fleet: Any, tmp_path: Path, node_name: str) -> PostInstallState:
    plan = plan_scan(inventory=str(fleet.inventory), targets=node_name,
                     store=str(tmp_path / "store"))
    node = plan.nodes[0]

    async def run() -> PostInstallState:
        with SSHConnector() as connector:
            async with connector.open(node) as transport:
                os_info = await collect_os(transport)
                return await collect_post_install(transport, os_info)

    return asyncio.run(run())


def _capture_constants() -> tuple[str, str]:
    namespace: dict[str, Any] = {}
    src = GOLDEN_CAPTURE.read_text()
    start = src.index("FAKE_UU = (")
    end = src.index("CASES:")
    exec(src[start:end], namespace)  # the same node setup the golden captures used
    return namespace["FAKE_UU"], namespace["AUTO_UPGRADES"]


@pytest.fixture
def reset_after(fleet: Any) -> Iterator[Any]:
    yield fleet
    fleet.reset("deb-a")


@pytest.fixture
def rpm_reset_after(rpm_fleet: Any) -> Iterator[Any]:
    yield rpm_fleet
    for name in ("rocky-a", "sles-a"):
        rpm_fleet.reset(name)


def test_debian_fresh_then_stale_daemon_and_unattended_upgrades(
        reset_after: Any, tmp_path: Path) -> None:
    fleet = reset_after
    before = collect(fleet, tmp_path, "deb-a")
    assert before.warnings == ()
    assert before.restarts.processes == ()
    assert "unattended-upgrades" not in before.auto_updaters.names
    assert before.auto_updaters.systemd is False
    assert "apt-daily.timer" in before.auto_updaters.names

    fleet.ssh("deb-a", "apt-get install -y fake-daemon", check=True)
    fake_uu, auto_upgrades = _capture_constants()
    fleet.ssh("deb-a", auto_upgrades, check=True)
    config_only = collect(fleet, tmp_path, "deb-a")
    assert "unattended-upgrades" not in config_only.auto_updaters.names
    assert [n for n, _ in config_only.auto_updaters.inactive] == ["unattended-upgrades"]

    fleet.ssh("deb-a", fake_uu, check=True)
    after = collect(fleet, tmp_path, "deb-a")
    assert after.warnings == ()
    stale = [(p.command, p.file) for p in after.restarts.processes]
    assert ("fake-daemon", "/usr/libexec/fake-daemon") in stale
    assert after.auto_updaters.found[0] == (
        "unattended-upgrades",
        'APT::Periodic::Unattended-Upgrade "1" (/etc/apt/apt.conf.d/20auto-upgrades)',
    )


@pytest.mark.parametrize("node_name, upgrade", [
    ("rocky-a", "dnf -y upgrade fake-daemon"),
    ("sles-a", "zypper -n --no-refresh update -y fake-daemon"),
])
def test_rpm_stale_daemon(rpm_reset_after: Any, tmp_path: Path, node_name: str,
                          upgrade: str) -> None:
    fleet = rpm_reset_after
    assert collect(fleet, tmp_path, node_name).restarts.processes == ()
    fleet.ssh(node_name, upgrade, check=True)
    after = collect(fleet, tmp_path, node_name)
    assert after.warnings == ()
    assert ("fake-daemon", "/usr/libexec/fake-daemon") in [
        (p.command, p.file) for p in after.restarts.processes]
    # The nodes are Debian chroots carrying apt-daily timers: not reported on rpm nodes.
    assert not any(name.startswith("apt-") for name in after.auto_updaters.names)

