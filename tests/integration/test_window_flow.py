"""The maintenance-window and patch-policy flows end to end: a real (temporary) Prefect server,
the Debian test fleet over SSH, the Parquet store read back with DuckDB. CutoffBehavior
CANCEL_TASK vs CONTINUE_TASK: an Install task whose window's cutoff passes mid-run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from patchfleet.store.query import ComplianceStore

# Tuesdays 02:00 UTC for 4 hours, the last hour a cutoff: 2026-11-03 is a Tuesday.
WINDOW = {"name": "mw-web", "schedule": "cron(0 2 ? * TUE *)", "duration_hours": 4,
          "cutoff_hours": 1}


def _file(tmp_path: Path, fleet: Any, store: Path) -> Path:
    data = {
        "windows": [{**WINDOW, "inventory": str(fleet.inventory), "targets": "*",
                     "store": str(store),
                     "tasks": [{"name": "scan-web", "priority": 0, "operation": "Scan",
                                "targets": "group:web"},
                               {"name": "scan-db", "priority": 1, "operation": "Scan",
                                "targets": "group:db"}]}],
        "policies": [{"name": "pol-web", "inventory": str(fleet.inventory),
                      "targets": "group:web", "store": str(store),
                      "baselines": {"DEBIAN": "AWS-DebianDefaultPatchBaseline"}}],
    }
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _flow_run(run_id: str) -> Any:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_flow_run(UUID(run_id))


async def _window_artifact(flow_run_id: str) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])))
    (art,) = [a for a in arts if a.key == "window-summary"]
    return str(art.data)


def _rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    if not store.exists():
        return []
    with ComplianceStore(store) as cs:
        return list(cs.query(sql)[1])


def test_window_cutoff_outside_and_forced(prefect_api: None, fleet: Any,
                                          tmp_path: Path) -> None:
    from flows.maintenance_window import maintenance_window

    store = tmp_path / "store"
    path = str(_file(tmp_path, fleet, store))

    cutoff = asyncio.run(maintenance_window(window="mw-web", file=path,
                                            now="2026-11-03T05:30:00+00:00"))
    assert cutoff["phase"] == "CUTOFF" and cutoff["tasks"] == []
    assert "cutoff" in cutoff["skipped"] and "no task started" in cutoff["skipped"]

    outside = asyncio.run(maintenance_window(window="mw-web", file=path,
                                             now="2026-11-04T12:00:00+00:00"))
    assert outside["tasks"] == [] and "no occurrence open" in outside["skipped"]
    assert _rows(store, "SELECT node_id FROM node_summaries") == []
    # the skipped run says so in the UI too
    md = asyncio.run(_window_artifact(cutoff["execution_id"]))
    assert "**Nothing ran:**" in md and "no task started" in md

    forced = asyncio.run(maintenance_window(window="mw-web", file=path, force=True,
                                            now="2026-11-04T12:00:00+00:00"))
    assert "skipped" not in forced
    assert [(t["task"], t["status"]) for t in forced["tasks"]] == [
        ("scan-web", "SUCCESS"), ("scan-db", "SUCCESS")]
    assert forced["tasks"][0]["summary"]["node_count"] == 2
    rows = _rows(store, "SELECT node_id, snapshot_id FROM node_summaries ORDER BY node_id")
    assert rows == [(n, forced["execution_id"]) for n in ("deb-a", "deb-b", "deb-c")]
    md = asyncio.run(_window_artifact(forced["execution_id"]))
    assert "phase: CLOSED (forced)" in md
    assert "| 0 | scan-web | Scan | SUCCESS | 2 |" in md
    assert "| 1 | scan-db | Scan | SUCCESS | 1 |" in md


def test_window_open_runs_and_policy_records_patch_policy(prefect_api: None, fleet: Any,
                                                         tmp_path: Path) -> None:
    from flows.maintenance_window import maintenance_window
    from flows.patch_policy import patch_policy

    store = tmp_path / "store"
    path = str(_file(tmp_path, fleet, store))
    opened = asyncio.run(maintenance_window(window="mw-web", file=path,
                                            now="2026-11-03T02:30:00+00:00"))
    assert opened["phase"] == "OPEN"
    assert [t["status"] for t in opened["tasks"]] == ["SUCCESS", "SUCCESS"]
    # each task is a patch-nodes subflow named for what it ran and tagged with the window
    task_runs = [asyncio.run(_flow_run(t["summary"]["run_id"])) for t in opened["tasks"]]
    assert [r.name for r in task_runs] == ["mw-web/scan-web scan-2-nodes",
                                           "mw-web/scan-db scan-1-node"]
    assert all({"patchfleet", "window/mw-web"} <= set(r.tags) for r in task_runs)

    summary = asyncio.run(patch_policy(policy="pol-web", operation="Scan", file=path))
    assert summary.node_count == 2
    run = asyncio.run(_flow_run(summary.run_id))
    assert run.name == "pol-web scan-2-nodes" and "policy/pol-web" in run.tags
    rows = _rows(store, "SELECT DISTINCT execution_type FROM node_summaries WHERE run_id = "
                 f"'{summary.run_id}'")
    assert rows == [("PATCH_POLICY",)]


# ----------------------------------------------------------------------------- cutoff behavior

APPROVED = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "linux-image-fake"}
LEAD = 15
"""Seconds from the run's start to the window's cutoff: enough for the subflow's start, the
snapshot scan and deb-a's scan, so deb-a's pre-install hook starts before the cutoff. That
takes about 5 s here, but once took 8.2 s on a loaded CI machine (LEAD was 8 then)."""


@pytest.fixture
def clean(fleet: Any) -> Iterator[Any]:
    yield fleet
    for name in fleet.names:
        fleet.reset(name)


def _versions(fleet: Any, node: str) -> dict[str, str]:
    out = fleet.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n'", check=True).stdout
    return {k: v for k, v in (line.split(" ", 1) for line in out.splitlines()) if k in APPROVED}


def _marker(fleet: Any, node: str, name: str) -> bool:
    return fleet.ssh(node, f"test -e /root/{name}").returncode == 0


def _install_window(tmp_path: Path, fleet: Any, store: Path, behavior: str,
                    hold_until: int) -> Path:
    """Window mw-install (cutoff 05:00 UTC on 2026-11-03): an Install task over deb-a, deb-b,
    deb-c one node at a time, whose pre-install hook keeps deb-a busy until ``hold_until``
    (epoch seconds), then a Scan task at a lower priority."""
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(yaml.safe_dump({
        "pre_install": {"timeout": 120, "command": (
            "touch /root/pre-install-ran; "
            'if [ "$PATCHFLEET_NODE_ID" = deb-a ]; then '
            f'while [ "$(date +%s)" -lt {hold_until} ]; do sleep 0.2; done; fi')},
        "on_exit": {"command": "touch /root/on-exit-ran"},
    }))
    data = {"windows": [{
        **WINDOW, "name": "mw-install", "cutoff_behavior": behavior,
        "inventory": str(fleet.inventory), "targets": "*", "store": str(store),
        "tasks": [{"name": "install-all", "priority": 0, "operation": "Install",
                   "max_concurrency": "1", "max_errors": "3", "reboot_option": "NoReboot",
                   "hooks": str(hooks)},
                  {"name": "scan-after", "priority": 1, "operation": "Scan"}]}]}
    path = tmp_path / "windows.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run_near_cutoff(tmp_path: Path, fleet: Any, store: Path, behavior: str) -> dict[str, Any]:
    from flows.maintenance_window import maintenance_window

    t0 = time.time()
    # deb-a's hook outlasts the cutoff (which falls about LEAD s after t0) by about 2 s
    path = _install_window(tmp_path, fleet, store, behavior, int(t0) + LEAD + 3)
    now = f"2026-11-03T04:59:{60 - LEAD:02d}+00:00"
    result: dict[str, Any] = asyncio.run(maintenance_window(window="mw-install",
                                                            file=str(path), now=now))
    assert result["phase"] == "OPEN"
    return result


def test_cancel_task_stops_the_install_at_the_cutoff(prefect_api: None, clean: Any,
                                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    before = {n: _versions(clean, n) for n in clean.names}
    assert all(set(v.values()) == {"1.0"} for v in before.values()), before

    result = _run_near_cutoff(tmp_path, clean, store, "CANCEL_TASK")
    install, scan = result["tasks"]
    assert (install["task"], install["status"]) == ("install-all", "TIMED_OUT")
    assert install["timed_out"] == ["deb-a", "deb-b", "deb-c"]
    assert (scan["task"], scan["status"]) == ("scan-after", "SKIPPED")

    # deb-a: scanned, its pre-install hook ran across the cutoff, its install never started,
    # the on-exit hook still ran; deb-b and deb-c never started
    assert {n: _versions(clean, n) for n in clean.names} == before
    assert _marker(clean, "deb-a", "pre-install-ran") and _marker(clean, "deb-a", "on-exit-ran")
    for late in ("deb-b", "deb-c"):
        assert not _marker(clean, late, "pre-install-ran")
        assert not _marker(clean, late, "on-exit-ran")

    rows = {r[0]: r[1:] for r in _rows(store, (
        "SELECT node_id, status, failure_reason, missing_count, operation_end_time "
        f"FROM node_summaries WHERE run_id = '{install['summary']['run_id']}'"))}
    status, reason, missing, a_end = rows["deb-a"]
    assert status == "NON_COMPLIANT" and missing > 0  # its scan result stands
    assert reason.startswith("TIMED_OUT: ") and "during the pre-install hook" in reason
    assert "install not started" in reason and "CANCEL_TASK" in reason
    for late in ("deb-b", "deb-c"):
        status, reason, missing, end = rows[late]
        assert status == "FAILED" and missing == 0
        assert reason.startswith("TIMED_OUT: ") and "before this node started" in reason
        assert "cutoff passed" in reason and "CANCEL_TASK" in reason
        # given up at the cutoff itself, while deb-a's hook still ran (about 2 s more)
        assert (a_end - end).total_seconds() > 1


def test_continue_task_finishes_the_install_after_the_cutoff(prefect_api: None, clean: Any,
                                                             tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = _run_near_cutoff(tmp_path, clean, store, "CONTINUE_TASK")
    install, scan = result["tasks"]
    assert (install["status"], scan["status"]) == ("SUCCESS", "SKIPPED")
    assert "timed_out" not in install
    for node in clean.names:
        assert _versions(clean, node) == dict.fromkeys(APPROVED, "1.1"), node
        assert _marker(clean, node, "pre-install-ran") and _marker(clean, node, "on-exit-ran")
    rows = _rows(store, (
        "SELECT node_id, installed_pending_reboot_count > 0, failure_reason FROM node_summaries "
        f"WHERE run_id = '{install['summary']['run_id']}' ORDER BY node_id"))
    assert [(n, pending) for n, pending, _ in rows] == [
        ("deb-a", True), ("deb-b", True), ("deb-c", True)]
    assert not any("TIMED_OUT" in (reason or "") for *_, reason in rows)
