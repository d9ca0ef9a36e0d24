"""Task: publish a run's outcome as Prefect artifacts (table per node, markdown summary)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.ops import summary as runsummary
from patchfleet.ops.summary import RunSummary
from patchfleet.store.writer import WrittenRun


@task(name="publish-artifacts", cache_policy=NO_CACHE, retries=0)
async def publish_artifacts(
    ctx: RunContext,
    results: Sequence[NodeResult],
    written: WrittenRun,
    reports: dict[str, Any],
    store_root: str,
) -> RunSummary:
    """Create the ``patch-nodes`` table and summary artifacts; return the run summary."""
    rows = runsummary.node_rows(results)
    await acreate_table_artifact(
        key="patch-nodes",
        table=[r.model_dump() for r in rows] or [{"node_id": "", "status": "no nodes"}],
        description=f"Per-node {ctx.operation.value.lower()} result of run {ctx.run_id}",
    )
    await acreate_markdown_artifact(
        key="patch-summary",
        markdown=runsummary.markdown(ctx, results),
        description=f"Summary of run {ctx.run_id}",
    )
    return RunSummary(
        run_id=ctx.run_id,
        operation=ctx.operation.value,
        snapshot_id=ctx.snapshot_id,
        **runsummary.counts(results),
        nodes=rows,
        store=store_root,
        patch_states_file=str(written.patch_states_path),
        node_summaries_file=str(written.node_summaries_path),
        report_folder=reports.get("folder"),
        report_files=[reports["all_nodes"]] if "all_nodes" in reports else [],
        report_uris=list(reports.get("uris", [])),
    )
