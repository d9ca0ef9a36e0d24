"""The evidence store (schema v2) on real test nodes: first-seen dates from stored facts, and
what-if equal to a live scan.

Each test builds a store from successive real scans over SSH, with the clock pinned to the day
of each scan (``domain.clock.frozen_at``: collection time, operation times and the evaluation's
"now"), and changes the node's repositories between scans (tests/cases/repo_changes.py):

- apt: fake-stable-only 1.1 appears in a security pocket while the candidate is 1.2 from
  -updates. A rule approving security updates 7 days after release (staged approval) must
  approve 1.1 once 7 full days have passed since the scan that first saw it, not before.
- dnf: an undated security notice lists fake-stable-only 1.1; the newest, 1.2, is in no notice.
  The same rule must date 1.1 from its first sighting, not from 1.2's build time.
- what-if: a stored run of the mixed fleet (Debian, Rocky, SLES) judged by another baseline
  equals a live scan with that baseline, record for record.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from repo_changes import RpmNotice, add_apt_pockets, add_rpm_notice

from patchfleet.domain import clock
from patchfleet.domain.records import Operation, PatchState
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.ops.plan import load_override, load_registry, plan_scan
from patchfleet.ops.scan import scan_nodes
from patchfleet.ops.what_if import evaluate_stored
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import write_run
from patchfleet.transport.connector import SSHConnector

PKG = "fake-stable-only"
DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEEN = DAY0 + timedelta(days=1)  # the scan that first sees the new versions
STAGED_DEBIAN = """
name: debian-security-staged-7d
operating_system: DEBIAN
staged_approval: true
approval_rules:
  - patch_filters:
      - key: PRIORITY
        values: [Required, Important, Standard, Optional, Extra]
    approve_after_days: 7
    compliance_level: HIGH
"""
STAGED_ROCKY = """
name: rocky-security-staged-7d
operating_system: ROCKY_LINUX
staged_approval: true
approval_rules:
  - patch_filters:
      - key: CLASSIFICATION
        values: [Security]
      - key: SEVERITY
        values: ["*"]
    approve_after_days: 7
    compliance_level: HIGH
"""


def baselines_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "baselines"
    folder.mkdir(exist_ok=True)
    (folder / "debian-staged.yaml").write_text(STAGED_DEBIAN)
    (folder / "rocky-staged.yaml").write_text(STAGED_ROCKY)
    return folder


def scan(fleet: Any, store: Path, targets: str, baseline: str | Mapping[str, str] | None,
         extra: Path | None = None) -> list[NodeResult]:
    """One real scan as a run does it (plan reads the store's first-seen dates, refresh
    included), at the pinned clock."""
    plan = plan_scan(inventory=str(fleet.inventory), targets=targets, store=str(store),
                     baseline=baseline, baselines_dir=str(extra) if extra else None)
    with SSHConnector() as connector:
        results = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    assert all(not r.failed for r in results), [r.failure_reason for r in results]
    return results


def scan_day(fleet: Any, store: Path, node: str, day: datetime, baseline: str,
             extra: Path) -> tuple[PatchState, str | None]:
    """Scan ``node`` on ``day`` into the store; the state and version of fake-stable-only."""
    with clock.frozen_at(day):
        results = scan(fleet, store, node, baseline, extra)
        write_run(store, RunContext(run_id=f"{node}-{day:%m%d%H%M}", operation=Operation.SCAN,
                                    started_at=day, inventory_source=str(fleet.inventory)),
                  results)
    [record] = [r for r in results[0].records if r.package == PKG]
    return record.state, record.available_version


def verdict_sightings(store: Path) -> set[tuple[str, str]]:
    """What first-seen dates were read from before facts were stored: the versions verdicts
    named (patch_states.available_version)."""
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT DISTINCT package, available_version FROM patch_states "
                           "WHERE available_version IS NOT NULL")
    return {(p, v) for p, v in rows}


def test_apt_security_version_below_the_candidate_approves_on_day_7(
        clean: Any, tmp_path: Path) -> None:
    store, extra = tmp_path / "store", baselines_dir(tmp_path)
    baseline = "debian-security-staged-7d"

    assert scan_day(clean, store, "deb-a", DAY0, baseline, extra)[0] is PatchState.INSTALLED_OTHER
    add_apt_pockets(clean, "deb-a", PKG, {"security": "1.1", "updates": "1.2"})
    other = PatchState.INSTALLED_OTHER
    assert scan_day(clean, store, "deb-a", SEEN, baseline, extra)[0] is other
    assert scan_day(clean, store, "deb-a", SEEN + timedelta(days=6), baseline, extra)[0] is other
    # AWS's delays are strict: 7 x 24 h after the first sighting is not yet "more than 7 days"
    assert scan_day(clean, store, "deb-a", SEEN + timedelta(days=7), baseline, extra)[0] is other
    # The verdicts so far never named 1.1 (they show apt's candidate, 1.2): dates read from them
    # would call 1.1 new on every scan and never approve it.
    assert (PKG, "1.1") not in verdict_sightings(store)
    assert scan_day(clean, store, "deb-a", SEEN + timedelta(days=7, minutes=1), baseline,
                    extra) == (PatchState.MISSING, "1.1")

    with ComplianceStore(store) as cs:
        _, rows = cs.query(
            "SELECT version, security, candidate, min(n.collected_at) FROM package_offers "
            "JOIN node_summaries n USING (node_id, run_id) WHERE package = ? "
            "AND version <> '1.0' GROUP BY ALL ORDER BY version", [PKG])
        _, dated = cs.query("SELECT release_date FROM latest_patch_states WHERE package = ?",
                            [PKG])
    assert rows == [("1.1", True, False, SEEN), ("1.2", False, True, SEEN)]
    assert dated == [(SEEN,)]


def test_dnf_undated_notice_below_the_newest_is_dated_from_its_first_sighting(
        clean_rpm: Any, tmp_path: Path) -> None:
    store, extra = tmp_path / "store", baselines_dir(tmp_path)
    baseline = "rocky-security-staged-7d"
    # 1.2 (in no notice) was built a month before anyone saw 1.1: its build time is not 1.1's
    add_rpm_notice(clean_rpm, "rocky-a", PKG, offered=("1.1", "1.2"),
                   notice=RpmNotice("FAKESA-2026:0100", ("1.1",)),
                   build_time=SEEN - timedelta(days=30))
    other = PatchState.INSTALLED_OTHER
    assert scan_day(clean_rpm, store, "rocky-a", SEEN, baseline, extra)[0] is other
    assert scan_day(clean_rpm, store, "rocky-a", SEEN + timedelta(days=7), baseline,
                    extra)[0] is other
    assert (PKG, "1.1-1") not in verdict_sightings(store)
    assert scan_day(clean_rpm, store, "rocky-a", SEEN + timedelta(days=7, minutes=1), baseline,
                    extra) == (PatchState.MISSING, "1.1-1")
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT DISTINCT source, version, notice_id FROM package_offers "
                           "WHERE package = ? ORDER BY source", [PKG])
    assert rows == [("notice", "1.1-1", "FAKESA-2026:0100"), ("update", "1.2-1", None)]


def test_what_if_on_a_stored_mixed_fleet_equals_a_live_scan(
        fleet: Any, rpm_fleet: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    at = datetime.now(UTC).replace(microsecond=0)
    stored: list[NodeResult] = []
    with clock.frozen_at(at - timedelta(hours=1)):
        stored += scan(fleet, store, "deb-a,deb-c", None)
        stored += scan(rpm_fleet, store, "rocky-a,al-a,sles-a", None)
        write_run(store, RunContext(run_id="mixed-fleet", operation=Operation.SCAN,
                                    started_at=at - timedelta(hours=1)), stored)
    other = {"DEBIAN": "example-debian-all-updates",
             "ROCKY_LINUX": "AWS-RockyLinuxDefaultPatchBaseline",
             "AMAZON_LINUX_2023": "AWS-AmazonLinux2023DefaultPatchBaseline",
             "SUSE": "AWS-SuseDefaultPatchBaseline"}
    baselines = load_override(other, load_registry(None))
    what_if = evaluate_stored(StoreLocation.resolve(str(store)), baselines,
                              run_id="mixed-fleet", at=at)
    with clock.frozen_at(at):
        live = scan(fleet, store, "deb-a,deb-c", other) + scan(
            rpm_fleet, store, "rocky-a,al-a,sles-a", other)
    judged = {r.node_id: r for r in what_if.results}
    assert sorted(judged) == sorted(r.node_id for r in live) == [
        "al-a", "deb-a", "deb-c", "rocky-a", "sles-a"]
    for result in live:
        assert judged[result.node_id].records == result.records, result.node_id
        assert judged[result.node_id].summary == result.summary
    # example-debian-all-updates approves non-security updates the default baseline did not
    assert {f.node_id for f in what_if.patch_flips} == {"deb-a", "deb-c"}
    assert not what_if.skipped and what_if.source_runs == ["mixed-fleet"]
    shutil.rmtree(store)
