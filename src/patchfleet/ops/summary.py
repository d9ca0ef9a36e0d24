"""Summaries of one run for people: counts, a per-node table and a markdown digest, and the
typed :class:`RunSummary` the ``patch-nodes`` flow returns.

Used by the flow's artifacts and by the CLI's closing output, so both say the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.domain.results import NodeResult, RunContext


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


def node_row(r: NodeResult) -> NodeRow:
    s = r.summary
    return NodeRow(
        node_id=r.node_id,
        host=r.host,
        platform=f"{r.platform_name or ''} {r.platform_version or ''}".strip(),
        baseline_id=r.baseline_id or "",
        status=s.status.value,
        overall_severity=s.overall_severity.value if s.overall_severity else "",
        missing=s.missing_count,
        installed=s.installed_count,
        installed_other=s.installed_other_count,
        pending_reboot=s.installed_pending_reboot_count,
        rejected=s.installed_rejected_count,
        failed=s.failed_count,
        failure_reason=r.failure_reason or "",
        warnings="; ".join(r.warnings),
    )


def node_rows(results: Sequence[NodeResult]) -> list[NodeRow]:
    """One row per node, for the table artifact and ``--output json``."""
    return [node_row(r) for r in results]


def counts(results: Sequence[NodeResult]) -> dict[str, int]:
    by_status = Counter(r.summary.status for r in results)
    return {
        "node_count": len(results),
        "compliant": by_status[NodeStatus.COMPLIANT],
        "non_compliant": by_status[NodeStatus.NON_COMPLIANT],
        "failed": by_status[NodeStatus.FAILED],
    }


def markdown(ctx: RunContext, results: Sequence[NodeResult]) -> str:
    c = counts(results)
    states: Counter[PatchState] = Counter()
    severities: Counter[str] = Counter()
    for r in results:
        for rec in r.records:
            states[rec.state] += 1
            if rec.state.non_compliant:
                severities[rec.compliance_level.value if rec.compliance_level else "UNSPECIFIED"
                           ] += 1
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
        lines += ["", "| non-compliant by compliance level | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in severities.most_common()]
    failed = [r for r in results if r.summary.status is NodeStatus.FAILED]
    if failed:
        lines += ["", "## Nodes that could not be scanned", ""]
        lines += [f"- `{r.node_id}` ({r.host}): {r.failure_reason}" for r in failed]
    return "\n".join(lines) + "\n"
