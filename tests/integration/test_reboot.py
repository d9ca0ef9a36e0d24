"""Reboots on real test nodes: a reboot issued inside a node (testnodes' supervisor restarts it),
and patchfleet's ``reboot_and_wait`` over its own transport.

Uses its own nodes in its own state directory (a Debian, a dnf and a zypper node), so rebooting
them never disturbs the session's ``fleet``/``rpm_fleet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from patchfleet.config.inventory import load_inventory
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.ops.reboot import RebootTimeout, reboot_and_wait
from patchfleet.transport.connector import SSHConnector
from patchfleet.transport.keys import KeyRing

pytestmark = pytest.mark.nodes

NODES = {"rb-deb": "default", "rb-rocky": "rocky9", "rb-sles": "sles15"}


@pytest.fixture(scope="module")
def rb(tmp_path_factory: pytest.TempPathFactory, testnodes: ModuleType) -> Iterator[Any]:
    import os

    if os.geteuid() != 0:
        pytest.fail("the reboot tests need root (test nodes)", pytrace=False)
    tn = testnodes
    state = tmp_path_factory.mktemp("reboot-testnodes")
    manager = tn.Fleet(state_dir=state, tie_to_parent=True)
    started: list[str] = []
    try:
        manager.build(sorted(set(NODES.values())))
        for name, variant in NODES.items():
            manager.start(name, variant=variant)
            started.append(name)
        manager.write_inventory(state / "inventory.yaml", list(NODES))
        yield manager
    finally:
        for name in started:
            with contextlib.suppress(tn.TestnodesError):
                manager.stop(name)
        manager.close()


def boot_id(rb: Any, name: str) -> str:
    return str(rb.ssh(name, "cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip())


def wait_new_boot(rb: Any, name: str, old: str, timeout: float = 15) -> tuple[str, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        proc = rb.ssh(name, "cat /proc/sys/kernel/random/boot_id", timeout=10)
        if proc.returncode == 0 and proc.stdout.strip() not in ("", old):
            return proc.stdout.strip(), time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{name} did not come back with a new boot id within {timeout}s")


def resolved(rb: Any, name: str) -> ResolvedNode:
    inv = load_inventory(rb.state / "inventory.yaml")
    return next(n for n in inv.resolved() if n.id == name)


@pytest.mark.parametrize("name", list(NODES))
@pytest.mark.parametrize("how", ["reboot", "systemctl reboot || reboot || shutdown -r now",
                                 "shutdown -r now"])
def test_reboot_from_inside_restarts_the_node(rb: Any, name: str, how: str) -> None:
    before = boot_id(rb, name)
    port = rb.port(name)
    info = rb._run_info(name)
    rb.ssh(name, "touch /run/marker /var/tmp/disk-marker", check=True)
    # a session open across the reboot is cut, as on a real host
    long = subprocess.Popen([*rb.ssh_argv(name), "sleep 60"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc = rb.ssh(name, how)
        assert proc.returncode == 0, proc.stderr
        after, waited = wait_new_boot(rb, name, before)
        assert long.wait(timeout=10) != 0  # connection dropped
    finally:
        if long.poll() is None:
            long.kill()
            long.wait()
    assert after != before
    assert waited < 5
    assert rb.port(name) == port
    out = rb.ssh(name, "ls /run; ls /var/tmp; cut -d' ' -f1 /proc/uptime; hostname",
                 check=True).stdout.split()
    assert "marker" not in out and "testnodes" not in out  # /run emptied
    assert "disk-marker" in out  # same disk
    assert float(out[-2]) < 10 and out[-1] == name
    new = rb._run_info(name)
    assert new["supervisor_pid"] == info["supervisor_pid"]  # one supervisor for the node's life
    assert new["pid1"] != info["pid1"]


def test_systemctl_shim_only_reboots(rb: Any) -> None:
    before = boot_id(rb, "rb-deb")
    proc = rb.ssh("rb-deb", "systemctl status cron")
    assert proc.returncode == 1
    assert "has not been booted with systemd" in proc.stderr
    assert rb.ssh("rb-deb", "shutdown -h now").returncode == 1
    time.sleep(1.0)
    assert boot_id(rb, "rb-deb") == before


def test_stop_after_inside_reboot_leaves_no_process(rb: Any, testnodes: ModuleType) -> None:
    before = boot_id(rb, "rb-deb")
    rb.ssh("rb-deb", "reboot", check=True)
    wait_new_boot(rb, "rb-deb", before)
    info = rb._run_info("rb-deb")
    pids = [info["supervisor_pid"], info["pid1"], info["unshare_pid"]]
    assert rb.stop("rb-deb")
    assert not any(testnodes._pid_alive(p) for p in pids)
    # host-side reboot still works and brings a fresh supervisor
    rb.start("rb-deb")
    again = rb._run_info("rb-deb")
    assert testnodes._pid_alive(again["supervisor_pid"]) and again["supervisor_pid"] not in pids
    old = boot_id(rb, "rb-deb")
    rb.reboot("rb-deb")
    assert boot_id(rb, "rb-deb") != old
    assert not testnodes._pid_alive(again["supervisor_pid"])


@pytest.mark.parametrize("name", ["rb-deb", "rb-sles"])
def test_reboot_and_wait(rb: Any, name: str) -> None:
    node = resolved(rb, name)
    before = boot_id(rb, name)
    rb.ssh(name, "touch /run/reboot-required", check=True)
    keys = KeyRing(use_agent=False)
    try:
        result = asyncio.run(reboot_and_wait(node, SSHConnector(keys), timeout=60, poll=0.3))
    finally:
        keys.close()
    assert result.boot_id_before == before
    assert result.boot_id_after == boot_id(rb, name) != before
    assert 0 < result.downtime < 10  # the reboot starts at once (no detached sleep)
    assert rb.ssh(name, "test -e /run/reboot-required").returncode == 1


def test_reboot_and_wait_times_out_when_the_node_stays_down(rb: Any) -> None:
    name = "rb-rocky"
    node = resolved(rb, name)
    keys = KeyRing(use_agent=False)
    # the reboot "happens" but the node never comes back: the supervisor is told to, then the
    # node is stopped from the host
    before = boot_id(rb, name)

    async def go() -> None:
        task = asyncio.create_task(reboot_and_wait(node, SSHConnector(keys), timeout=4, poll=0.3,
                                                   boot_id_before=before))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(rb.stop, name)
        await task

    try:
        with pytest.raises(RebootTimeout, match="did not come back"):
            asyncio.run(go())
    finally:
        keys.close()
        rb.start(name)
