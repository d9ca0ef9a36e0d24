"""A run's staging area: rows staged batch by batch commit to exactly what ``write_run`` writes,
and the reports, artifacts and snapshot of a run come from it, never from node results."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from test_reports import END, T0, results  # the report tests' three-node fleet

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.inventory import Inventory, Node
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.domain.snapshot import extend
from patchfleet.ops import summary
from patchfleet.ops.batches import BatchRecorder, scan_to_staging
from patchfleet.ops.scan import ScanOptions, scan_nodes
from patchfleet.ops.snapshots import SnapshotFreezer
from patchfleet.report.csv_reports import write_reports, write_reports_from_results
from patchfleet.store.staging import (
    STAGING_DIR,
    StagingArea,
    StagingWriter,
    commit_staged,
    read_nodes,
)
from patchfleet.store.writer import write_run
from patchfleet.transport import ReplayConnector

CTX = RunContext(run_id="run-s", operation=Operation.SCAN, started_at=T0, snapshot_id="snap")
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "apt"


def _stage_out_of_order(root: Path) -> StagingArea:
    """The fleet staged as two batches whose nodes finished out of input order."""
    db, ok, web = results()
    area = StagingArea.of(root, CTX.run_id)
    StagingWriter(area, CTX, "b").write([web, db], [2, 0])
    StagingWriter(area, CTX, "a").write([ok], [1])
    return area


def test_staged_run_commits_what_write_run_writes(tmp_path: Path) -> None:
    direct = write_run(tmp_path / "direct", CTX, results())
    area = _stage_out_of_order(tmp_path / "staged")
    assert area.path == tmp_path / "staged" / STAGING_DIR / "run_id=run-s"
    staged = commit_staged(tmp_path / "staged", CTX, area)
    assert staged.rows == direct.rows == {"patch_states": 12, "node_summaries": 3,
                                           "fact_elements": 0, "fact_lists": 0}
    for table in ("node_summaries", "patch_states"):
        a = pq.read_table(direct.paths[table])
        b = pq.read_table(staged.paths[table])
        assert a.schema.equals(b.schema, check_metadata=True)
        keys = [("node_id", "ascending")] + ([("package", "ascending")]
                                             if table == "patch_states" else [])
        assert a.sort_by(keys).equals(b.sort_by(keys))
    # node rows in run order (by ordinal), whatever order the batches finished in
    assert pq.read_table(staged.paths["node_summaries"]).column("node_id").to_pylist() == [
        "db-1", "ok-1", "web-1"]
    assert staged.paths["patch_states"].relative_to(tmp_path / "staged") == Path(
        "patch_states/date=2024-05-01/run_id=run-s/part-0.parquet")


def test_empty_staging_commits_an_empty_run(tmp_path: Path) -> None:
    written = commit_staged(tmp_path, CTX, StagingArea.of(tmp_path, CTX.run_id))
    assert written.rows == {"patch_states": 0, "node_summaries": 0,
                            "fact_elements": 0, "fact_lists": 0}
    assert pq.read_table(written.patch_states_path).num_rows == 0


def test_reports_and_summary_come_from_the_staged_rows(tmp_path: Path) -> None:
    area = _stage_out_of_order(tmp_path)
    nodes = read_nodes(area)
    assert [n["node_id"] for n in nodes] == ["db-1", "ok-1", "web-1"]
    from_results = write_reports_from_results(tmp_path / "r1", results(), detail_nodes=[])
    from_staging = write_reports(tmp_path / "r2", summary.report_nodes(nodes), {})
    assert from_staging.all_nodes.read_bytes() == from_results.all_nodes.read_bytes()
    assert [p.name for p in from_staging] == ["all-nodes.csv", "manifest-all-nodes-local.json"]

    assert summary.counts(nodes) == {"node_count": 3, "compliant": 1, "non_compliant": 1,
                                     "failed": 1}
    web = summary.node_row(nodes[2])
    assert (web.status, web.missing, web.platform, web.failure_reason) == (
        "NON_COMPLIANT", 5, "Ubuntu 22.04", "")
    md = summary.markdown(CTX, nodes)
    assert "**3** node(s): **1** compliant, **1** non-compliant, **1** failed." in md
    # patch states are the nodes' summary counts (the fleet's summaries are hand-made)
    assert "| INSTALLED | 1 |" in md and "| MISSING | 5 |" in md
    assert "| CRITICAL | 2 |" in md and "| UNSPECIFIED | 2 |" in md
    assert "- `db-1` (10.0.0.9): UNREACHABLE: timed out" in md
    assert nodes[2]["operation_end_time"] == END


def test_freezing_in_chunks_equals_freezing_at_once() -> None:
    fleet = [replace(r, operating_system="UBUNTU") for r in results()]
    fleet.append(replace(fleet[2], node_id="web-2", patch_group="db",
                         records=fleet[2].records[:3]))
    at = datetime(2024, 5, 2, tzinfo=UTC)
    whole = extend(None, "snap", at, fleet)
    first, second = SnapshotFreezer(None, "snap", at), SnapshotFreezer(None, "snap", at)
    first.add(fleet[:2])
    second.add(fleet[2:3])
    second.add(fleet[3:])
    merged = SnapshotFreezer(None, "snap", at)
    merged.merge(first.added())
    merged.merge(second.added())
    assert merged.snapshot() == whole
    # groups of the base are never changed
    again = SnapshotFreezer(whole, "snap", datetime(2025, 1, 1, tzinfo=UTC))
    again.add(fleet)
    assert again.snapshot() == whole and not again.added().entries


def test_scan_to_staging_records_every_node_and_its_frozen_groups(tmp_path: Path) -> None:
    registry = load_baselines(embedded_baselines_dir())
    nodes = Inventory(nodes=[Node(id=f"n{i}", tags={"PatchGroup": "web"})
                             for i in range(5)]).resolved()
    connector = ReplayConnector.fleet(GOLDEN / "debian12-host")
    options = ScanOptions(concurrency=2)
    area = StagingArea.of(tmp_path, CTX.run_id)
    recorder = BatchRecorder(area, CTX, "b1", chunk=2,
                             freezer=SnapshotFreezer(None, "snap", T0))
    counts = asyncio.run(scan_to_staging(nodes, registry, options, connector, recorder,
                                         first_ordinal=10))
    assert (counts.nodes, counts.non_compliant, counts.failed) == (5, 5, 0)
    staged = read_nodes(area)
    assert [n["node_id"] for n in staged] == [f"n{i}" for i in range(5)]
    assert [n["ordinal"] for n in staged] == list(range(10, 15))
    assert {n["operating_system"] for n in staged} == {"DEBIAN"}
    (part,) = area.snapshot_parts()
    assert "DEBIAN/web" in part.read_text()

    direct = asyncio.run(scan_nodes(nodes[:1], registry, options, connector))[0]
    assert staged[0]["missing_count"] == direct.summary.missing_count
    written = commit_staged(tmp_path, CTX, area)
    assert written.rows["patch_states"] == 5 * len(direct.records)
    area.remove()
    assert not area.path.exists()
