"""Summaries of one run for people: counts, a per-node table and a markdown digest.

Used by the flow's artifacts and by the CLI's closing output, so both say the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.domain.results import NodeResult, RunContext


def node_rows(results: Sequence[NodeResult]) -> list[dict[str, Any]]:
    """One row per node, for the table artifact and ``--output json``."""
    rows = []
    for r in results:
        s = r.summary
        rows.append(
            {
                "node_id": r.node_id,
                "host": r.host,
                "platform": f"{r.platform_name or ''} {r.platform_version or ''}".strip(),
                "baseline_id": r.baseline_id or "",
                "status": s.status.value,
                "overall_severity": s.overall_severity.value if s.overall_severity else "",
                "missing": s.missing_count,
                "installed": s.installed_count,
                "installed_other": s.installed_other_count,
                "pending_reboot": s.installed_pending_reboot_count,
                "rejected": s.installed_rejected_count,
                "failed": s.failed_count,
                "failure_reason": r.failure_reason or "",
                "warnings": "; ".join(r.warnings),
            }
        )
    return rows


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
