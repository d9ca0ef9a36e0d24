"""The patch-nodes flow's run-time guards on real test nodes and a real Prefect server:
per-node locks (two runs never install on the same node at once; a node held too long is
BUSY and the rest go on), ``os:`` targets resolved
when the run starts, and the run renamed to say what it does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from flows.patch_nodes import patch_nodes
from patchfleet.ops.summary import RunSummary
from patchfleet.store.query import ComplianceStore
from tasks.locks import NodeLocks, ensure_node_limits, lock_name


def _versions(fleet: Any, node: str) -> str:
    return str(fleet.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n'", check=True).stdout)


def test_a_node_another_run_holds_waits_then_fails_busy_and_the_rest_go_on(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    before = _versions(fleet, "deb-a")

    async def scenario() -> RunSummary:
        await ensure_node_limits(["deb-a"])
        async with NodeLocks(timeout_seconds=10) as other, other.lock("deb-a"):
            return await patch_nodes(operation="Install", targets="deb-a,deb-c",
                                     inventory=str(fleet.inventory), store=str(store),
                                     reboot_option="NoReboot", refresh=False,
                                     node_lock_timeout=2)

    try:
        summary = asyncio.run(scenario())
        rows = {r.node_id: r for r in summary.nodes}
        assert rows["deb-a"].status == "FAILED"
        reason = rows["deb-a"].failure_reason
        assert reason.startswith("BUSY: another patchfleet run is installing on this node")
        assert "node_lock_timeout" in reason
        assert _versions(fleet, "deb-a") == before  # nothing was done on the busy node
        assert rows["deb-c"].status != "FAILED"  # the rest of the rollout went on
        assert "libfakessl3 1.1" in _versions(fleet, "deb-c")
    finally:
        fleet.reset("deb-c")


def test_overlapping_installs_take_turns_on_the_shared_node(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"

    async def both() -> list[RunSummary]:
        return list(await asyncio.gather(
            patch_nodes(operation="Install", targets="deb-a,deb-b",
                        inventory=str(fleet.inventory), store=str(store),
                        reboot_option="NoReboot", refresh=False, node_lock_timeout=300),
            patch_nodes(operation="Install", targets="deb-b",
                        inventory=str(fleet.inventory), store=str(store),
                        reboot_option="NoReboot", refresh=False, node_lock_timeout=300),
        ))

    try:
        first, second = asyncio.run(both())
        with ComplianceStore(store) as cs:
            _, rows = cs.query(
                "SELECT run_id, operation_start_time, operation_end_time FROM node_summaries "
                "WHERE node_id = 'deb-b' ORDER BY operation_start_time")
        assert {r[0] for r in rows} == {first.run_id, second.run_id}
        (_, _, end1), (_, start2, _) = rows
        assert start2 >= end1, rows  # the later run started on deb-b after the first finished
        assert "libfakessl3 1.1" in _versions(fleet, "deb-b")
    finally:
        for node in ("deb-a", "deb-b"):
            fleet.reset(node)

    async def slots() -> list[int]:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return [(await client.read_global_concurrency_limit_by_name(lock_name(n))
                     ).active_slots for n in ("deb-a", "deb-b")]

    assert asyncio.run(slots()) == [0, 0]  # released when the runs ended


def test_os_targets_are_resolved_at_run_time_and_the_run_says_what_it_did(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    inv = yaml.safe_load(fleet.inventory.read_text())
    ref = dict(inv["nodes"][0])
    inv["nodes"].append({**ref, "id": "gone-1", "host": "127.0.0.1", "port": 1})
    inv["nodes"].append({**ref, "id": "declared-suse", "host": "127.0.0.1", "port": 1,
                         "os": "SUSE"})
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(inv))
    store = tmp_path / "store"

    summary = asyncio.run(patch_nodes(operation="Scan", targets="os:DEBIAN",
                                      inventory=str(inventory), store=str(store),
                                      refresh=False, label="nightly", reports=False))
    rows = {r.node_id: r for r in summary.nodes}
    # the declared SUSE node is left out without connecting; the unreachable one can't be
    # checked, so it is recorded FAILED and never scanned
    assert set(rows) == {"deb-a", "deb-b", "deb-c", "gone-1"}
    assert rows["gone-1"].status == "FAILED"
    assert "could not read the node's OS" in rows["gone-1"].failure_reason
    assert all(rows[n].status != "FAILED" for n in ("deb-a", "deb-b", "deb-c"))
    assert summary.report_folder is None and summary.report_files == []

    async def name() -> str:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return str((await client.read_flow_run(UUID(summary.run_id))).name)

    assert asyncio.run(name()) == "nightly scan-4-nodes"
