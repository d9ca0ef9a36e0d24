"""The compliance store for real: pyarrow writes, DuckDB (and pandas) read, on tmp folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchfleet.domain.records import (
    NON_COMPLIANT_STATES,
    ComplianceLevel,
    ComplianceSummary,
    ExecutionType,
    NodeStatus,
    Operation,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.errors import QueryError, StoreError
from patchfleet.store import writer
from patchfleet.store.query import ComplianceStore
from patchfleet.store.schema import (
    NODE_SUMMARIES,
    NODE_SUMMARIES_SCHEMA,
    PATCH_STATES,
    PATCH_STATES_SCHEMA,
    RUN_ID_KEY,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    SCHEMAS,
    TABLE_KEY,
    file_schema,
)
from patchfleet.store.writer import write_run

# Copied from DESIGN.md, "Compliance store": the contract analysts rely on.
DESIGN_PATCH_STATES = [
    "node_id", "package", "arch", "installed_version", "available_version", "state",
    "classification", "severity", "priority", "section", "advisory_ids", "cve_ids",
    "release_date", "compliance_level", "run_id", "snapshot_id", "operation", "execution_type",
    "baseline_id", "scanned_at",
]  # fmt: skip
DESIGN_NODE_SUMMARIES = [
    "node_id", "host", "platform_name", "platform_version", "patch_group", "baseline_id",
    "status", "overall_severity", "failure_reason", "installed_count", "installed_other_count",
    "installed_pending_reboot_count", "installed_rejected_count", "missing_count",
    "failed_count", "not_applicable_count", "critical_non_compliant_count",
    "security_non_compliant_count", "other_non_compliant_count", "operation",
    "operation_start_time", "operation_end_time", "reboot_option",
    "last_no_reboot_install_operation_time", "run_id", "snapshot_id", "execution_type",
]  # fmt: skip
PATCH_EXTENSIONS = ["source_package", "repository", "held", "security"]
NODE_V2 = ["operating_system", "tags", "inventory_source", "baseline_hash", "what_if",
           "facts_run_id", "product", "package_manager", "os_id", "os_pretty_name",
           "os_codename", "os_id_like", "collected_at", "boot_time", "refresh_attempted",
           "refresh_ok", "refresh_message", "facts_warnings", "run_label"]
NODE_EXTENSIONS = ["warnings", "boot_id", "restart_needed", "auto_updaters", "reboot_required",
                   "reboot_required_packages", *NODE_V2]

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def rec(
    package: str,
    state: PatchState,
    level: ComplianceLevel | None = None,
    **kw: object,
) -> PatchRecord:
    return PatchRecord(
        package=package,
        arch=str(kw.pop("arch", "amd64")),
        installed_version=kw.pop("installed_version", "1.0"),  # type: ignore[arg-type]
        available_version=kw.pop("available_version", "1.1"),  # type: ignore[arg-type]
        state=state,
        compliance_level=level,
        **kw,  # type: ignore[arg-type]
    )


def node(
    node_id: str,
    records: tuple[PatchRecord, ...] = (),
    *,
    start: datetime = T0,
    status: NodeStatus | None = None,
    failure_reason: str | None = None,
    **kw: object,
) -> NodeResult:
    missing = sum(r.state is PatchState.MISSING for r in records)
    installed = sum(r.state is PatchState.INSTALLED for r in records)
    noncompliant = [r for r in records if r.state.non_compliant]
    if status is None:
        status = NodeStatus.NON_COMPLIANT if noncompliant else NodeStatus.COMPLIANT
    levels = [r.compliance_level or ComplianceLevel.UNSPECIFIED for r in noncompliant]
    severity = min(levels, key=list(ComplianceLevel).index) if levels else None
    summary = ComplianceSummary(
        status=status,
        overall_severity=severity,
        installed_count=installed,
        missing_count=missing,
        critical_non_compliant_count=sum(lv is ComplianceLevel.CRITICAL for lv in levels),
    )
    return NodeResult(
        node_id=node_id,
        host=str(kw.pop("host", f"{node_id}.example.net")),
        summary=summary,
        records=records,
        operation_start_time=start,
        operation_end_time=start + timedelta(seconds=30),
        platform_name="Debian",
        platform_version="12",
        patch_group="web",
        baseline_id="debian-default",
        failure_reason=failure_reason,
        **kw,  # type: ignore[arg-type]
    )


def failed(node_id: str, reason: str, start: datetime = T0) -> NodeResult:
    return node(node_id, status=NodeStatus.FAILED, failure_reason=reason, start=start)


def ctx(run_id: str = "run-a", started: datetime = T0, **kw: object) -> RunContext:
    return RunContext(run_id=run_id, operation=Operation.SCAN, started_at=started, **kw)  # type: ignore[arg-type]


def fleet() -> list[NodeResult]:
    return [
        node(
            "web-1",
            (
                rec(
                    "openssl",
                    PatchState.MISSING,
                    ComplianceLevel.CRITICAL,
                    advisory_ids=("DSA-5678-1",),
                    cve_ids=("CVE-2024-1", "CVE-2024-2"),
                    security=True,
                    release_date=datetime(2024, 4, 30, tzinfo=UTC),
                    source_package="openssl",
                    repository="bookworm-security",
                ),
                rec("bash", PatchState.INSTALLED, available_version=None, held=True),
            ),
            warnings=("apt lists are 9 days old",),
        ),
        failed("db-1", "UNREACHABLE: connect timed out after 10 s"),
    ]


def glob_rows(root: Path, table: str) -> list[tuple[object, ...]]:
    """What an analyst gets with the documented plain DuckDB call (no patchfleet code)."""
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT * FROM read_parquet('{root}/{table}/**/*.parquet', hive_partitioning=true)"
        ).fetchall()


# --- schema -----------------------------------------------------------------------------------


def test_schemas_follow_design_then_extensions() -> None:
    assert PATCH_STATES_SCHEMA.names == DESIGN_PATCH_STATES + PATCH_EXTENSIONS
    assert NODE_SUMMARIES_SCHEMA.names == DESIGN_NODE_SUMMARIES + NODE_EXTENSIONS
    for schema in (PATCH_STATES_SCHEMA, NODE_SUMMARIES_SCHEMA):
        for field in schema:
            if field.name.endswith(("_time", "_at", "_date")):
                assert field.type == pa.timestamp("us", tz="UTC"), field.name
    assert PATCH_STATES_SCHEMA.field("advisory_ids").type.value_type == pa.string()
    assert PATCH_STATES_SCHEMA.field("cve_ids").type.value_type == pa.string()
    assert NODE_SUMMARIES_SCHEMA.field("missing_count").type == pa.int32()


def test_views_keep_design_column_order(tmp_path: Path) -> None:
    write_run(tmp_path, ctx(), fleet())
    with ComplianceStore(tmp_path) as store:
        cols, _ = store.query("SELECT * FROM patch_states")
        assert cols == DESIGN_PATCH_STATES + PATCH_EXTENSIONS + ["date"]
        cols, _ = store.query("SELECT * FROM node_summaries")
        assert cols == DESIGN_NODE_SUMMARIES + NODE_EXTENSIONS + ["date"]


# --- writing ----------------------------------------------------------------------------------


def test_round_trip_through_views(tmp_path: Path) -> None:
    written = write_run(tmp_path, ctx(snapshot_id="snap-1"), fleet())
    assert written.rows == {"patch_states": 2, "node_summaries": 2,
                            "fact_elements": 0, "fact_lists": 0}
    assert written.patch_states_path == (
        tmp_path / "patch_states/date=2024-05-01/run_id=run-a/part-0.parquet"
    )
    assert written.node_summaries_path.is_file()

    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT package, state, advisory_ids, cve_ids, compliance_level, run_id, snapshot_id,"
            " operation, execution_type, baseline_id, scanned_at, release_date, held, security,"
            " repository, date FROM patch_states ORDER BY package"
        )
        assert rows == [
            ("bash", "INSTALLED", [], [], None, "run-a", "snap-1", "SCAN", "COMMAND",
             "debian-default", T0 + timedelta(seconds=30), None, True, False, None,
             date(2024, 5, 1)),
            ("openssl", "MISSING", ["DSA-5678-1"], ["CVE-2024-1", "CVE-2024-2"], "CRITICAL",
             "run-a", "snap-1", "SCAN", "COMMAND", "debian-default", T0 + timedelta(seconds=30),
             datetime(2024, 4, 30, tzinfo=UTC), False, True, "bookworm-security",
             date(2024, 5, 1)),
        ]  # fmt: skip
        _, rows = store.query(
            "SELECT node_id, host, status, overall_severity, missing_count, warnings,"
            " operation_end_time FROM node_summaries WHERE node_id = 'web-1'"
        )
        assert rows == [
            ("web-1", "web-1.example.net", "NON_COMPLIANT", "CRITICAL", 1,
             ["apt lists are 9 days old"], T0 + timedelta(seconds=30)),
        ]  # fmt: skip


def test_failed_node_is_recorded_with_reason_and_zero_counts(tmp_path: Path) -> None:
    write_run(tmp_path, ctx(), fleet())
    with ComplianceStore(tmp_path) as store:
        counts = ", ".join(f for f in DESIGN_NODE_SUMMARIES if f.endswith("_count"))
        _, rows = store.query(
            f"SELECT status, failure_reason, host, {counts} FROM node_summaries"
            " WHERE node_id = 'db-1'"
        )
        assert rows == [("FAILED", "UNREACHABLE: connect timed out after 10 s",
                         "db-1.example.net", *([0] * 10))]  # fmt: skip
        _, rows = store.query("SELECT count(*) FROM patch_states WHERE node_id = 'db-1'")
        assert rows == [(0,)]
        _, rows = store.query(
            "SELECT node_id, status, reason, missing_packages FROM noncompliant_nodes"
        )
        assert rows == [
            ("db-1", "FAILED", "UNREACHABLE: connect timed out after 10 s", []),
            ("web-1", "NON_COMPLIANT", "1 missing; highest severity CRITICAL", ["openssl"]),
        ]


def test_schema_version_and_table_in_file_metadata(tmp_path: Path) -> None:
    written = write_run(tmp_path, ctx(), fleet())
    for table, path in written.paths.items():
        meta = pq.read_schema(path).metadata
        assert meta[SCHEMA_VERSION_KEY] == str(SCHEMA_VERSION).encode() == b"2"
        assert meta[TABLE_KEY] == table.encode()
        assert meta[RUN_ID_KEY] == b"run-a"
        # run_id and date come from the partition path only
        names = pq.read_schema(path).names
        assert "run_id" not in names and "date" not in names
        assert names == file_schema(table).names


def test_plain_readers_see_partition_columns_without_conflict(tmp_path: Path) -> None:
    """The documented analyst call, pandas and pyarrow datasets all read the store as is."""
    write_run(tmp_path, ctx(), fleet())
    write_run(tmp_path, ctx("run-b", T0 + timedelta(days=1)), fleet())
    with duckdb.connect() as con:
        types = dict(
            con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet("
                f"'{tmp_path}/node_summaries/**/*.parquet', hive_partitioning=true))"
            ).fetchall()
        )
    assert types["run_id"] == "VARCHAR" and types["date"] == "DATE"
    assert types["operation_end_time"] == "TIMESTAMP WITH TIME ZONE"
    assert len(glob_rows(tmp_path, "node_summaries")) == 4

    frame = pd.read_parquet(tmp_path / "patch_states")
    assert sorted(frame["run_id"].astype(str).unique()) == ["run-a", "run-b"]
    assert len(pq.read_table(tmp_path / "node_summaries")) == 4


def test_date_partition_is_utc_day_of_run_start(tmp_path: Path) -> None:
    evening_in_chicago = datetime(2024, 5, 1, 21, 30, tzinfo=timezone(timedelta(hours=-5)))
    written = write_run(tmp_path, ctx(started=evening_in_chicago), fleet())
    assert written.date == date(2024, 5, 2)
    assert "date=2024-05-02" in written.node_summaries_path.parts


def test_run_without_records_still_writes_node_summaries(tmp_path: Path) -> None:
    written = write_run(tmp_path, ctx(), [failed("a", "AUTH_FAILED: key rejected"), node("b")])
    assert written.rows == {"patch_states": 0, "node_summaries": 2,
                            "fact_elements": 0, "fact_lists": 0}
    assert written.patch_states_path.is_file()
    with ComplianceStore(tmp_path) as store:
        assert store.query("SELECT count(*) FROM patch_states")[1] == [(0,)]
        _, rows = store.query("SELECT node_id, status FROM latest_node_summaries ORDER BY 1")
        assert rows == [("a", "FAILED"), ("b", "COMPLIANT")]


def test_refuses_to_overwrite_a_stored_run(tmp_path: Path) -> None:
    written = write_run(tmp_path, ctx(), fleet())
    before = written.node_summaries_path.read_bytes()
    # even on another day, the same run id is the same run
    with pytest.raises(StoreError, match=r"already in the compliance store.*never overwritten"):
        write_run(tmp_path, ctx(started=T0 + timedelta(days=3)), [node("other")])
    assert written.node_summaries_path.read_bytes() == before
    assert not (tmp_path / "node_summaries" / "date=2024-05-04").exists()


@pytest.mark.parametrize("run_id", ["20240501", "2024-05-01", "-5", "0x1F", "a/b", ".x", "", "a=b"])
def test_rejects_run_ids_that_break_partition_paths(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(StoreError, match="run id"):
        write_run(tmp_path, ctx(run_id), fleet())
    assert not list(tmp_path.rglob("*.parquet"))


def test_accepts_prefect_flow_run_ids(tmp_path: Path) -> None:
    run_id = "12345678-1234-4234-8234-123456789012"
    write_run(tmp_path, ctx(run_id), fleet())
    assert {row[-1] for row in glob_rows(tmp_path, "node_summaries")} == {run_id}


def test_unwritable_root_fails_up_front_even_as_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    root = blocker / "store"
    with pytest.raises(StoreError) as info:
        write_run(root, ctx(), fleet())
    message = str(info.value)
    assert str(root) in message and "--store" in message
    assert blocker.read_text() == "not a folder"


def _as_nobody(fn: Callable[[], None]) -> int:
    """Run ``fn`` in a forked child that dropped root (root ignores directory permissions)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_read_only_root_fails_up_front(tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o555)

    def attempt() -> None:
        try:
            write_run(target / "store", ctx(), fleet())
        except StoreError as err:
            assert str(target / "store") in str(err)
            return
        raise AssertionError("write_run wrote into a read-only folder")

    try:
        if os.geteuid() == 0:
            tmp_path.chmod(0o755)
            for parent in tmp_path.parents:  # let the unprivileged child reach tmp_path
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o001)
            assert _as_nobody(attempt) == 0
        else:
            attempt()
        assert not (target / "store").exists()
    finally:
        target.chmod(0o755)


def test_check_writable_creates_the_table_folders(tmp_path: Path) -> None:
    writer.check_writable(tmp_path / "new")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "fact_elements",
        "fact_lists",
        "node_summaries",
        "patch_states",
    ]


# --- crashes ----------------------------------------------------------------------------------


def test_failed_rename_leaves_nothing_visible_and_retry_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error", str(dst))

    monkeypatch.setattr(writer.os, "replace", broken_replace)
    with pytest.raises(StoreError, match="nothing was kept"):
        write_run(tmp_path, ctx(), fleet())
    monkeypatch.undo()

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    with ComplianceStore(tmp_path) as store:
        assert store.query("SELECT count(*) FROM node_summaries")[1] == [(0,)]
    write_run(tmp_path, ctx(), fleet())  # the run id is free again


def test_crash_between_the_renames_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls: list[str] = []

    def second_fails(src: str, dst: str) -> None:
        calls.append(str(dst))
        if len(calls) == 4:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", second_fails)
    with pytest.raises(StoreError):
        write_run(tmp_path, ctx(), fleet())
    assert [table in call for table, call in zip(
        ("patch_states", "fact_elements", "fact_lists", "node_summaries"), calls,
        strict=True)] == [True] * 4
    assert list(tmp_path.rglob("*.parquet")) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_leftover_temp_file_of_a_killed_writer_is_invisible(tmp_path: Path) -> None:
    """A SIGKILL between write and rename leaves ``.part-0.parquet.<rand>.tmp`` behind."""
    write_run(tmp_path, ctx(), fleet())
    partition = tmp_path / "node_summaries/date=2024-05-01/run_id=run-z"
    partition.mkdir(parents=True)
    from patchfleet.store.schema import node_summaries_table

    table = node_summaries_table(ctx("run-z"), fleet()).drop_columns(["run_id"])
    pq.write_table(table, partition / ".part-0.parquet.0123456789ab.tmp")

    assert len(glob_rows(tmp_path, "node_summaries")) == 2
    assert len(pd.read_parquet(tmp_path / "node_summaries")) == 2
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query("SELECT DISTINCT run_id FROM node_summaries")
        assert rows == [("run-a",)]
    # the half-written run was never committed, so its id can still be written
    write_run(tmp_path, ctx("run-z", T0 + timedelta(hours=1)), fleet())


# --- views ------------------------------------------------------------------------------------


def test_empty_store_has_typed_empty_views(tmp_path: Path) -> None:
    root = tmp_path / "never-written"
    with ComplianceStore(root) as store:
        for view in ComplianceStore.VIEWS:
            cols, rows = store.query(f"SELECT * FROM {view}")
            assert cols and rows == [], view
        types = dict(store.query("SELECT column_name, column_type FROM (DESCRIBE patch_states)")[1])
        assert types["cve_ids"] == "VARCHAR[]"
        assert types["scanned_at"] == "TIMESTAMP WITH TIME ZONE"
        assert types["held"] == "BOOLEAN" and types["date"] == "DATE"
        assert store.to_arrow("SELECT * FROM noncompliant_nodes").num_rows == 0
        assert len(store.to_pandas("SELECT * FROM compliance_history")) == 0

        # files written after opening show up on the next query
        write_run(root, ctx(), fleet())
        assert store.query("SELECT count(*) FROM node_summaries")[1] == [(2,)]
        assert store.query("SELECT count(*) FROM latest_patch_states")[1] == [(2,)]


def test_table_folder_without_files_is_empty_not_an_error(tmp_path: Path) -> None:
    writer.check_writable(tmp_path)  # creates patch_states/ and node_summaries/, no files
    with ComplianceStore(tmp_path) as store:
        assert store.query("SELECT count(*) FROM latest_node_summaries")[1] == [(0,)]


def test_two_runs_latest_views_pick_the_newer(tmp_path: Path) -> None:
    day2 = T0 + timedelta(days=1)
    write_run(tmp_path, ctx("run-1"), [*fleet(), node("app-1")])
    write_run(
        tmp_path,
        ctx("run-2", day2),
        [
            node("web-1", (rec("openssl", PatchState.INSTALLED, ComplianceLevel.CRITICAL),),
                 start=day2),
            node("db-1", (rec("zlib", PatchState.MISSING, ComplianceLevel.LOW),), start=day2),
        ],
    )  # fmt: skip
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT node_id, run_id, status, date FROM latest_node_summaries ORDER BY node_id"
        )
        assert rows == [
            ("app-1", "run-1", "COMPLIANT", date(2024, 5, 1)),
            ("db-1", "run-2", "NON_COMPLIANT", date(2024, 5, 2)),
            ("web-1", "run-2", "COMPLIANT", date(2024, 5, 2)),
        ]
        _, rows = store.query(
            "SELECT node_id, package, state, run_id FROM latest_patch_states ORDER BY node_id"
        )
        assert rows == [
            ("db-1", "zlib", "MISSING", "run-2"),
            ("web-1", "openssl", "INSTALLED", "run-2"),
        ]
        _, rows = store.query("SELECT node_id, reason, missing_packages FROM noncompliant_nodes")
        assert rows == [("db-1", "1 missing; highest severity LOW", ["zlib"])]
        _, rows = store.query(
            "SELECT date, run_id, nodes, compliant_nodes, non_compliant_nodes, failed_nodes,"
            " compliant_pct, missing_patches FROM compliance_history"
        )
        assert rows == [
            (date(2024, 5, 1), "run-1", 3, 1, 1, 1, 50.0, 1),
            (date(2024, 5, 2), "run-2", 2, 1, 1, 0, 50.0, 1),
        ]


def test_latest_failed_scan_hides_an_older_compliant_one(tmp_path: Path) -> None:
    write_run(tmp_path, ctx("run-1"), [node("web-1")])
    later = T0 + timedelta(hours=2)
    write_run(tmp_path, ctx("run-2", later), [failed("web-1", "TIMEOUT: apt-get", later)])
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query("SELECT node_id, status, reason FROM noncompliant_nodes")
        assert rows == [("web-1", "FAILED", "TIMEOUT: apt-get")]
        assert store.query("SELECT count(*) FROM latest_patch_states")[1] == [(0,)]


def test_noncompliant_severity_counts_cover_exactly_the_noncompliant_states(
    tmp_path: Path,
) -> None:
    levels = [*ComplianceLevel, None]
    records = tuple(
        rec(f"{state.value.lower()}-{level or 'none'}", state, level)
        for state in PatchState
        for level in levels
    )
    write_run(tmp_path, ctx(), [node("n", records)])
    per_level = len(NON_COMPLIANT_STATES)
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT * EXCLUDE (node_id, run_id) FROM noncompliant_severity_counts"
        )
    # CRITICAL..INFORMATIONAL once per non-compliant state; UNSPECIFIED also gets the None ones
    assert rows == [(per_level, per_level, per_level, per_level, per_level, 2 * per_level)]


# --- migration: files written by old patchfleet code (tests/cases/store/v1/README.md) ----------

OLD_STORES = Path(__file__).resolve().parents[1] / "cases" / "store" / "v1"
# layout folder -> (its run id, the node_summaries columns its writer did not have yet)
OLD_LAYOUTS = {
    "initial": ("v1-initial-scan", ("boot_id", "restart_needed", "auto_updaters",
                                    "reboot_required", "reboot_required_packages", *NODE_V2)),
    "boot_id": ("v1-boot-id-scan", ("restart_needed", "auto_updaters", "reboot_required",
                                    "reboot_required_packages", *NODE_V2)),
}
OLD_RUN_DAY = date(2026, 12, 4)
GONE_REASON = (
    "UNREACHABLE: connection refused by 127.0.0.1:9 ([Errno 111] Connect call failed "
    "('127.0.0.1', 9)); is sshd running and listening on port 9?"
)
# What the old scans found, as plain values (node_id, host, platform_name, platform_version,
# patch_group, baseline_id, status, overall_severity, failure_reason, installed_count,
# installed_other_count, missing_count, failed_count, security_non_compliant_count,
# other_non_compliant_count, operation, execution_type, snapshot_id, reboot_option, warnings)
OLD_NODE_ROWS = [
    ("deb12-fresh", "deb12-fresh", "Debian GNU/Linux", "12", "web",
     "AWS-DebianDefaultPatchBaseline", "NON_COMPLIANT", "UNSPECIFIED", None, 0, 126, 6, 0, 6, 0,
     "SCAN", "COMMAND", None, None, []),
    ("gone", "127.0.0.1", None, None, "web", None, "FAILED", None, GONE_REASON, 0, 0, 0, 0, 0, 0,
     "SCAN", "COMMAND", None, None, []),
    ("rocky9-fresh", "rocky9-fresh", "Rocky Linux", "9.5", "db",
     "AWS-RockyLinuxDefaultPatchBaseline", "NON_COMPLIANT", "UNSPECIFIED", None, 0, 6, 8, 0, 3, 5,
     "SCAN", "COMMAND", None, None, []),
]  # fmt: skip
OLD_NODE_COLUMNS = (
    "node_id, host, platform_name, platform_version, patch_group, baseline_id, status, "
    "overall_severity, failure_reason, installed_count, installed_other_count, missing_count, "
    "failed_count, security_non_compliant_count, other_non_compliant_count, operation, "
    "execution_type, snapshot_id, reboot_option, warnings"
)
# The boot ids the old code read from the golden captures (the initial layout had no column).
OLD_BOOT_IDS = {"deb12-fresh": "c7ca3321-1e90-4fb8-bc92-c9443f0dfeea",
                "rocky9-fresh": "1a7ad1c0-c009-4744-b7f9-6f6b868f6830", "gone": None}
OLD_PATCH_ROWS = {
    # (node_id, package): (arch, installed, available, state, classification, severity, priority,
    #   section, advisory_ids, cve_ids, release_date, compliance_level, baseline_id,
    #   source_package, repository, held, security)
    ("rocky9-fresh", "fake-openssl-libs"): (
        "x86_64", "1:1.0-1", "1:1.1-1", "MISSING", "Security", "Critical", None, None,
        ["FAKESA-2025:0001"], ["CVE-2025-10001"], datetime(2025, 5, 2, 8, 0, tzinfo=UTC),
        "UNSPECIFIED", "AWS-RockyLinuxDefaultPatchBaseline", "fake-openssl", "fake-updates",
        False, True),
    ("rocky9-fresh", "fake-sudo"): (
        "x86_64", "1.0-1", "1.2-1", "MISSING", "Bugfix", None, None, None,
        ["FAKEBA-2025:0008", "FAKESA-2025:0004"], ["CVE-2025-10005"],
        datetime(2025, 6, 26, 10, 0, tzinfo=UTC), "UNSPECIFIED",
        "AWS-RockyLinuxDefaultPatchBaseline", "fake-sudo", "fake-updates", False, False),
    ("deb12-fresh", "fake-sudo"): (
        "amd64", "1.0", "1.1", "MISSING", "Security", "optional", "optional", "admin", [], [],
        None, "UNSPECIFIED", "AWS-DebianDefaultPatchBaseline", "fake-sudo",
        "Debian-Security:bookworm-security", False, True),
}  # fmt: skip
OLD_PATCH_COLUMNS = (
    "arch, installed_version, available_version, state, classification, severity, priority, "
    "section, advisory_ids, cve_ids, release_date, compliance_level, baseline_id, "
    "source_package, repository, held, security"
)


def old_store(tmp_path: Path, *layouts: str) -> Path:
    """A store root holding copies of the old layouts' files (the committed ones stay as they
    are: nothing may write next to them)."""
    root = tmp_path / "store"
    for layout in layouts:
        shutil.copytree(OLD_STORES / layout, root, dirs_exist_ok=True)
    return root


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
def test_old_files_are_really_old(layout: str) -> None:
    """Guards the test data: each file says version 1 and lacks exactly the later columns."""
    run_id, lacks = OLD_LAYOUTS[layout]
    for table, missing in ((PATCH_STATES, ()), (NODE_SUMMARIES, lacks)):
        files = list((OLD_STORES / layout / table).glob("date=*/run_id=*/*.parquet"))
        assert [f.parent.name for f in files] == [f"run_id={run_id}"]
        schema = pq.read_schema(files[0])
        assert schema.metadata[SCHEMA_VERSION_KEY] == b"1"
        assert schema.metadata[TABLE_KEY] == table.encode()
        assert schema.metadata[RUN_ID_KEY] == run_id.encode()
        today = [n for n in SCHEMAS[table].names if n not in ("run_id", *missing)]
        assert schema.names == today


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
def test_old_node_summaries_read_with_new_columns_null(tmp_path: Path, layout: str) -> None:
    run_id, lacks = OLD_LAYOUTS[layout]
    with ComplianceStore(old_store(tmp_path, layout)) as store:
        _, rows = store.query(f"SELECT {OLD_NODE_COLUMNS} FROM node_summaries ORDER BY node_id")
        assert rows == OLD_NODE_ROWS
        _, rows = store.query(
            "SELECT node_id, run_id, date, boot_id, restart_needed, auto_updaters, "
            "operation_start_time <= operation_end_time, last_no_reboot_install_operation_time "
            "FROM node_summaries ORDER BY node_id")
    boot_ids = OLD_BOOT_IDS if "boot_id" not in lacks else dict.fromkeys(OLD_BOOT_IDS)
    assert rows == [
        (node_id, run_id, OLD_RUN_DAY, boot_ids[node_id], None, None, True, None)
        for node_id in sorted(OLD_BOOT_IDS)
    ]


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
def test_old_files_read_as_they_were_written(tmp_path: Path, layout: str) -> None:
    """Every value of every old column comes back unchanged through today's views, the later
    columns are NULL, and the partition columns come from the path."""
    run_id, lacks = OLD_LAYOUTS[layout]
    root = old_store(tmp_path, layout)
    with ComplianceStore(root) as store:
        for table in (PATCH_STATES, NODE_SUMMARIES):  # v1 had no package_facts
            written = pq.read_table(next((root / table).rglob("*.parquet"))).to_pylist()
            names, rows = store.query(f"SELECT * FROM {table}")
            assert names == [*SCHEMAS[table].names, "date"]
            key = ("node_id", "package") if table == PATCH_STATES else ("node_id",)
            read = sorted((dict(zip(names, row, strict=True)) for row in rows),
                          key=lambda r: tuple(r[k] for k in key))
            written.sort(key=lambda r: tuple(r[k] for k in key))
            assert len(read) == len(written) == (146 if table == PATCH_STATES else 3)
            for old, new in zip(written, read, strict=True):
                expected = {**dict.fromkeys(lacks if table == NODE_SUMMARIES else ()), **old,
                            "run_id": run_id, "date": OLD_RUN_DAY}
                assert new == expected


def test_old_patch_states_values(tmp_path: Path) -> None:
    with ComplianceStore(old_store(tmp_path, "initial")) as store:
        for (node_id, package), values in OLD_PATCH_ROWS.items():
            _, rows = store.query(
                f"SELECT {OLD_PATCH_COLUMNS} FROM patch_states WHERE node_id = ? AND package = ?",
                [node_id, package])
            assert rows == [values], (node_id, package)
        _, rows = store.query(
            "SELECT node_id, state, count(*), count(*) FILTER (WHERE security), "
            "bool_and(scanned_at = (SELECT operation_end_time FROM node_summaries s "
            "WHERE s.node_id = p.node_id)) "
            "FROM patch_states p GROUP BY ALL ORDER BY ALL")
    assert rows == [
        ("deb12-fresh", "INSTALLED_OTHER", 126, 0, True),
        ("deb12-fresh", "MISSING", 6, 6, True),
        ("rocky9-fresh", "INSTALLED_OTHER", 6, 1, True),
        ("rocky9-fresh", "MISSING", 8, 3, True),
    ]


def test_old_and_new_runs_in_one_store(tmp_path: Path) -> None:
    """A store that kept its history: both old layouts and a run written today, side by side."""
    root = old_store(tmp_path, "initial", "boot_id")
    today = NodeResult(
        node_id="deb12-fresh", host="deb12-fresh", records=(),
        summary=ComplianceSummary(NodeStatus.COMPLIANT, None),
        operation_start_time=datetime(2027, 1, 5, 10, tzinfo=UTC),
        operation_end_time=datetime(2027, 1, 5, 10, 1, tzinfo=UTC),
        boot_id="new-boot", restart_needed=("sshd",), auto_updaters=(),
    )  # fmt: skip
    write_run(root, ctx("run-today", datetime(2027, 1, 5, 10, tzinfo=UTC)), [today])
    with ComplianceStore(root) as store:
        _, rows = store.query(
            "SELECT run_id, nodes, non_compliant_nodes, failed_nodes, missing_patches, "
            "security_non_compliant_patches FROM compliance_history")
        assert rows == [("v1-initial-scan", 3, 2, 1, 14, 9), ("v1-boot-id-scan", 3, 2, 1, 14, 9),
                        ("run-today", 1, 0, 0, 0, 0)]
        _, rows = store.query(
            "SELECT node_id, run_id, status, boot_id, restart_needed, auto_updaters "
            "FROM latest_node_summaries ORDER BY node_id")
        assert rows == [
            ("deb12-fresh", "run-today", "COMPLIANT", "new-boot", ["sshd"], []),
            ("gone", "v1-boot-id-scan", "FAILED", None, None, None),
            ("rocky9-fresh", "v1-boot-id-scan", "NON_COMPLIANT", OLD_BOOT_IDS["rocky9-fresh"],
             None, None),
        ]
        _, rows = store.query("SELECT node_id, run_id, reason, noncompliant_unspecified_count, "
                              "missing_packages FROM noncompliant_nodes")
        assert rows == [
            ("gone", "v1-boot-id-scan", GONE_REASON, 0, []),
            ("rocky9-fresh", "v1-boot-id-scan", "8 missing; highest severity UNSPECIFIED", 8,
             ["fake-coreutils", "fake-curl", "fake-daemon", "fake-libcurl", "fake-libzypp",
              "fake-openssl-libs", "fake-sudo", "fake-tzdata"]),
        ]
        # first sightings span the old runs: the earlier (initial) scan's time is kept
        _, first = store.query("SELECT min(scanned_at) FROM patch_states "
                               "WHERE run_id = 'v1-initial-scan' AND package = 'fake-curl' "
                               "AND available_version = '1.1-1'")
        sightings = {(p, v): t for _, p, v, t in store.first_sightings()}
        assert sightings[("fake-curl", "1.1-1")] == first[0][0]
        assert store.pending_installs() == {}  # only SCANs so far


def test_a_bad_query_is_bad_input_naming_the_problem(tmp_path: Path) -> None:
    with ComplianceStore(tmp_path) as store, pytest.raises(QueryError, match='"nope"'):
        store.query("SELECT nope FROM node_summaries")


def test_view_sql_is_inspectable(tmp_path: Path) -> None:
    with ComplianceStore(tmp_path) as store:
        assert "QUALIFY" in store.view_sql("latest_node_summaries")
        with pytest.raises(StoreError, match="no view named"):
            store.view_sql("nope")


def test_execution_type_and_reboot_option_come_from_the_run(tmp_path: Path) -> None:
    run = RunContext(
        run_id="policy-1",
        operation=Operation.INSTALL,
        started_at=T0,
        execution_type=ExecutionType.PATCH_POLICY,
        reboot_option="NoReboot",
    )
    write_run(tmp_path, run, [node("web-1")])
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT operation, execution_type, reboot_option FROM latest_node_summaries"
        )
    assert rows == [("INSTALL", "PATCH_POLICY", "NoReboot")]


def test_sql_files_run_in_a_plain_duckdb_session(tmp_path: Path) -> None:
    """The recipe in store/sql/README.md: define the two table views, run the .sql files."""
    from importlib import resources

    write_run(tmp_path, ctx(), fleet())
    sql_dir = resources.files("patchfleet.store") / "sql"
    readme = (sql_dir / "README.md").read_text(encoding="utf-8")
    recipe = readme.split("```sql")[1].split("```")[0].replace("ROOT", str(tmp_path))
    with duckdb.connect() as con:
        con.execute(recipe)
        for entry in sorted(sql_dir.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                con.execute(entry.read_text(encoding="utf-8"))
        rows = con.execute("SELECT node_id, status FROM noncompliant_nodes").fetchall()
    assert rows == [("db-1", "FAILED"), ("web-1", "NON_COMPLIANT")]
