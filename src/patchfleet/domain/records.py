"""Compliance records: the per-patch and per-node rows the store, reports and artifacts share.

Field names are the column names of the ``patch_states`` and ``node_summaries`` tables in
DESIGN.md; analysts rely on them, so extend, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PatchState(StrEnum):
    INSTALLED = "INSTALLED"
    INSTALLED_OTHER = "INSTALLED_OTHER"
    INSTALLED_PENDING_REBOOT = "INSTALLED_PENDING_REBOOT"
    INSTALLED_REJECTED = "INSTALLED_REJECTED"
    MISSING = "MISSING"
    FAILED = "FAILED"
    NOT_APPLICABLE = "NOT_APPLICABLE"

    @property
    def non_compliant(self) -> bool:
        return self in NON_COMPLIANT_STATES


NON_COMPLIANT_STATES = frozenset(
    {
        PatchState.INSTALLED_PENDING_REBOOT,
        PatchState.INSTALLED_REJECTED,
        PatchState.MISSING,
        PatchState.FAILED,
    }
)


class ComplianceLevel(StrEnum):
    """AWS compliance levels, highest first in :data:`LEVEL_ORDER`."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFORMATIONAL = "INFORMATIONAL"
    UNSPECIFIED = "UNSPECIFIED"


LEVEL_ORDER: tuple[ComplianceLevel, ...] = tuple(ComplianceLevel)


class NodeStatus(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"
    FAILED = "FAILED"  # the node could not be scanned; no compliance is claimed


class Operation(StrEnum):
    SCAN = "SCAN"
    INSTALL = "INSTALL"


class ExecutionType(StrEnum):
    COMMAND = "COMMAND"
    PATCH_POLICY = "PATCH_POLICY"


@dataclass(frozen=True, slots=True)
class PatchRecord:
    """One package's state on one node, as evaluated against a baseline.

    Run-level context (run id, snapshot, operation, scan time) is added when the record is
    stored, so evaluation stays a pure function of facts and baseline.
    """

    package: str
    arch: str
    installed_version: str | None
    available_version: str | None
    state: PatchState
    classification: str | None = None
    severity: str | None = None
    priority: str | None = None
    section: str | None = None
    advisory_ids: tuple[str, ...] = ()
    cve_ids: tuple[str, ...] = ()
    release_date: datetime | None = None
    compliance_level: ComplianceLevel | None = None
    source_package: str | None = None
    repository: str | None = None
    held: bool = False
    security: bool = False


@dataclass(frozen=True, slots=True)
class ComplianceSummary:
    """Per-node InstancePatchState counts, status and overall severity."""

    status: NodeStatus
    overall_severity: ComplianceLevel | None
    installed_count: int = 0
    installed_other_count: int = 0
    installed_pending_reboot_count: int = 0
    installed_rejected_count: int = 0
    missing_count: int = 0
    failed_count: int = 0
    not_applicable_count: int = 0
    critical_non_compliant_count: int = 0
    security_non_compliant_count: int = 0
    other_non_compliant_count: int = 0
