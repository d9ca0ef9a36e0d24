"""``patchfleet evaluate``: what would a baseline say about the stored facts (what-if)?

Reads the compliance store only (no node is contacted and no Prefect run is started, so it
answers in seconds even for a large fleet); ``--save`` stores the evaluation as a run flagged
what-if. The ``what-if`` deployment runs the same evaluation as a flow.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from patchfleet.cli import render
from patchfleet.ops import summary as run_summary
from patchfleet.ops.what_if import WhatIf

SHOWN_CHANGES = 20
"""Patch changes printed in the table form (``-o json`` has them all)."""


def summary_of(outcome: WhatIf, store: str) -> run_summary.RunSummary:
    """The evaluation as the run summary a scan prints."""
    rows = outcome.node_rows()
    written = outcome.written
    return run_summary.RunSummary(
        run_id=outcome.run_id, operation="WHAT_IF", **run_summary.counts(rows),
        nodes=run_summary.node_rows(rows), store=store,
        **({"node_summaries_file": str(written.node_summaries_path),
            "patch_states_file": str(written.patch_states_path)} if written else {}))


def as_json(outcome: WhatIf, store: str) -> dict[str, Any]:
    """``-o json``: the summary plus the sources, skipped nodes and every change."""
    data = summary_of(outcome, store).output()
    data.update({
        "what_if": True, "at": outcome.at.isoformat(), "saved": outcome.written is not None,
        "source_runs": outcome.source_runs, "skipped": outcome.skipped,
        "without_facts": outcome.without_facts,
        "node_changes": [{"node_id": f.node_id, "before": f.before, "after": f.after}
                         for f in outcome.node_flips],
        "patch_changes": [{"node_id": f.node_id, "package": f.package, "arch": f.arch,
                           "before": f.before, "after": f.after} for f in outcome.patch_flips],
    })
    return data


def print_outcome(out: Console, outcome: WhatIf, store: str) -> None:
    """The scan's summary table, then what changes against the stored verdicts."""
    render.print_summary(out, summary_of(outcome, store))
    sources = ", ".join(outcome.source_runs) or "none"
    out.print(f"what-if as of {outcome.at:%Y-%m-%d %H:%M:%S}Z on the facts of run(s) {sources}"
              f"{'' if outcome.written else '; not saved (--save stores it as a what-if run)'}",
              highlight=False, soft_wrap=True)
    if outcome.skipped:
        out.print(f"{len(outcome.skipped)} node(s) not judged (the baseline does not cover "
                  "their OS): " + ", ".join(sorted(outcome.skipped)[:10])
                  + (" ..." if len(outcome.skipped) > 10 else ""), highlight=False,
                  soft_wrap=True)
    if outcome.without_facts:
        out.print(f"{outcome.without_facts} node(s) not judged: their latest result holds no "
                  "facts (a FAILED scan, or a run written before schema v2); scan them again",
                  highlight=False, soft_wrap=True)
    nodes, patches = outcome.node_flips, outcome.patch_flips
    out.print(f"changes against the stored verdicts: {len(nodes)} node(s) change status, "
              f"{len(patches)} patch(es) change state", highlight=False)
    for flip in nodes:
        out.print(f"  {flip.node_id}: {flip.before} -> {flip.after}", highlight=False)
    for p in patches[:SHOWN_CHANGES]:
        out.print(f"  {p.node_id} {p.package}{'.' + p.arch if p.arch else ''}: "
                  f"{p.before or '(none)'} -> {p.after or '(none)'}", highlight=False)
    if len(patches) > SHOWN_CHANGES:
        out.print(f"  ... {len(patches) - SHOWN_CHANGES} more (-o json lists them all)",
                  highlight=False)
