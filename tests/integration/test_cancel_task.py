"""A deadline (a CANCEL_TASK maintenance window's cutoff) below the window flow, on the real
Debian test nodes: scan_nodes lets a running scan finish and scans nothing after the deadline;
run_rollout skips the reboot of a node whose install ended after it; the patch-nodes flow
validates and honours its ``deadline`` parameter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patchfleet.config.hooks import load_hooks
from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.rollout import InstallOptions, run_rollout
from patchfleet.ops.scan import scan_nodes
from patchfleet.transport.connector import SSHConnector

APPROVED = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "linux-image-fake"}


def boot_id(fleet: Any, node: str) -> str:
    return str(fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip())


def versions(fleet: Any, node: str) -> dict[str, str]:
    out = fleet.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n'", check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_scan_deadline_running_scan_finishes_later_ones_time_out(fleet: Any,
                                                                  tmp_path: Path) -> None:
    plan = plan_scan(inventory=str(fleet.inventory), targets="deb-a,deb-b,deb-c",
                     store=str(tmp_path / "store"))
    options = plan.options.with_concurrency(1)
    # deb-a starts at once; a real scan (apt update, dpkg-query, ...) takes about a second
    # here, so the deadline passes while deb-a is being scanned
    deadline = datetime.now(UTC) + timedelta(seconds=0.3)
    with SSHConnector() as connector:
        a, b, c = asyncio.run(scan_nodes(plan.nodes, plan.registry, options, connector,
                                         deadline=deadline))
    assert a.node_id == "deb-a" and a.failure_reason is None, a.failure_reason
    assert a.operation_start_time < deadline
    assert a.summary.status is NodeStatus.NON_COMPLIANT and a.records
    assert a.operation_end_time > deadline  # finished after the deadline, not cancelled
    for late in (b, c):
        assert late.summary.status is NodeStatus.FAILED and late.records == ()
        reason = late.failure_reason or ""
        assert reason.startswith("TIMED_OUT: "), reason
        assert "cutoff passed" in reason and "before this node's scan started" in reason
        assert "CANCEL_TASK" in reason


def test_deadline_during_install_skips_the_reboot(clean: Any, tmp_path: Path) -> None:
    boot0 = boot_id(clean, "deb-a")
    # the post-install hook outlasts the deadline, so the reboot decision comes after it
    deadline = datetime.now(UTC) + timedelta(seconds=6)
    until = int(deadline.timestamp()) + 2
    hooks = load_hooks({
        "post_install": {"command": f'while [ "$(date +%s)" -lt {until} ]; do sleep 0.2; done',
                         "timeout": 60},
        "on_exit": {"command": "touch /root/on-exit-ran"},
    }, source="test")
    plan = plan_scan(inventory=str(clean.inventory), targets="deb-a",
                     store=str(tmp_path / "store"), lock_timeout=10)
    with SSHConnector() as connector:
        (res,) = asyncio.run(run_rollout(
            plan.nodes, plan.registry, plan.options,
            InstallOptions(reboot_option="RebootIfNeeded", hooks=hooks, deadline=deadline),
            connector, max_concurrency=1, max_errors=0))
    r = res.result
    assert not res.rebooted and boot_id(clean, "deb-a") == boot0
    # deb-a holds fake-held (HELD: ...); the deadline's reason comes after it
    assert r.failure_reason and "; TIMED_OUT: " in r.failure_reason, r.failure_reason
    assert "before the reboot" in r.failure_reason
    assert "INSTALLED_PENDING_REBOOT" in r.failure_reason
    assert "not rebooted" in res.reboot_reason
    pending = {x.package for x in r.records if x.state is PatchState.INSTALLED_PENDING_REBOOT}
    assert pending >= APPROVED
    assert r.last_no_reboot_install_operation_time is not None
    assert [h.phase for h in res.hooks] == ["post_install", "on_exit"]
    assert clean.ssh("deb-a", "test -e /root/on-exit-ran").returncode == 0
    v = versions(clean, "deb-a")
    assert {k: v[k] for k in APPROVED} == dict.fromkeys(APPROVED, "1.1")


def test_patch_nodes_flow_deadline_parameter(prefect_api: None, fleet: Any,
                                             tmp_path: Path) -> None:
    from flows.patch_nodes import patch_nodes as patch_nodes_flow

    store = tmp_path / "store"
    for bad, fragment in (("tomorrow", "is not a date and time"),
                          ("2026-11-03T05:00:00", "has no UTC offset")):
        with pytest.raises(ConfigError) as err:
            asyncio.run(patch_nodes_flow(operation="Scan", inventory=str(fleet.inventory),
                                         store=str(store), deadline=bad))
        assert err.value.source == "deadline"
        assert fragment in str(err.value) and "+00:00" in str(err.value)

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    summary = asyncio.run(patch_nodes_flow(operation="Scan", inventory=str(fleet.inventory),
                                           store=str(store), deadline=past))
    assert summary.node_count == 3 and summary.failed == 3
    assert all(n.failure_reason.startswith("TIMED_OUT: ") for n in summary.nodes)
