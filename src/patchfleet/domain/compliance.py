"""Node-level compliance from per-package records (spec §4.2–4.3).

- Status: NON_COMPLIANT when any record is MISSING, FAILED, INSTALLED_PENDING_REBOOT or
  INSTALLED_REJECTED; otherwise COMPLIANT (NOT_APPLICABLE counts for nothing).
- Overall severity: the highest compliance level among the non-compliant records (a record with
  no level counts as UNSPECIFIED); None when compliant.
- The three non-compliant counts are AWS's: ``CriticalNonCompliantCount`` counts non-compliant
  records of compliance level CRITICAL, ``SecurityNonCompliantCount`` those classified Security,
  independently (a critical security patch is in both), and ``OtherNonCompliantCount`` those that
  are neither. So they can add up to more than the non-compliant total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from patchfleet.domain.records import (
    LEVEL_ORDER,
    ComplianceLevel,
    ComplianceSummary,
    NodeStatus,
    PatchRecord,
    PatchState,
)

__all__ = ["failed_summary", "summarize"]


def summarize(records: Iterable[PatchRecord]) -> ComplianceSummary:
    """Counts per state, status, overall severity and the non-compliant breakdown."""
    states: Counter[PatchState] = Counter()
    levels: set[ComplianceLevel] = set()
    critical = security = other = 0
    for r in records:
        states[r.state] += 1
        if not r.state.non_compliant:
            continue
        level = r.compliance_level or ComplianceLevel.UNSPECIFIED
        levels.add(level)
        is_critical = level is ComplianceLevel.CRITICAL
        is_security = r.classification == "Security"
        critical += is_critical
        security += is_security
        other += not (is_critical or is_security)
    non_compliant = sum(n for state, n in states.items() if state.non_compliant)
    return ComplianceSummary(
        status=NodeStatus.NON_COMPLIANT if non_compliant else NodeStatus.COMPLIANT,
        overall_severity=min(levels, key=LEVEL_ORDER.index) if levels else None,
        installed_count=states[PatchState.INSTALLED],
        installed_other_count=states[PatchState.INSTALLED_OTHER],
        installed_pending_reboot_count=states[PatchState.INSTALLED_PENDING_REBOOT],
        installed_rejected_count=states[PatchState.INSTALLED_REJECTED],
        missing_count=states[PatchState.MISSING],
        failed_count=states[PatchState.FAILED],
        not_applicable_count=states[PatchState.NOT_APPLICABLE],
        critical_non_compliant_count=critical,
        security_non_compliant_count=security,
        other_non_compliant_count=other,
    )


def failed_summary() -> ComplianceSummary:
    """The summary of a node that could not be scanned: FAILED, no severity, every count 0."""
    return ComplianceSummary(status=NodeStatus.FAILED, overall_severity=None)
