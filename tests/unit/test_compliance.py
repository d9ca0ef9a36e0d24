"""Node compliance summaries: status, overall severity and counts (spec §4.2–4.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apt_facts as C

from patchfleet.config.baselines import load_baseline
from patchfleet.domain.compliance import failed_summary, summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.records import (
    ComplianceLevel,
    ComplianceSummary,
    NodeStatus,
    PatchRecord,
    PatchState,
)

REPO = Path(__file__).resolve().parents[2]


def rec(
    state: PatchState,
    level: ComplianceLevel | None = None,
    classification: str | None = None,
    name: str = "pkg",
) -> PatchRecord:
    return PatchRecord(
        package=name,
        arch="amd64",
        installed_version="1.0",
        available_version=None,
        state=state,
        compliance_level=level,
        classification=classification,
    )


def test_no_records_is_compliant() -> None:
    s = summarize([])
    assert s == ComplianceSummary(status=NodeStatus.COMPLIANT, overall_severity=None)


def test_compliant_states_only() -> None:
    s = summarize(
        [
            rec(PatchState.INSTALLED, ComplianceLevel.CRITICAL, "Security"),
            rec(PatchState.INSTALLED_OTHER),
            rec(PatchState.INSTALLED_OTHER),
            rec(PatchState.NOT_APPLICABLE),
        ]
    )
    assert s.status is NodeStatus.COMPLIANT
    assert s.overall_severity is None  # levels of compliant records don't count
    assert (s.installed_count, s.installed_other_count, s.not_applicable_count) == (1, 2, 1)
    assert s.critical_non_compliant_count == s.security_non_compliant_count == 0
    assert s.other_non_compliant_count == 0


def test_each_non_compliant_state_makes_the_node_non_compliant() -> None:
    for state in (
        PatchState.MISSING,
        PatchState.FAILED,
        PatchState.INSTALLED_PENDING_REBOOT,
        PatchState.INSTALLED_REJECTED,
    ):
        s = summarize([rec(PatchState.INSTALLED), rec(state, ComplianceLevel.LOW)])
        assert s.status is NodeStatus.NON_COMPLIANT, state
        assert s.overall_severity is ComplianceLevel.LOW


def test_counts_severity_and_breakdown() -> None:
    records = [
        rec(PatchState.MISSING, ComplianceLevel.CRITICAL, "Security"),  # critical
        rec(PatchState.MISSING, ComplianceLevel.CRITICAL, None),  # critical
        rec(PatchState.MISSING, ComplianceLevel.HIGH, "Security"),  # security
        rec(PatchState.FAILED, ComplianceLevel.MEDIUM, "Security"),  # security
        rec(PatchState.INSTALLED_PENDING_REBOOT, ComplianceLevel.LOW, None),  # other
        rec(PatchState.INSTALLED_REJECTED, None, None),  # other, counts as UNSPECIFIED
        rec(PatchState.INSTALLED, ComplianceLevel.CRITICAL, "Security"),
        rec(PatchState.INSTALLED_OTHER),
        rec(PatchState.NOT_APPLICABLE),
    ]
    s = summarize(records)
    assert s.status is NodeStatus.NON_COMPLIANT
    assert s.overall_severity is ComplianceLevel.CRITICAL
    assert s.missing_count == 3
    assert s.failed_count == 1
    assert s.installed_pending_reboot_count == 1
    assert s.installed_rejected_count == 1
    assert s.installed_count == 1 and s.installed_other_count == 1
    assert s.not_applicable_count == 1
    # AWS counts critical and security independently; other is neither
    assert s.critical_non_compliant_count == 2
    assert s.security_non_compliant_count == 3
    assert s.other_non_compliant_count == 2


def test_non_compliant_counts_match_aws_example() -> None:
    """Issue 12's case: AWS gives Critical 1, Security 2, Other 2 (the critical security patch
    is counted as critical and as security)."""
    s = summarize([
        rec(PatchState.MISSING, ComplianceLevel.CRITICAL, "Security"),
        rec(PatchState.MISSING, ComplianceLevel.HIGH, "Security"),
        rec(PatchState.MISSING, ComplianceLevel.MEDIUM, "Bugfix"),
        rec(PatchState.INSTALLED_REJECTED, None, None),
    ])
    assert (s.critical_non_compliant_count, s.security_non_compliant_count,
            s.other_non_compliant_count) == (1, 2, 2)


def test_overall_severity_is_the_highest_non_compliant_level() -> None:
    for levels, expected in (
        ([ComplianceLevel.LOW, ComplianceLevel.HIGH, ComplianceLevel.MEDIUM], "HIGH"),
        ([ComplianceLevel.INFORMATIONAL, ComplianceLevel.UNSPECIFIED], "INFORMATIONAL"),
        ([None], "UNSPECIFIED"),
    ):
        s = summarize([rec(PatchState.MISSING, lv) for lv in levels])
        assert s.overall_severity == expected


def test_summarize_accepts_any_iterable() -> None:
    s = summarize(rec(PatchState.MISSING, ComplianceLevel.HIGH) for _ in range(3))
    assert s.missing_count == 3 and s.other_non_compliant_count == 3


def test_failed_summary() -> None:
    s = failed_summary()
    assert s.status is NodeStatus.FAILED
    assert s.overall_severity is None
    counts = [v for k, v in vars_of(s).items() if k.endswith("_count")]
    assert counts and all(c == 0 for c in counts)


def vars_of(s: ComplianceSummary) -> dict[str, Any]:
    return {name: getattr(s, name) for name in ComplianceSummary.__dataclass_fields__}


def test_summary_of_an_evaluated_node() -> None:
    b = load_baseline(REPO / "baselines" / "AWS-DebianDefaultPatchBaseline.yaml")
    f = C.mixed(reboot_required=True, reboot_packages=("inetutils",))
    s = summarize(evaluate(f, b, C.NOW))
    assert s.status is NodeStatus.NON_COMPLIANT
    assert s.overall_severity is ComplianceLevel.UNSPECIFIED  # predefined baseline
    assert s.missing_count == 1  # openssl
    assert s.installed_count == 1  # libc6
    # telnet is in reboot-required.pkgs, but AWS never marks what it did not install
    assert s.installed_other_count == 3  # bash, vim, telnet
    assert s.installed_pending_reboot_count == 0
    assert s.security_non_compliant_count == 1  # openssl's update is a security one
    assert s.other_non_compliant_count == 0
