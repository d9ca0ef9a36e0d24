"""Task: publish a run's outcome as Prefect artifacts (table per node, markdown summary) and
return the run's summary, all from the run's staged node rows.

The summary links the fleet's HTML dashboard (``patchfleet report --html``). Runs don't write
it: it reads the store's whole history (10 s at 10,000 nodes x 30 days, growing with the days
kept; a run's CSV report 0.1 s; see the README's "Dashboard"), so the link says where it is and
how fresh, or the command that writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from patchfleet.config.paths import reports_dir
from patchfleet.domain.results import RunContext
from patchfleet.ops import summary as runsummary
from patchfleet.ops.summary import RunSummary
from patchfleet.report.dashboard import DASHBOARD_FILE
from patchfleet.store.location import StoreLocation
from patchfleet.store.staging import StagingArea, read_nodes, top_missing
from patchfleet.store.writer import WrittenRun
from tasks.handles import Opaque


@task(name="publish-artifacts", cache_policy=NO_CACHE, retries=0)
async def publish_artifacts(
    ctx: RunContext,
    staging: StagingArea,
    written: WrittenRun,
    reports: dict[str, Any],
    store_root: str,
) -> RunSummary:
    """Create the ``patch-nodes`` table and summary artifacts; return the run summary."""
    nodes = read_nodes(staging)
    rows = runsummary.node_rows(nodes)
    await acreate_table_artifact(
        key="patch-nodes",
        table=[r.model_dump() for r in rows] or [{"node_id": "", "status": "no nodes"}],
        description=f"Per-node {ctx.operation.value.lower()} result of run {ctx.run_id}",
    )
    await acreate_markdown_artifact(
        key="patch-summary",
        markdown=runsummary.markdown(ctx, nodes, top_missing(staging),
                                     reports.get("folder"), store_root)
        + (dashboard_line(store_root) if reports else ""),
        description=f"Summary of run {ctx.run_id}",
    )
    return RunSummary(
        run_id=ctx.run_id,
        operation=ctx.operation.value,
        snapshot_id=ctx.snapshot_id,
        **runsummary.counts(nodes),
        nodes=rows,
        store=store_root,
        patch_states_file=str(written.patch_states_path),
        node_summaries_file=str(written.node_summaries_path),
        report_folder=reports.get("folder"),
        # all-nodes.csv first, then the manifest and any other file the run wrote
        report_files=[reports["all_nodes"], *(f for f in reports.get("files", [])
                                             if f != reports["all_nodes"])]
        if "all_nodes" in reports else [],
        report_uris=list(reports.get("uris", [])),
    )


def dashboard_line(store_root: str) -> str:
    """The summary's line about the fleet dashboard: where ``patchfleet report --html`` (the
    latest state, default folder) keeps it and when it was written, or how to write it."""
    path = reports_dir(StoreLocation.of(store_root).work_dir, "latest") / DASHBOARD_FILE
    command = f"`patchfleet report --html --store {store_root}`"
    try:
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return f"- fleet dashboard: not written yet; {command} writes `{path}`\n"
    return (f"- fleet dashboard: `{path}` (written {written:%Y-%m-%d %H:%M} UTC; runs don't "
            f"refresh it: {command})\n")


@task(name="summarize-dry-run", cache_policy=NO_CACHE, retries=0)
def summarize_dry_run(ctx: RunContext, staging: StagingArea,
                      plans: Opaque[dict[str, list[str]]], stopped: bool) -> RunSummary:
    """The summary of an install dry run (nothing is stored or published)."""
    nodes = read_nodes(staging)
    return RunSummary(run_id=ctx.run_id, operation="Install", dry_run=True,
                      **runsummary.counts(nodes), nodes=runsummary.node_rows(nodes),
                      plans=plans.value, stopped=stopped)
