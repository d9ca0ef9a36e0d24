"""The maintenance-window and patch-policy flows end to end: a real (temporary) Prefect server,
the Debian test fleet over SSH, the Parquet store read back with DuckDB."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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

    forced = asyncio.run(maintenance_window(window="mw-web", file=path, force=True,
                                            now="2026-11-04T12:00:00+00:00"))
    assert "skipped" not in forced
    assert [(t["task"], t["status"]) for t in forced["tasks"]] == [
        ("scan-web", "SUCCESS"), ("scan-db", "SUCCESS")]
    assert forced["tasks"][0]["summary"]["node_count"] == 2
    rows = _rows(store, "SELECT node_id, snapshot_id FROM node_summaries ORDER BY node_id")
    assert rows == [(n, forced["execution_id"]) for n in ("deb-a", "deb-b", "deb-c")]


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

    summary = asyncio.run(patch_policy(policy="pol-web", operation="Scan", file=path))
    assert summary["node_count"] == 2
    rows = _rows(store, "SELECT DISTINCT execution_type FROM node_summaries WHERE run_id = "
                 f"'{summary['run_id']}'")
    assert rows == [("PATCH_POLICY",)]
