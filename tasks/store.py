"""Tasks: record a run in the compliance store and write its CSV reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.paths import reports_dir
from patchfleet.report.csv_reports import write_reports_from_results
from patchfleet.store.writer import WrittenRun, write_run


@task(name="store-results", cache_policy=NO_CACHE, retries=0)
def store_results(root: Path, ctx: RunContext, results: Sequence[NodeResult]) -> WrittenRun:
    """Append the run to the Parquet store (atomic; never overwrites an earlier run)."""
    return write_run(root, ctx, results)


@task(name="write-reports", cache_policy=NO_CACHE, retries=0)
def write_reports(
    root: Path, ctx: RunContext, results: Sequence[NodeResult], report_dir: str | None
) -> dict[str, Any]:
    """Write the AWS-format CSV reports (all nodes + one per node) and QuickSight manifests."""
    folder = Path(report_dir).expanduser() if report_dir else reports_dir(root, ctx.run_id)
    files = write_reports_from_results(folder, results)
    return {"folder": str(files.folder), "all_nodes": str(files.all_nodes),
            "files": [str(p) for p in files]}
