"""The analyst views (sql/70_* to 85_*), each asserted on its exact answer.

The store is written by the real writer (store.writer.write_run) from results whose answers are
worked out by hand below, over five days:

- run-1 (05-01 10:00, SCAN): a (DEBIAN, web, Env=prod Team=web) misses openssl (CRITICAL,
  CVE-1 CVE-2) and curl (MEDIUM, CVE-3); b (ROCKY_LINUX, db, Env=prod) misses openssl;
  c (DEBIAN, web, Env=dev) and e (DEBIAN, web, Env=dev) are compliant.
- run-2 (05-02 10:00, INSTALL, PATCH_POLICY, NoReboot): a gets openssl (pending reboot; its
  facts say dpkg installed it at 05-02 04:00:30), curl fails; b fails as a whole.
- day 05-03: no run (carried forward).
- run-3 (05-04 10:00, SCAN): a still pending openssl, misses curl, the OS wants a reboot; b
  misses openssl, curl and zlib (LOW, CVE-4); c's baseline changed content (hash h2) and now
  calls bash missing; d (SUSE, no tags, no patch group) is new, compliant, reboot required; e
  fails (AUTH_FAILED).
- run-4 (05-04 12:00): a what-if saying every node is compliant: it must count nowhere.
- run-5 (05-05 10:00, SCAN): b only: openssl installed, curl and zlib still missing.
"""

from __future__ import annotations

import math
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from patchfleet.domain.facts import (
    InstalledPackage,
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
)
from patchfleet.domain.records import (
    LEVEL_ORDER,
    ComplianceLevel,
    ComplianceSummary,
    ExecutionType,
    NodeStatus,
    Operation,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.store.query import ANALYST_VIEWS, ComplianceStore
from patchfleet.store.writer import write_run

OLD_STORES = Path(__file__).resolve().parents[1] / "cases" / "store" / "v1"
DAY1 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
C, M, L = ComplianceLevel.CRITICAL, ComplianceLevel.MEDIUM, ComplianceLevel.LOW
S = PatchState


def at(days: int, hours: int = 0) -> datetime:
    return DAY1 + timedelta(days=days, hours=hours)


def end(days: int, hours: int = 0) -> datetime:
    """When a node's operation started at ``at(days, hours)`` ended (and its rows were scanned)."""
    return at(days, hours) + timedelta(seconds=30)


def rec(package: str, state: PatchState, level: ComplianceLevel | None = None,
        cves: tuple[str, ...] = (), version: str = "2.0", **kw: object) -> PatchRecord:
    return PatchRecord(package=package, arch="amd64", installed_version="1.0",
                       available_version=version, state=state, compliance_level=level,
                       cve_ids=cves, **kw)  # type: ignore[arg-type]


def openssl(state: PatchState) -> PatchRecord:
    return rec("openssl", state, C, ("CVE-1", "CVE-2"), severity="Important",
               classification="Security")


def curl(state: PatchState, version: str = "7.88-1") -> PatchRecord:
    return rec("curl", state, M, ("CVE-3",), version, severity="Moderate",
               classification="Bugfix")


ZLIB = rec("zlib", S.MISSING, L, ("CVE-4",), severity="Low", classification="Security")
BASH = rec("bash", S.INSTALLED)

NODES: dict[str, dict[str, object]] = {
    "a": {"operating_system": "DEBIAN", "patch_group": "web", "baseline_id": "deb",
          "baseline_hash": "h1", "tags": (("Env", "prod"), ("Team", "web"))},
    "b": {"operating_system": "ROCKY_LINUX", "patch_group": "db", "baseline_id": "rocky",
          "baseline_hash": "r1", "tags": (("Env", "prod"),)},
    "c": {"operating_system": "DEBIAN", "patch_group": "web", "baseline_id": "deb",
          "baseline_hash": "h1", "tags": (("Env", "dev"),)},
    "d": {"operating_system": "SUSE", "patch_group": None, "baseline_id": "suse",
          "baseline_hash": "s1", "tags": ()},
    "e": {"operating_system": "DEBIAN", "patch_group": "web", "baseline_id": "deb",
          "baseline_hash": "h1", "tags": (("Env", "dev"),)},
}


def node(node_id: str, start: datetime, records: tuple[PatchRecord, ...] = (), *,
         failure: str | None = None, **kw: object) -> NodeResult:
    """A node's result with every count and the status derived from its records, as evaluate
    would; ``failure``: a FAILED node (no records)."""
    def count(*states: PatchState) -> int:
        return sum(r.state in states for r in records)

    bad = [r for r in records if r.state.non_compliant]
    levels = [r.compliance_level or ComplianceLevel.UNSPECIFIED for r in bad]
    status = (NodeStatus.FAILED if failure else
              NodeStatus.NON_COMPLIANT if bad else NodeStatus.COMPLIANT)
    summary = ComplianceSummary(
        status=status,
        overall_severity=min(levels, key=LEVEL_ORDER.index) if levels else None,
        installed_count=count(S.INSTALLED), missing_count=count(S.MISSING),
        installed_pending_reboot_count=count(S.INSTALLED_PENDING_REBOOT),
        failed_count=count(S.FAILED),
        critical_non_compliant_count=sum(lv is C for lv in levels),
        security_non_compliant_count=sum(r.classification == "Security" for r in bad),
    )
    fields = {**NODES[node_id], **kw}
    return NodeResult(node_id=node_id, host=f"{node_id}.example.net", summary=summary,
                      records=records, operation_start_time=start,
                      operation_end_time=start + timedelta(seconds=30),
                      failure_reason=failure, **fields)  # type: ignore[arg-type]


def facts_of_a(installed_at: datetime) -> NodeFacts:
    """What node a showed after run-2's install: openssl with dpkg's install time."""
    os = OsInfo(id="debian", version_id="12", name="Debian GNU/Linux",
                pretty_name="Debian GNU/Linux 12 (bookworm)", version_codename="bookworm",
                id_like=(), operating_system="DEBIAN", product="Debian12",
                package_manager=PackageManager.APT)
    return NodeFacts(
        node_id="a", host="a.example.net", os=os,
        installed=(InstalledPackage("openssl", "amd64", "2.0", "openssl", "2.0", "installed",
                                    install_time=installed_at),
                   InstalledPackage("bash", "amd64", "1.0", "bash", "1.0", "installed")),
        candidates=(), planned=(), reboot=RebootState(boot_id="boot-a", required=True),
        refresh=RefreshResult(attempted=False, ok=True), collected_at=end(1))


def run(run_id: str, start: datetime, **kw: object) -> RunContext:
    return RunContext(run_id=run_id, operation=Operation.SCAN, started_at=start, **kw)  # type: ignore[arg-type]


def build(root: Path) -> None:
    write_run(root, run("run-1", at(0)), [
        node("a", at(0), (openssl(S.MISSING), curl(S.MISSING), BASH)),
        node("b", at(0), (openssl(S.MISSING),)),
        node("c", at(0), (BASH,)),
        node("e", at(0), (BASH,)),
    ])
    install = RunContext(run_id="run-2", operation=Operation.INSTALL, started_at=at(1),
                         execution_type=ExecutionType.PATCH_POLICY, reboot_option="NoReboot",
                         label="weekly-web")
    a2 = node("a", at(1), (openssl(S.INSTALLED_PENDING_REBOOT), curl(S.FAILED), BASH),
              boot_id="boot-a", facts=facts_of_a(at(1) - timedelta(hours=6) + timedelta(
                  seconds=30)))
    write_run(root, install, [a2, node("b", at(1), failure="connection lost during install")])
    write_run(root, run("run-3", at(3)), [
        node("a", at(3), (openssl(S.INSTALLED_PENDING_REBOOT), curl(S.MISSING), BASH),
             boot_id="boot-a", reboot_required=True, reboot_required_packages=("openssl",)),
        node("b", at(3), (openssl(S.MISSING), curl(S.MISSING, "7.88-2"), ZLIB)),
        node("c", at(3), (rec("bash", S.MISSING, M),), baseline_hash="h2"),
        node("d", at(3), (BASH,), reboot_required=True,
             reboot_required_packages=("kernel-default",)),
        node("e", at(3), failure="AUTH_FAILED: key rejected"),
    ])
    write_run(root, run("run-4", at(3, 2), what_if=True),
              [node(n, at(3, 2), (BASH,), facts_run_id="run-3") for n in "abcde"])
    write_run(root, run("run-5", at(4)), [
        node("b", at(4), (openssl(S.INSTALLED), curl(S.MISSING, "7.88-2"), ZLIB)),
    ])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ComplianceStore:
    root = tmp_path_factory.mktemp("views")
    build(root)
    return ComplianceStore(root)


def rows(store: ComplianceStore, sql: str) -> list[tuple[object, ...]]:
    return store.query(sql)[1]


COUNTS = "nodes, compliant_nodes, non_compliant_nodes, failed_nodes, compliant_pct, missing_patches"


def test_every_sql_file_defines_its_view_under_a_header_question() -> None:
    folder = resources.files("patchfleet.store") / "sql"
    defined = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        name = re.search(r"CREATE OR REPLACE VIEW (\w+) AS", text)
        assert name, entry.name
        defined[name.group(1)] = (entry.name, text)
        assert text.startswith(f"-- {name.group(1)}: "), entry.name
    for view in ANALYST_VIEWS:
        file, text = defined[view]
        assert re.match(r"\d\d_" + view + r"\.sql$", file) and int(file[:2]) >= 70
        assert "?" in text.splitlines()[0], f"{file}: the header states the question it answers"
    assert set(ComplianceStore.VIEWS) == set(defined) | {
        "patch_states", "node_summaries", "fact_elements", "fact_lists", "audit"}


def test_compliance_by_os(store: ComplianceStore) -> None:
    assert rows(store, f"SELECT operating_system, {COUNTS}, critical_non_compliant_patches "
                       "FROM compliance_by_os") == [
        ("DEBIAN", 3, 0, 2, 1, 0.0, 2, 1),  # a (curl, pending critical openssl), c, e failed
        ("ROCKY_LINUX", 1, 0, 1, 0, 0.0, 2, 0),
        ("SUSE", 1, 1, 0, 0, 100.0, 0, 0),
    ]


def test_compliance_by_patch_group(store: ComplianceStore) -> None:
    assert rows(store, f"SELECT patch_group, {COUNTS} FROM compliance_by_patch_group") == [
        ("db", 1, 0, 1, 0, 0.0, 2),
        ("web", 3, 0, 2, 1, 0.0, 2),
        (None, 1, 1, 0, 0, 100.0, 0),
    ]


def test_compliance_by_tag_one_row_per_key_and_value(store: ComplianceStore) -> None:
    assert rows(store, f"SELECT tag_key, tag_value, {COUNTS} FROM compliance_by_tag") == [
        ("Env", "dev", 2, 0, 1, 1, 0.0, 1),
        ("Env", "prod", 2, 0, 2, 0, 0.0, 3),
        ("Team", "web", 1, 0, 1, 0, 0.0, 1),
    ]  # d has no tags: in no row


def test_compliance_by_baseline_tells_contents_apart(store: ComplianceStore) -> None:
    assert rows(store, f"SELECT baseline_id, baseline_hash, {COUNTS} "
                       "FROM compliance_by_baseline") == [
        ("deb", "h1", 2, 0, 1, 1, 0.0, 1),
        ("deb", "h2", 1, 0, 1, 0, 0.0, 1),
        ("rocky", "r1", 1, 0, 1, 0, 0.0, 2),
        ("suse", "s1", 1, 1, 0, 0, 100.0, 0),
    ]


def test_noncompliant_by_severity(store: ComplianceStore) -> None:
    assert rows(store, "SELECT * FROM noncompliant_by_severity") == [
        # level, patches, missing, failed, pending, rejected, packages, nodes, nodes_at_highest
        ("CRITICAL", 1, 0, 0, 1, 0, 1, 1, 1),  # a's openssl, pending reboot
        ("MEDIUM", 3, 3, 0, 0, 0, 2, 3, 2),  # curl on a and b, bash on c
        ("LOW", 1, 1, 0, 0, 0, 1, 1, 0),  # zlib on b
    ]


def test_top_missing_patches(store: ComplianceStore) -> None:
    assert rows(store, "SELECT * FROM top_missing_patches") == [
        ("curl", 2, ["7.88-1", "7.88-2"], "MEDIUM", [], ["CVE-3"]),
        ("bash", 1, ["2.0"], "MEDIUM", [], []),
        ("zlib", 1, ["2.0"], "LOW", [], ["CVE-4"]),
    ]


def test_top_cves(store: ComplianceStore) -> None:
    assert rows(store, "SELECT * FROM top_cves") == [
        ("CVE-3", 2, ["curl"]),
        ("CVE-4", 1, ["zlib"]),
    ]  # CVE-1/2: openssl is installed (pending reboot) on a, installed on b


def test_pending_reboots(store: ComplianceStore) -> None:
    assert rows(store, "SELECT node_id, installed_pending_reboot_count, pending_packages, "
                       "reboot_required, reboot_required_packages, last_operation, run_id "
                       "FROM pending_reboots") == [
        ("a", 1, ["openssl"], True, ["openssl"], "SCAN", "run-3"),
        ("d", 0, [], True, ["kernel-default"], "SCAN", "run-3"),
    ]


def test_coverage(store: ComplianceStore) -> None:
    def days(t: datetime) -> int:
        return math.floor((datetime.now(UTC) - t).total_seconds() / 86400)

    before = {n: (days(last), days(ok)) for n, last, ok in (
        ("a", end(3), end(3)), ("b", end(4), end(4)), ("c", end(3), end(3)),
        ("d", end(3), end(3)), ("e", end(3), end(0)))}
    got = rows(store, "SELECT node_id, latest_status, runs, first_seen, last_scan_time, "
                      "last_success_time, days_since_last_scan, days_since_last_success "
                      "FROM coverage")
    assert [r[:6] for r in got] == [
        ("e", "FAILED", 2, end(0), end(3), end(0)),  # never reached since day 1: first
        ("a", "NON_COMPLIANT", 3, end(0), end(3), end(3)),
        ("c", "NON_COMPLIANT", 2, end(0), end(3), end(3)),
        ("d", "COMPLIANT", 1, end(3), end(3), end(3)),
        ("b", "NON_COMPLIANT", 4, end(0), end(4), end(4)),
    ]
    for r in got:
        assert before[str(r[0])] <= (r[6], r[7]) <= (before[str(r[0])][0] + 1,
                                                     before[str(r[0])][1] + 1)


def test_changes_since_previous_run_tell_baseline_from_node(store: ComplianceStore) -> None:
    assert rows(store, "SELECT node_id, run_id, previous_run_id, change, status, "
                       "previous_status, missing_delta, newly_missing, no_longer_missing, "
                       "baseline_hash, previous_baseline_hash "
                       "FROM changes_since_previous_run") == [
        ("a", "run-3", "run-2", "node", "NON_COMPLIANT", "NON_COMPLIANT", 1, ["curl"], [],
         "h1", "h1"),
        ("b", "run-5", "run-3", "node", "NON_COMPLIANT", "NON_COMPLIANT", -1, [], ["openssl"],
         "r1", "r1"),
        ("c", "run-3", "run-1", "baseline", "NON_COMPLIANT", "COMPLIANT", 1, ["bash"], [],
         "h2", "h1"),
        ("d", "run-3", None, "first run", "COMPLIANT", None, None, [], None, "s1", None),
        ("e", "run-3", "run-1", "node", "FAILED", "COMPLIANT", 0, [], [], "h1", "h1"),
    ]


def test_changes_since_previous_run_none(tmp_path: Path) -> None:
    for i in (0, 1):
        write_run(tmp_path, run(f"r{i}", at(i)), [node("d", at(i), (BASH,))])
    with ComplianceStore(tmp_path) as cs:
        assert rows(cs, "SELECT node_id, change, newly_missing, no_longer_missing "
                        "FROM changes_since_previous_run") == [("d", "none", [], [])]


def test_long_noncompliant(store: ComplianceStore) -> None:
    assert rows(store, "SELECT node_id, days, since, last_report_time, runs, latest_status "
                       "FROM long_noncompliant") == [
        ("b", 4, end(0), end(4), 3, "NON_COMPLIANT"),  # its FAILED install run breaks nothing
        ("a", 3, end(0), end(3), 3, "NON_COMPLIANT"),
        ("c", 0, end(3), end(3), 1, "NON_COMPLIANT"),
    ]
    assert rows(store, "SELECT node_id FROM long_noncompliant WHERE days >= 4") == [("b",)]


def test_daily_node_states_carry_forward(store: ComplianceStore) -> None:
    assert rows(store, "SELECT node_id, status, run_id, days_stale FROM daily_node_states "
                       "WHERE day = DATE '2024-05-03' ORDER BY node_id") == [
        ("a", "NON_COMPLIANT", "run-2", 1),
        ("b", "FAILED", "run-2", 1),
        ("c", "COMPLIANT", "run-1", 2),
        ("e", "COMPLIANT", "run-1", 2),
    ]


def test_fleet_trend(store: ComplianceStore) -> None:
    assert rows(store, f"SELECT day, {COUNTS}, stale_nodes FROM fleet_trend") == [
        (date(2024, 5, 1), 4, 2, 2, 0, 50.0, 3, 0),
        (date(2024, 5, 2), 4, 2, 1, 1, 66.7, 0, 2),
        (date(2024, 5, 3), 4, 2, 1, 1, 66.7, 0, 4),  # no run that day
        (date(2024, 5, 4), 5, 1, 3, 1, 25.0, 5, 0),  # the what-if run of that day: nowhere
        (date(2024, 5, 5), 5, 1, 3, 1, 25.0, 4, 4),
    ]


def test_cve_exposure(store: ComplianceStore) -> None:
    assert rows(store, "SELECT * FROM cve_exposure") == [
        (date(2024, 5, 1), 3, 2, 5),  # a: CVE-1 2 3; b: CVE-1 2
        (date(2024, 5, 2), 0, 0, 0),  # a patched openssl, curl FAILED; b's run FAILED
        (date(2024, 5, 3), 0, 0, 0),
        (date(2024, 5, 4), 4, 2, 5),  # a: CVE-3; b: CVE-1 2 3 4
        (date(2024, 5, 5), 2, 2, 3),  # a: CVE-3; b: CVE-3 4
    ]


def test_time_to_patch(store: ComplianceStore) -> None:
    # openssl on a: missing from 05-01 10:00:30, dpkg installed it 05-02 04:00:30 (facts): 18 h;
    # on b: missing from 05-01 10:00:30, first seen installed 05-05 10:00:30 (no facts): 96 h.
    assert rows(store, "SELECT * FROM time_to_patch") == [
        ("Important", "Security", 2, 0, 57.0, 88.2, 96.0),
        ("Moderate", "Bugfix", 0, 2, None, None, None),  # curl on a (FAILED between) and b
        ("Low", "Security", 0, 1, None, None, None),
        ("UNSPECIFIED", None, 0, 1, None, None, None),  # bash on c, after its install
    ]


def test_time_to_patch_without_facts_uses_the_run(tmp_path: Path) -> None:
    write_run(tmp_path, run("r1", at(0)), [node("a", at(0), (openssl(S.MISSING),))])
    write_run(tmp_path, run("r2", at(0, 5)), [node("a", at(0, 5), (openssl(S.INSTALLED),))])
    write_run(tmp_path, run("r3", at(1)), [node("a", at(1), (openssl(S.MISSING),))])
    write_run(tmp_path, run("r4", at(1, 2)), [node("a", at(1, 2), (openssl(S.INSTALLED),))])
    with ComplianceStore(tmp_path) as cs:  # two episodes: 5 h and 2 h
        assert rows(cs, "SELECT patched, still_missing, mean_hours, p90_hours "
                        "FROM time_to_patch") == [(2, 0, 3.5, 4.7)]


def test_install_outcomes(store: ComplianceStore) -> None:
    assert rows(store, "SELECT run_id, date, run_label, execution_type, reboot_option, "
                       "nodes, compliant_nodes, non_compliant_nodes, failed_nodes, "
                       "installed_patches, failed_patches, still_missing_patches, "
                       "failed_node_ids FROM install_outcomes") == [
        ("run-2", date(2024, 5, 2), "weekly-web", "PATCH_POLICY", "NoReboot", 2, 0, 1, 1, 1, 1,
         0, ["b"]),
    ]


def test_what_if_counts_nowhere(store: ComplianceStore) -> None:
    """run-4 (what-if, all compliant) is stored, yet no analyst view names it."""
    assert rows(store, "SELECT count(*) FROM node_summaries WHERE run_id = 'run-4'") == [(5,)]
    for view in ANALYST_VIEWS:
        names = store.query(f"SELECT * FROM {view} LIMIT 0")[0]
        for column in ("run_id", "previous_run_id"):
            if column in names:
                assert rows(store, f"SELECT count(*) FROM {view} "
                                   f"WHERE {column} = 'run-4'") == [(0,)], view


@pytest.mark.parametrize("view", ANALYST_VIEWS)
def test_views_on_an_empty_store(tmp_path: Path, view: str) -> None:
    with ComplianceStore(tmp_path) as cs:
        assert rows(cs, f"SELECT * FROM {view}") == []


def test_views_on_a_v1_store(tmp_path: Path) -> None:
    """Committed schema-v1 files (no OS, tags, hash, what-if column): every view answers, the
    new columns as NULL."""
    root = tmp_path / "store"
    shutil.copytree(OLD_STORES / "initial", root)
    with ComplianceStore(root) as cs:
        for view in ANALYST_VIEWS:
            cs.query(f"SELECT * FROM {view}")
        assert rows(cs, f"SELECT operating_system, {COUNTS} FROM compliance_by_os") == [
            (None, 3, 0, 2, 1, 0.0, 14)]
        assert rows(cs, "SELECT count(*) FROM compliance_by_tag") == [(0,)]
        assert rows(cs, "SELECT baseline_hash, nodes FROM compliance_by_baseline "
                        "WHERE baseline_hash IS NOT NULL") == []
        assert rows(cs, "SELECT count(*), min(change) FROM changes_since_previous_run") == [
            (3, "first run")]
        (day, *_), = rows(cs, "SELECT * FROM fleet_trend")
        assert rows(cs, f"SELECT {COUNTS} FROM fleet_trend") == [(3, 0, 2, 1, 0.0, 14)]
        assert isinstance(day, date)
