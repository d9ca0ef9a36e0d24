"""Flow ``evaluate-baseline`` (deployment ``what-if``): judge stored facts with a baseline.

``prefect deployment run 'evaluate-baseline/what-if' -p baseline=NAME`` answers "what would
this baseline say about my fleet today?" from the compliance store, without contacting a node,
the same evaluation as ``patchfleet evaluate`` (ops/what_if.py). With ``save`` (the
deployment's default) it is stored as a run flagged what-if under this flow run's id; a
markdown artifact lists what changes against the stored verdicts.
"""

from __future__ import annotations

import uuid

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import deployment, flow_run

from patchfleet.ops.what_if import WhatIfDigest
from tasks.what_if import judge_stored_facts


@flow(name="evaluate-baseline")
async def evaluate_baseline(
    baseline: str,
    run_id: str | None = None,
    targets: str = "*",
    store: str | None = None,
    baselines_dir: str | None = None,
    at: str | None = None,
    save: bool = True,
) -> WhatIfDigest:
    """What-if: judge the stored facts of ``run_id`` (default: each node's latest) with
    ``baseline`` (a name, a YAML file or AWS JSON), as of ``at`` (ISO 8601; default now)."""
    evaluation_id = f"whatif-{flow_run.id or uuid.uuid4()}"
    summary = judge_stored_facts(baseline, run_id, targets, store, baselines_dir, at, save,
                                 evaluation_id, str(flow_run.id) if flow_run.id else None,
                                 deployment.name if deployment.id else None)
    await acreate_markdown_artifact(key="what-if", markdown=summary.markdown(),
                                    description="What-if: changes against stored verdicts")
    return summary
