"""A small store with known answers and hostile text, for the dashboard's tests.

Written by the real writer (store.writer.write_run) over two days:

- run-1 (2024-05-01 10:00, SCAN): web-1 (DEBIAN, web) misses openssl (CRITICAL, Important,
  Security, CVE-2024-0001); web-2 (DEBIAN, web) is compliant; db-1 (ROCKY_LINUX, db) misses
  openssl and curl (MEDIUM, Moderate, Bugfix, CVE-2024-0002).
- run-2 (2024-05-02 10:00, SCAN): web-1 has openssl installed (24 h after it was first seen
  missing); web-2 compliant; db-1 unchanged; two hostile nodes appear: EVIL_FAILED (DEBIAN,
  patch group EVIL_GROUP) failed with EVIL_REASON, and EVIL_NC (SUSE, patch group
  ``<b>grp</b>``) misses curl and EVIL_PACKAGE (LOW, Low, Security, CVE-2024-0003).

Latest state: 5 nodes, 2 compliant, 2 non-compliant, 1 failed, 50 % of the scanned compliant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from patchfleet.domain.records import (
    LEVEL_ORDER,
    ComplianceLevel,
    ComplianceSummary,
    NodeStatus,
    Operation,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.store.writer import write_run

DAY1 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
S = PatchState

EVIL_FAILED = "<script>alert('node')</script>"
EVIL_GROUP = '=HYPERLINK("http://evil.example/x")'
EVIL_REASON = "<img src=x onerror=alert(2)> AUTH_FAILED"
EVIL_NC = "-2+3"
EVIL_PACKAGE = "@pkg<i>"
HOSTILE = (EVIL_FAILED, EVIL_GROUP, EVIL_REASON, EVIL_NC, EVIL_PACKAGE, "<b>grp</b>")

FLEET = {"nodes": 5, "compliant": 2, "non_compliant": 2, "failed": 1, "pct": 50.0,
         "missing": 4}
BY_OS = [("DEBIAN", 3, 2, 0, 1, 100.0), ("ROCKY_LINUX", 1, 0, 1, 0, 0.0),
         ("SUSE", 1, 0, 1, 0, 0.0)]
BY_GROUP = [("<b>grp</b>", 1, 0, 1, 0, 0.0), (EVIL_GROUP, 1, 0, 0, 1, None),
            ("db", 1, 0, 1, 0, 0.0), ("web", 2, 2, 0, 0, 100.0)]
TREND = [("2024-05-01", 3, 1, 2, 0, 33.3), ("2024-05-02", 5, 2, 2, 1, 50.0)]
TOP_MISSING = [("curl", 2), (EVIL_PACKAGE, 1), ("openssl", 1)]
TOP_CVES = [("CVE-2024-0002", 2), ("CVE-2024-0001", 1), ("CVE-2024-0003", 1)]
TIME_TO_PATCH = [("Important", "Security", 1, 1, 24.0, 24.0, 24.0),
                 ("Moderate", "Bugfix", 0, 2, None, None, None),
                 ("Low", "Security", 0, 1, None, None, None)]


def _rec(package: str, state: PatchState, level: ComplianceLevel, cve: str, severity: str,
         classification: str) -> PatchRecord:
    return PatchRecord(package=package, arch="x86_64", installed_version="1.0",
                       available_version="2.0", state=state, compliance_level=level,
                       cve_ids=(cve,), severity=severity, classification=classification)


def openssl(state: PatchState) -> PatchRecord:
    return _rec("openssl", state, ComplianceLevel.CRITICAL, "CVE-2024-0001", "Important",
                "Security")


CURL = _rec("curl", S.MISSING, ComplianceLevel.MEDIUM, "CVE-2024-0002", "Moderate", "Bugfix")
EVIL = _rec(EVIL_PACKAGE, S.MISSING, ComplianceLevel.LOW, "CVE-2024-0003", "Low", "Security")
BASH = PatchRecord(package="bash", arch="x86_64", installed_version="5.2",
                   available_version=None, state=S.INSTALLED)


def node(node_id: str, start: datetime, records: tuple[PatchRecord, ...], *, os: str,
         group: str, failure: str | None = None) -> NodeResult:
    """A node's result, status and counts derived from its records as evaluate would."""
    bad = [r for r in records if r.state.non_compliant]
    levels = [r.compliance_level or ComplianceLevel.UNSPECIFIED for r in bad]
    summary = ComplianceSummary(
        status=(NodeStatus.FAILED if failure else
                NodeStatus.NON_COMPLIANT if bad else NodeStatus.COMPLIANT),
        overall_severity=min(levels, key=LEVEL_ORDER.index) if levels else None,
        installed_count=sum(r.state is S.INSTALLED for r in records),
        missing_count=sum(r.state is S.MISSING for r in records),
        critical_non_compliant_count=sum(lv is ComplianceLevel.CRITICAL for lv in levels),
        security_non_compliant_count=sum(r.classification == "Security" for r in bad),
    )
    return NodeResult(node_id=node_id, host=f"{node_id}.example.net", summary=summary,
                      records=records, operation_start_time=start,
                      operation_end_time=start + timedelta(seconds=30), failure_reason=failure,
                      operating_system=os, patch_group=group, baseline_id=os.lower())


def build_store(root: Path) -> Path:
    """Write the two runs into ``root``; return it."""
    write_run(root, RunContext(run_id="run-1", operation=Operation.SCAN, started_at=DAY1), [
        node("web-1", DAY1, (openssl(S.MISSING), BASH), os="DEBIAN", group="web"),
        node("web-2", DAY1, (BASH,), os="DEBIAN", group="web"),
        node("db-1", DAY1, (openssl(S.MISSING), CURL), os="ROCKY_LINUX", group="db"),
    ])
    write_run(root, RunContext(run_id="run-2", operation=Operation.SCAN, started_at=DAY2), [
        node("web-1", DAY2, (openssl(S.INSTALLED), BASH), os="DEBIAN", group="web"),
        node("web-2", DAY2, (BASH,), os="DEBIAN", group="web"),
        node("db-1", DAY2, (openssl(S.MISSING), CURL), os="ROCKY_LINUX", group="db"),
        node(EVIL_FAILED, DAY2, (), os="DEBIAN", group=EVIL_GROUP, failure=EVIL_REASON),
        node(EVIL_NC, DAY2, (CURL, EVIL, BASH), os="SUSE", group="<b>grp</b>"),
    ])
    return root
