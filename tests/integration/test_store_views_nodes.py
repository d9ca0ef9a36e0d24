"""The analyst views on a store built from real scans and a real install of the test nodes.

One store, two runs: run-1 scans deb-a, deb-c (Debian 12) and rocky-a (Rocky 9, dnf) with the
default baselines; run-2 installs deb-a's approved set (the same install as
test_install_apt.py's security-only case, whose known answers are reused here). Expected values
are the known answers of those nodes, and otherwise what the in-memory results say (the views
read the same facts back from Parquet through DuckDB).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import install_runs
import pytest
from browser import browse, console_lines

from patchfleet.domain.records import ExecutionType, Operation, PatchState
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_nodes
from patchfleet.report.dashboard import write_dashboard
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import write_run
from patchfleet.transport.connector import SSHConnector

SECURITY_APPROVED = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "linux-image-fake"}
PENDING = SECURITY_APPROVED | {"linux-image-1.1-fake"}  # the new kernel package: pending too


def scan(fleet: Any, store: Path, targets: str) -> list[NodeResult]:
    plan = plan_scan(inventory=str(fleet.inventory), targets=targets, store=str(store))
    with SSHConnector() as connector:
        results = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    assert all(not r.failed for r in results), [r.failure_reason for r in results]
    return results


@pytest.fixture(scope="module")
def views(fleet: Any, rpm_fleet: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ComplianceStore, list[NodeResult]]]:
    tmp = tmp_path_factory.mktemp("views-nodes")
    store = tmp / "store"
    try:
        others = scan(fleet, store, "deb-c") + scan(rpm_fleet, store, "rocky-a")
        scanned, done = install_runs.scan_and_install(fleet, tmp, "deb-a")
    finally:
        fleet.reset("deb-a")
    first = [scanned, *others]
    write_run(store, RunContext(run_id="run-1", operation=Operation.SCAN,
                                started_at=min(r.operation_start_time for r in first)), first)
    write_run(store, RunContext(run_id="run-2", operation=Operation.INSTALL,
                                started_at=done.result.operation_start_time,
                                execution_type=ExecutionType.COMMAND,
                                reboot_option="NoReboot"), [done.result])
    latest = [done.result, *others]
    with ComplianceStore(store) as cs:
        yield cs, latest


def test_compliance_by_os(views: tuple[ComplianceStore, list[NodeResult]]) -> None:
    cs, latest = views
    rocky = next(r for r in latest if r.node_id == "rocky-a")
    assert cs.query("SELECT operating_system, nodes, compliant_nodes, non_compliant_nodes, "
                    "failed_nodes, missing_patches FROM compliance_by_os")[1] == [
        ("DEBIAN", 2, 0, 2, 0, 6),  # deb-c misses the security set + fake-held; deb-a: 0
        ("ROCKY_LINUX", 1, 0, 1, 0, rocky.summary.missing_count),
    ]
    assert rocky.summary.missing_count > 0


def test_top_missing_patches(views: tuple[ComplianceStore, list[NodeResult]]) -> None:
    cs, latest = views
    expected = Counter(r.package for n in latest for r in n.records
                       if r.state is PatchState.MISSING)
    rows = cs.query("SELECT package, nodes FROM top_missing_patches")[1]
    assert dict(rows) == dict(expected)
    assert [n for _, n in rows] == sorted((n for _, n in rows), reverse=True)
    assert {p for p, _ in cs.query(
        "SELECT package, nodes FROM top_missing_patches WHERE package IN "
        "(SELECT package FROM latest_patch_states WHERE node_id = 'deb-c' "
        "AND state = 'MISSING')")[1]} == SECURITY_APPROVED | {"fake-held"}


def test_pending_reboots(views: tuple[ComplianceStore, list[NodeResult]]) -> None:
    cs, latest = views
    rows = cs.query("SELECT node_id, installed_pending_reboot_count, pending_packages, "
                    "reboot_required, last_operation FROM pending_reboots")[1]
    assert rows[0] == ("deb-a", len(PENDING), sorted(PENDING), True, "INSTALL")
    assert {r[0] for r in rows} == {
        n.node_id for n in latest if n.summary.installed_pending_reboot_count or
        n.reboot_required}


def test_install_outcomes_and_changes(views: tuple[ComplianceStore, list[NodeResult]]) -> None:
    cs, _ = views
    assert cs.query("SELECT run_id, execution_type, nodes, non_compliant_nodes, "
                    "installed_patches, failed_patches, failed_node_ids "
                    "FROM install_outcomes")[1] == [
        ("run-2", "COMMAND", 1, 1, len(PENDING), 1, [])]  # fake-held is held: FAILED
    assert cs.query("SELECT change, missing_count, previous_missing_count, newly_missing, "
                    "no_longer_missing FROM changes_since_previous_run "
                    "WHERE node_id = 'deb-a'")[1] == [
        ("node", 0, 6, [], sorted(SECURITY_APPROVED | {"fake-held"}))]


def test_time_to_patch(views: tuple[ComplianceStore, list[NodeResult]]) -> None:
    """deb-a's security set: MISSING in run-1, installed (pending reboot) by run-2; apt keeps
    no install time, so the episode ends at run-2's end. Everything else is still missing."""
    cs, latest = views
    (first, done), = cs.query(
        "SELECT min(operation_end_time), max(operation_end_time) FROM node_summaries "
        "WHERE node_id = 'deb-a'")[1]
    hours = round((done - first).total_seconds() / 3600, 2)
    still = sum(n.summary.missing_count for n in latest) + 1  # + fake-held: FAILED on deb-a
    assert cs.query("SELECT sum(patched), sum(still_missing), max(max_hours) "
                    "FROM time_to_patch")[1] == [(len(SECURITY_APPROVED), still, hours)]


def test_dashboard_of_real_scans_in_chromium(views: tuple[ComplianceStore, list[NodeResult]],
                                             tmp_path: Path) -> None:
    """The HTML dashboard of this store, rendered by headless Chromium: its numbers are the
    views' (tests/integration/test_dashboard_browser.py tests the page on known answers)."""
    cs, latest = views
    page = write_dashboard(cs, tmp_path)
    shown = browse(page, tmp_path / "profile", "--dump-dom")
    assert console_lines(shown.log) == []
    dom = shown.dom
    missing = sum(n.summary.missing_count for n in latest)
    assert dict(re.findall(r'data-count="(\w+)">([^<]*)<', dom)) == {
        "nodes": "3", "compliant": "0", "non_compliant": "3", "failed": "0", "pct": "0%",
        "missing": str(missing)}
    by_os = dom[dom.index('id="by-os"'):dom.index('id="trend"')]
    assert '<td>DEBIAN</td><td class="num">2</td>' in by_os
    assert '<td>ROCKY_LINUX</td><td class="num">1</td>' in by_os
    top = cs.query("SELECT package, nodes FROM top_missing_patches LIMIT 10")[1]
    for package, nodes in top:
        assert f'data-label="{package}"' in dom and f"<td>{package}</td>" in dom
        assert re.search(rf'data-label="{re.escape(package)}">.*?data-value="{nodes}"', dom)
    patched = cs.query("SELECT sum(patched) FROM time_to_patch")[1][0][0]
    assert patched == len(SECURITY_APPROVED) and "Failed nodes (0)" in dom
    shot = tmp_path / "dashboard-real-scans.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    shutil.copyfile(shot, "/tmp/patchfleet-dashboard-real-scans.png")
    print(f"dashboard screenshot: {shot} (copied to /tmp/patchfleet-dashboard-real-scans.png)")
