"""The audit trail: entries appended one file each, never rewritten, read by the audit view;
what-if and CLI operations append theirs."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchfleet.errors import StoreError
from patchfleet.store.audit import AuditEntry, append_audit, audit_files
from patchfleet.store.query import ComplianceStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_entries_are_appended_never_rewritten_and_read_by_the_view(tmp_path: Path) -> None:
    first = AuditEntry(action="SCAN", run_id="run-1", outcome="completed", targets="*",
                       target_count=3, baselines=["AWS-DebianDefaultPatchBaseline@0123"],
                       nodes=3, compliant=1, non_compliant=1, failed=1, occurred_at=T0,
                       prefect_flow_run_id="run-1")
    where = Path(append_audit(tmp_path, first))
    before = where.read_bytes()
    append_audit(tmp_path, AuditEntry(action="REPORT", run_id="run-1", outcome="wrote 2",
                                      occurred_at=T0.replace(hour=10)))
    assert where.read_bytes() == before and len(audit_files(tmp_path)) == 2
    assert where.relative_to(tmp_path).parts[:3] == ("audit", "date=2026-03-02", "run_id=run-1")
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT action, run_id, date, os_user, controller, targets, target_count, "
            "baselines, compliant, non_compliant, failed, outcome, prefect_flow_run_id "
            "FROM audit ORDER BY occurred_at")
    assert rows[0] == ("SCAN", "run-1", T0.date(), getpass.getuser(), socket.gethostname(),
                       "*", 3, ["AWS-DebianDefaultPatchBaseline@0123"], 1, 1, 1, "completed",
                       "run-1")
    assert rows[1][:2] == ("REPORT", "run-1")


def test_an_empty_store_has_an_empty_audit_view(tmp_path: Path) -> None:
    with ComplianceStore(tmp_path) as store:
        names, rows = store.query("SELECT * FROM audit")
    assert rows == [] and names[:3] == ["entry_id", "occurred_at", "action"]


def test_an_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="could not append to the audit trail"):
        append_audit(tmp_path, AuditEntry(action="SCAN", run_id="r", outcome="completed"))
    with pytest.raises(StoreError, match="not a usable run id"):
        append_audit(tmp_path, AuditEntry(action="SCAN", run_id="../../x", outcome="x"))
    with pytest.raises(ValueError, match="unknown audit action"):
        append_audit(tmp_path, AuditEntry(action="DELETE", run_id="r", outcome="x"))


def test_report_and_what_if_are_audited(tmp_path: Path) -> None:
    import asyncio

    from patchfleet.cli.app import app
    from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
    from patchfleet.domain.inventory import Inventory, Node
    from patchfleet.domain.records import Operation
    from patchfleet.domain.results import RunContext
    from patchfleet.ops.scan import ScanOptions, scan_nodes
    from patchfleet.store.writer import write_run
    from patchfleet.transport import ReplayConnector

    golden = Path(__file__).resolve().parents[1] / "golden" / "apt" / "debian12-host"
    registry = load_baselines(embedded_baselines_dir())
    nodes = Inventory(nodes=[Node(id="n1")]).resolved()
    results = asyncio.run(scan_nodes(nodes, registry, ScanOptions(now=T0),
                                     ReplayConnector.fleet(golden)))
    store = tmp_path / "store"
    write_run(store, RunContext(run_id="run-a", operation=Operation.SCAN, started_at=T0),
              results)
    runner = CliRunner()
    assert runner.invoke(app, ["report", "--store", str(store), "--run-id", "run-a",
                               "--out", str(tmp_path / "r")]).exit_code == 0
    assert runner.invoke(app, ["evaluate", "--store", str(store), "-b",
                               "example-debian-all-updates"]).exit_code == 0
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT action, run_id, outcome, baselines FROM audit "
                           "ORDER BY occurred_at")
    assert [r[0] for r in rows] == ["REPORT", "WHAT_IF"]
    assert rows[0][1] == "run-a" and rows[0][2].startswith("wrote ")
    assert rows[1][1].startswith("whatif-") and rows[1][2] == "not saved"
    assert rows[1][3][0].startswith("example-debian-all-updates@")
