"""Summaries of one run for people: counts, a per-node table, a markdown digest and the nodes
of the all-nodes CSV report, all from the run's staged node rows (never its patch records);
and the typed :class:`RunSummary` the ``patch-nodes`` flow returns.

Used by the flow's artifacts and by the CLI's closing output, so both say the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from patchfleet.domain.records import LEVEL_ORDER, NodeStatus, PatchState
from patchfleet.domain.results import RunContext
from patchfleet.report.csv_reports import ReportNode
from patchfleet.store.staging import LEVEL_COLUMNS


class NodeRow(BaseModel):
    """One node of a run: a row of the table artifact and of ``--output json``."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    host: str
    platform: str
    baseline_id: str
    status: str
    overall_severity: str
    missing: int
    installed: int
    installed_other: int
    pending_reboot: int
    rejected: int
    failed: int
    failure_reason: str
    warnings: str
    critical_non_compliant: int = 0
    security_non_compliant: int = 0
    warning_list: list[str] = []
    """The node's warnings one by one (``warnings`` joins them with "; ")."""


class RunSummary(BaseModel):
    """What a ``patch-nodes`` run did. Only the fields that apply to the run are *set*
    (:meth:`output` leaves the others out): a scan has no ``plans``, a dry run no store files.
    """

    run_id: str
    operation: str
    """The store's operation (SCAN, INSTALL); a dry run says ``Install`` (nothing is stored)."""
    dry_run: bool = False
    snapshot_id: str | None = None
    node_count: int = 0
    compliant: int = 0
    non_compliant: int = 0
    failed: int = 0
    nodes: list[NodeRow] = []
    store: str | None = None
    patch_states_file: str | None = None
    node_summaries_file: str | None = None
    report_folder: str | None = None
    report_files: list[str] = []
    report_uris: list[str] = []
    plans: dict[str, list[str]] = {}
    """Install: node id -> the plan's lines (what would be / was installed)."""
    stopped: bool = False
    """Install: the error threshold stopped the rollout."""
    rebooted: list[str] = []
    """Install: the nodes this run rebooted."""

    def output(self) -> dict[str, Any]:
        """The JSON form (``--output json``): the fields set for this run, in field order."""
        return self.model_dump(mode="json", exclude_unset=True)


StagedNode = Mapping[str, Any]
"""A staged node row (:func:`patchfleet.store.staging.read_nodes`): the ``node_summaries``
columns plus ``ordinal``, ``operating_system`` and the ``noncompliant_<level>`` counts."""

_STATE_COUNTS = {
    PatchState.INSTALLED: "installed_count",
    PatchState.INSTALLED_OTHER: "installed_other_count",
    PatchState.INSTALLED_PENDING_REBOOT: "installed_pending_reboot_count",
    PatchState.INSTALLED_REJECTED: "installed_rejected_count",
    PatchState.MISSING: "missing_count",
    PatchState.FAILED: "failed_count",
    PatchState.NOT_APPLICABLE: "not_applicable_count",
}


def node_row(r: StagedNode) -> NodeRow:
    return NodeRow(
        node_id=r["node_id"],
        host=r["host"],
        platform=f"{r['platform_name'] or ''} {r['platform_version'] or ''}".strip(),
        baseline_id=r["baseline_id"] or "",
        status=r["status"],
        overall_severity=r["overall_severity"] or "",
        missing=r["missing_count"],
        installed=r["installed_count"],
        installed_other=r["installed_other_count"],
        pending_reboot=r["installed_pending_reboot_count"],
        rejected=r["installed_rejected_count"],
        failed=r["failed_count"],
        failure_reason=r["failure_reason"] or "",
        warnings="; ".join(r["warnings"] or ()),
        critical_non_compliant=r.get("critical_non_compliant_count") or 0,
        security_non_compliant=r.get("security_non_compliant_count") or 0,
        warning_list=list(r["warnings"] or ()),
    )


def node_rows(nodes: Sequence[StagedNode]) -> list[NodeRow]:
    """One row per node, for the table artifact and ``--output json``."""
    return [node_row(r) for r in nodes]


def counts(nodes: Sequence[StagedNode]) -> dict[str, int]:
    by_status = Counter(r["status"] for r in nodes)
    return {
        "node_count": len(nodes),
        "compliant": by_status[NodeStatus.COMPLIANT],
        "non_compliant": by_status[NodeStatus.NON_COMPLIANT],
        "failed": by_status[NodeStatus.FAILED],
    }


def noncompliant_by_level(node: StagedNode) -> dict[str, int]:
    """A node's non-compliant patches per compliance level (as the CSV reports count them)."""
    return {level.value: node[column] or 0
            for level, column in zip(LEVEL_ORDER, LEVEL_COLUMNS, strict=True)}


def markdown(ctx: RunContext, nodes: Sequence[StagedNode],
             top_missing: Sequence[tuple[str, int, str]] = (),
             report_folder: str | None = None, store: str | None = None) -> str:
    """The ``patch-summary`` artifact: counts by state and compliance level, the packages
    missing on the most nodes, the nodes that failed and why, and where the report and the
    store are."""
    c = counts(nodes)
    states: Counter[PatchState] = Counter()
    severities: Counter[str] = Counter()
    for r in nodes:
        for state, column in _STATE_COUNTS.items():
            states[state] += r[column]
        severities.update({k: v for k, v in noncompliant_by_level(r).items() if v})
    lines = [
        f"# {ctx.operation.value.title()} run `{ctx.run_id}`",
        "",
        f"**{c['node_count']}** node(s): **{c['compliant']}** compliant, "
        f"**{c['non_compliant']}** non-compliant, **{c['failed']}** failed.",
        "",
        "| patch state | count |",
        "|---|---|",
        *(f"| {s.value} | {states[s]} |" for s in PatchState if states[s]),
    ]
    if severities:
        order = [level.value for level in LEVEL_ORDER]
        lines += ["", "| non-compliant by compliance level | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(severities.items(),
                                                       key=lambda kv: (-kv[1], order.index(kv[0])))]
    if top_missing:
        lines += ["", "## Top missing packages", "", "| package | nodes | severity |",
                  "|---|---|---|"]
        lines += [f"| `{pkg}` | {n} | {sev or '-'} |" for pkg, n, sev in top_missing]
    failed = [r for r in nodes if r["status"] == NodeStatus.FAILED]
    if failed:
        lines += ["", "## Nodes that failed", ""]
        lines += [f"- `{r['node_id']}` ({r['host']}): "
                  f"{(r['failure_reason'] or 'no reason recorded').splitlines()[0]}"
                  for r in failed]
    if report_folder or store:
        lines += ["", "## Where it landed", ""]
        if report_folder:
            lines.append(f"- CSV report: `{report_folder}` (on the machine that ran the flow)")
        if store:
            lines.append(f"- compliance store: `{store}`")
    return "\n".join(lines) + "\n"


def report_nodes(nodes: Sequence[StagedNode]) -> list[ReportNode]:
    """The nodes of the all-nodes CSV report, from the staged rows."""
    return [
        ReportNode(
            node_id=r["node_id"],
            host=r["host"],
            status=r["status"],
            last_report_time=r["operation_end_time"],
            platform_name=r["platform_name"],
            platform_version=r["platform_version"],
            baseline_id=r["baseline_id"],
            patch_group=r["patch_group"],
            overall_severity=r["overall_severity"],
            noncompliant_by_level=noncompliant_by_level(r),
        )
        for r in nodes
    ]
