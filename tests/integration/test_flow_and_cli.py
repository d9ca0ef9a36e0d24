"""The Prefect flow and the CLI, end to end: real test nodes over SSH, a real (temporary)
Prefect server, the Parquet store read back with DuckDB, the CSV reports and the artifacts."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.report.csv_reports import SUMMARY_COLUMNS
from patchfleet.store.query import ComplianceStore

runner = CliRunner()


async def _artifacts(flow_run_id: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]))
        )
    return {a.key: a for a in arts}


def test_flow_scans_the_fleet_into_store_reports_and_artifacts(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    from flows.patch_nodes import patch_nodes

    store = tmp_path / "store"
    summary = asyncio.run(patch_nodes(inventory=str(fleet.inventory), targets="group:web",
                                      store=str(store), snapshot_id="snap-1", batch_size=1))
    assert (summary.node_count, summary.compliant, summary.non_compliant,
            summary.failed) == (2, 0, 2, 0)
    run_id = summary.run_id

    with ComplianceStore(store) as cs:
        _, rows = cs.query(
            "SELECT node_id, status, missing_count, snapshot_id, run_id FROM node_summaries "
            "ORDER BY node_id")
        assert rows == [("deb-a", "NON_COMPLIANT", 6, "snap-1", run_id),
                        ("deb-b", "NON_COMPLIANT", 6, "snap-1", run_id)]
        _, missing = cs.query(
            "SELECT package FROM latest_patch_states WHERE node_id = 'deb-a' "
            "AND state = 'MISSING' ORDER BY package")
        assert [m[0] for m in missing] == ["fake-curl", "fake-extra", "fake-held", "fake-sudo",
                                           "libfakessl3", "linux-image-fake"]

    with open(summary.report_files[0], newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == list(SUMMARY_COLUMNS)
    assert sorted(r[1] for r in table[1:]) == ["deb-a", "deb-b"]

    with ComplianceStore(store) as cs:  # the run is in the audit trail: who, what, outcome
        _, audit = cs.query(
            "SELECT action, run_id, targets, target_count, nodes, non_compliant, outcome, "
            "prefect_flow_run_id, snapshot_id, len(baselines), baselines[1] FROM audit")
    assert audit[0][:10] == ("SCAN", run_id, "group:web", 2, 2, 2, "completed", run_id,
                             "snap-1", 1)
    assert audit[0][10].startswith("AWS-DebianDefaultPatchBaseline@")

    arts = asyncio.run(_artifacts(run_id))
    assert {"patch-nodes", "patch-summary"} <= set(arts)
    data = arts["patch-nodes"].data
    rows_art = json.loads(data) if isinstance(data, str) else data
    assert sorted(r["node_id"] for r in rows_art) == ["deb-a", "deb-b"]
    assert "2** non-compliant" in str(arts["patch-summary"].data)
    dashboard = store / "reports" / "latest" / "dashboard.html"  # runs link, never write it
    assert (f"- fleet dashboard: not written yet; `patchfleet report --html --store {store}` "
            f"writes `{dashboard}`") in str(arts["patch-summary"].data)


def test_cli_scan_then_query_answers_which_nodes_are_non_compliant_and_why(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    inv = tmp_path / "inv.yaml"
    inv.write_text(fleet.inventory.read_text() + "  - id: ghost\n    host: 127.0.0.1\n"
                   "    port: 1\n")
    result = runner.invoke(app, ["scan", "-i", str(inv), "--store", str(store), "-o", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["non_compliant"], summary["failed"]) == (3, 1)

    q = runner.invoke(app, ["query", "--store", str(store), "-o", "json",
                            "SELECT node_id, status, reason FROM noncompliant_nodes "
                            "ORDER BY node_id"])
    assert q.exit_code == 0, q.output
    rows = {r["node_id"]: r for r in json.loads(q.stdout)}
    assert set(rows) == {"deb-a", "deb-b", "deb-c", "ghost"}
    assert rows["ghost"]["status"] == "FAILED"
    assert rows["ghost"]["reason"].startswith("UNREACHABLE")
    assert "6 missing" in rows["deb-a"]["reason"]

    report = runner.invoke(app, ["report", "--store", str(store), "--out",
                                 str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "rep" / "all-nodes.csv").exists()

    # the scan wrote only the all-nodes report; a node's own report is on demand
    run_folder = Path(summary["report_folder"])
    assert sorted(p.name for p in run_folder.iterdir()) == ["all-nodes.csv",
                                                            "manifest-all-nodes-local.json"]
    one = runner.invoke(app, ["report", "--store", str(store), "--node", "deb-a", "--out",
                              str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    assert sorted(p.name for p in (tmp_path / "one" / "nodes").iterdir()) == [
        "deb-a-patches.csv", "deb-a-summary.csv"]
    with open(tmp_path / "one" / "nodes" / "deb-a-patches.csv", newline="",
              encoding="utf-8") as fh:
        detail = list(csv.reader(fh))
    assert sum(1 for r in detail[1:] if r[5] == "MISSING") == 6


def test_cli_scans_this_machine(prefect_api: None, tmp_path: Path) -> None:
    """The quickstart's job: the embedded default inventory (the local node, real apt)."""
    store = tmp_path / "store"
    result = runner.invoke(app, ["scan", "--no-refresh", "--store", str(store), "-o", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (node,) = summary["nodes"]
    assert node["node_id"] == "local"
    assert node["status"] in ("COMPLIANT", "NON_COMPLIANT"), node
    assert list(store.glob("patch_states/date=*/run_id=*/*.parquet"))
    assert Path(summary["report_files"][0]).exists()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["scan", "-i", "{tmp}/missing.yaml"], 2, "file not found"),
        (["scan", "-i", "{tmp}/bad.yaml"], 2, "nodes.0.hots: unknown key"),
        (["scan", "-b", "No-Such-Baseline"], 2, "No-Such-Baseline"),
        (["scan", "-t", "nobody"], 2, "selects no node"),
        (["scan", "--store", "{tmp}/afile/store"], 1, "afile"),
        (["scan", "--concurrency", "0"], 2, "--concurrency"),
        (["baseline", "validate", "{tmp}/bad-baseline.yaml"], 2, "approval_rules"),
    ],
)
def test_cli_bad_input_exits_non_zero_before_writing(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    (tmp_path / "bad.yaml").write_text("nodes:\n  - id: a\n    hots: x\n")
    (tmp_path / "afile").write_text("a file, not a folder\n")
    (tmp_path / "bad-baseline.yaml").write_text(
        "name: bad\noperating_system: DEBIAN\napproval_rules:\n"
        "  - patch_filters: [{key: PRIORTY, values: [Required]}]\n")
    store = tmp_path / "store-untouched"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[0] == "scan" and "--store" not in argv:
        argv += ["--store", str(store)]
    result = runner.invoke(app, argv)
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not store.exists()


def test_cli_baseline_export_import_round_trip(tmp_path: Path) -> None:
    exported = tmp_path / "aws.json"
    r = runner.invoke(app, ["baseline", "export", "example-debian-all-updates", "--out",
                            str(exported)])
    assert r.exit_code == 0, r.output
    data = json.loads(exported.read_text())
    assert data["Name"] == "example-debian-all-updates"
    assert data["ApprovalRules"]["PatchRules"][0]["EnableNonSecurity"] is True
    r = runner.invoke(app, ["baseline", "import", str(exported), "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    imported = tmp_path / "example-debian-all-updates.yaml"
    r = runner.invoke(app, ["baseline", "validate", str(imported)])
    assert r.exit_code == 0 and "is valid" in r.output
    again = runner.invoke(app, ["baseline", "import", str(exported), "--out-dir",
                                str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output
    shown = runner.invoke(app, ["baseline", "show", "example-debian-all-updates",
                                "--baselines-dir", str(tmp_path), "--format", "aws-json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout) == data


def _versions(fleet: Any, node: str) -> str:
    return str(fleet.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n'", check=True).stdout)


def test_cli_install_dry_run_then_no_reboot_install(prefect_api: None, fleet: Any,
                                                    tmp_path: Path) -> None:
    store = tmp_path / "store"
    before = _versions(fleet, "deb-c")
    try:
        dry = runner.invoke(app, ["install", "-i", str(fleet.inventory), "-t", "deb-c",
                                  "--store", str(store), "--dry-run", "--no-refresh"])
        assert dry.exit_code == 0, dry.output
        assert "libfakessl3" in dry.stdout and "1.0 -> 1.1" in dry.stdout
        assert _versions(fleet, "deb-c") == before
        assert not list(store.glob("patch_states/**/*.parquet"))

        done = runner.invoke(app, ["install", "-i", str(fleet.inventory), "-t", "deb-c",
                                   "--store", str(store), "--reboot-option", "NoReboot",
                                   "--no-refresh", "-o", "json"])
        assert done.exit_code == 0, done.output
        summary = json.loads(done.stdout)
        assert summary["operation"] == "INSTALL" and summary["rebooted"] == []
        (row,) = summary["nodes"]
        assert row["pending_reboot"] >= 5 and row["status"] == "NON_COMPLIANT"
        with ComplianceStore(store) as cs:
            _, rows = cs.query("SELECT operation, reboot_option, "
                               "last_no_reboot_install_operation_time IS NOT NULL "
                               "FROM node_summaries")
        assert rows == [("INSTALL", "NoReboot", True)]
        assert "libfakessl3 1.1" in _versions(fleet, "deb-c")
    finally:
        fleet.reset("deb-c")


def test_cli_install_threshold_exit_code_and_refused_combination(
    prefect_api: None, fleet: Any, tmp_path: Path
) -> None:
    import yaml

    data = yaml.safe_load(fleet.inventory.read_text())
    data["nodes"].insert(0, {"id": "ghost", "host": "127.0.0.1", "port": 1})  # fails first
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump(data))
    before = _versions(fleet, "deb-a")
    try:
        r = runner.invoke(app, ["install", "-i", str(inv), "-t", "ghost,deb-a", "--store",
                                str(tmp_path / "s"), "--max-concurrency", "1",
                                "--max-errors", "0", "--no-refresh"])
        assert r.exit_code == 3, r.output
        assert "error threshold" in r.output
        assert _versions(fleet, "deb-a") == before
    finally:
        fleet.reset("deb-a")

    override = tmp_path / "override.yaml"
    override.write_text("patches:\n  - id: fake-curl\n")
    r = runner.invoke(app, ["install", "-i", str(inv), "--install-override-list",
                            str(override), "-b", "example-debian-all-updates", "--store",
                            str(tmp_path / "s2")])
    assert r.exit_code == 2 and "cannot be used together" in r.output


def test_snapshot_freezes_the_approved_set_across_runs(prefect_api: None, fleet: Any,
                                                       tmp_path: Path) -> None:
    """A SnapshotId judges every node of an (OS, patch group) by the decision frozen when the
    id was first used, even after the baseline changed."""
    from flows.patch_nodes import patch_nodes

    store = tmp_path / "store"
    security = {"fake-curl", "fake-extra", "fake-held", "fake-sudo", "libfakessl3",
                "linux-image-fake"}

    def missing(node: str, run_id: str) -> set[str]:
        with ComplianceStore(store) as cs:
            _, rows = cs.query("SELECT package FROM patch_states WHERE node_id = ? AND "
                               "run_id = ? AND state = 'MISSING'", [node, run_id])
        return {r[0] for r in rows}

    first = asyncio.run(patch_nodes(inventory=str(fleet.inventory), targets="deb-a",
                                    store=str(store), snapshot_id="snap-a", refresh=False))
    assert missing("deb-a", first.run_id) == security
    assert (store / "snapshots" / "snap-a.json").exists()

    # the baseline now approves non-security updates too, but the snapshot was frozen before
    later = asyncio.run(patch_nodes(inventory=str(fleet.inventory), targets="deb-b",
                                    store=str(store), snapshot_id="snap-a", refresh=False,
                                    baseline_override="example-debian-all-updates"))
    assert missing("deb-b", later.run_id) == security
    unfrozen = asyncio.run(patch_nodes(inventory=str(fleet.inventory), targets="deb-b",
                                       store=str(store), refresh=False,
                                       baseline_override="example-debian-all-updates"))
    assert missing("deb-b", unfrozen.run_id) > security
