"""Snapshots: freeze a scan's approved set, round-trip it as JSON, and make a later evaluation
obey it (patchfleet.domain.snapshot)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import rpm_facts as R

from patchfleet.domain.baseline import Baseline, parse_baseline
from patchfleet.domain.compliance import failed_summary, summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import ComplianceLevel, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.domain.snapshot import Snapshot, apply_snapshot, freeze

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SECURITY_ONLY = parse_baseline(
    {
        "name": "sec",
        "operating_system": "ROCKY_LINUX",
        "approval_rules": [
            {
                "patch_filters": [{"key": "CLASSIFICATION", "values": ["Security"]}],
                "compliance_level": "HIGH",
            }
        ],
    },
    "test",
)
EVERYTHING = parse_baseline(
    {
        "name": "all",
        "operating_system": "ROCKY_LINUX",
        "approval_rules": [{"patch_filters": [], "enable_non_security": True}],
    },
    "test",
)


def result(
    facts: NodeFacts, b: Baseline, node: str = "n1", group: str | None = "web"
) -> NodeResult:
    records = evaluate(facts, b, R.NOW)
    return NodeResult(
        node_id=node,
        host="h",
        summary=summarize(records),
        records=records,
        operation_start_time=T0,
        operation_end_time=T0,
        patch_group=group,
        baseline_id=b.name,
    )


def states(records: Any) -> dict[str, PatchState]:
    return {r.package: r.state for r in records}


def frozen() -> Snapshot:
    failed = NodeResult("dead", "h", failed_summary(), (), T0, T0, patch_group="web")
    return freeze(
        "snap-1",
        T0,
        [result(R.rocky(), SECURITY_ONLY), failed],
        {"n1": "ROCKY_LINUX", "dead": "ROCKY_LINUX"},
    )


def test_freeze_collects_approved_versions_per_os_and_group() -> None:
    snap = frozen()
    assert list(snap.entries) == ["ROCKY_LINUX/web"]
    entry = snap.entry("ROCKY_LINUX", "web")
    assert entry is not None and entry.baseline_id == "sec"
    approved = {(a.package, a.version) for a in entry.approved}
    assert approved == {
        ("fake-curl", "1.1-1"),
        ("fake-libcurl", "1.1-1"),
        ("fake-openssl", "1.1-1"),
        ("fake-sudo", "1.1-1"),
        ("kernel", "1.1-1"),
    }
    curl = entry.versions("fake-curl", "x86_64")[0]
    assert curl.compliance_level is ComplianceLevel.HIGH
    assert curl.advisory_ids == ("FAKESA-2025:0002",)
    assert snap.entry("ROCKY_LINUX", None) is None


def test_json_round_trip() -> None:
    snap = frozen()
    assert Snapshot.from_json(snap.to_json()) == snap


def test_baseline_change_after_freeze_does_not_change_the_approved_set() -> None:
    entry = frozen().entry("ROCKY_LINUX", "web")
    assert entry is not None
    # The baseline now approves everything: the snapshot still approves only what it froze.
    later = apply_snapshot(evaluate(R.rocky(), EVERYTHING, R.NOW), entry)
    s = states(later)
    assert s["fake-curl"] is PatchState.MISSING
    assert s["fake-coreutils"] is PatchState.INSTALLED_OTHER  # not in the snapshot
    assert s["fake-noadvisory"] is PatchState.INSTALLED_OTHER
    curl = next(r for r in later if r.package == "fake-curl")
    assert curl.available_version == "1.1-1" and curl.compliance_level is ComplianceLevel.HIGH


def test_frozen_version_stays_approved_when_the_repo_moves_on() -> None:
    entry = frozen().entry("ROCKY_LINUX", "web")
    assert entry is not None
    # The repo now offers 1.2-1 and a baseline with no rules approves nothing.
    none = parse_baseline({"name": "none", "operating_system": "ROCKY_LINUX"}, "test")
    moved = R.facts(
        [R.pkg("fake-curl"), R.pkg("fake-editor")],
        [R.update("fake-curl", "1.2"), R.update("fake-editor", "1.2")],
    )
    later = apply_snapshot(evaluate(moved, none, R.NOW), entry)
    curl = next(r for r in later if r.package == "fake-curl")
    assert (curl.state, curl.available_version) == (PatchState.MISSING, "1.1-1")
    assert states(later)["fake-editor"] is PatchState.INSTALLED_OTHER


def test_installed_versions_judged_against_the_snapshot() -> None:
    entry = frozen().entry("ROCKY_LINUX", "web")
    assert entry is not None
    patched = R.rocky_patched()
    later = {r.package: r for r in apply_snapshot(evaluate(patched, EVERYTHING, R.NOW), entry)}
    assert later["fake-curl"].state is PatchState.INSTALLED
    assert later["fake-curl"].compliance_level is ComplianceLevel.HIGH
    assert later["fake-coreutils"].state is PatchState.INSTALLED_OTHER
    # Installed above every frozen version: not approved by the snapshot.
    newer = replace(patched, installed=(R.pkg("fake-curl", "1.3-1"),), advisories=())
    (rec,) = apply_snapshot(evaluate(newer, EVERYTHING, R.NOW), entry)
    assert rec.state is PatchState.INSTALLED_OTHER


def test_rejected_and_failed_records_are_kept() -> None:
    entry = frozen().entry("ROCKY_LINUX", "web")
    assert entry is not None
    b = parse_baseline(
        {
            "name": "rej",
            "operating_system": "ROCKY_LINUX",
            "rejected_patches": ["fake-curl"],
            "rejected_patches_action": "BLOCK",
        },
        "test",
    )
    later = states(apply_snapshot(evaluate(R.rocky(), b, R.NOW), entry))
    assert later["fake-curl"] is PatchState.INSTALLED_REJECTED
    assert later["fake-openssl"] is PatchState.MISSING
