"""Task: judge stored facts with a baseline (what-if). It reads the store and judges in one
task, and hands back only a digest: the facts and records never pass through Prefect."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.ops.plan import load_override, load_registry
from patchfleet.ops.what_if import WhatIfDigest, digest, evaluate_stored, parse_at
from patchfleet.store.location import StoreLocation


@task(name="judge-stored-facts", cache_policy=NO_CACHE, retries=0)
def judge_stored_facts(baseline: str, run_id: str | None, targets: str, store: str | None,
                       baselines_dir: str | None, at: str | None, save: bool,
                       evaluation_id: str, flow_run_id: str | None = None,
                       deployment: str | None = None) -> WhatIfDigest:
    """Judge the stored facts of ``run_id`` (None: each node's latest) with ``baseline``;
    return :func:`~patchfleet.ops.what_if.digest` of the outcome."""
    baselines = load_override(baseline, load_registry(baselines_dir))
    outcome = evaluate_stored(StoreLocation.resolve(store), baselines, run_id=run_id,
                              targets=targets, at=parse_at(at), save=save,
                              evaluation_id=evaluation_id, flow_run_id=flow_run_id,
                              deployment=deployment)
    summary = digest(outcome)
    get_run_logger().info(
        "what-if of %s with %s: %s node(s) judged, %s skipped; %d node(s) and %s patch(es) "
        "change against the stored verdicts%s", ", ".join(outcome.source_runs) or "no run",
        baseline, summary.nodes, summary.skipped, len(outcome.node_flips),
        summary.patch_changes, "; saved" if outcome.written else "")
    return summary
