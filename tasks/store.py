"""Tasks: commit a run's staged rows to the compliance store, write its CSV reports (and
publish them to S3), and discard the staging area once the run is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from patchfleet.config.paths import reports_dir
from patchfleet.domain.results import RunContext
from patchfleet.ops.summary import report_nodes
from patchfleet.report.csv_reports import write_reports as write_csv_reports
from patchfleet.report.publish import publish_reports, run_report_uri
from patchfleet.store.location import StoreLocation, StoreRoot
from patchfleet.store.schema import run_date
from patchfleet.store.staging import StagingArea, commit_staged, read_nodes
from patchfleet.store.writer import WrittenRun


@task(name="store-results", cache_policy=NO_CACHE, retries=0)
def store_results(root: StoreRoot, ctx: RunContext, staging: StagingArea) -> WrittenRun:
    """Append the staged run to the Parquet store (atomic; never overwrites an earlier run)."""
    return commit_staged(root, ctx, staging)


@task(name="write-reports", cache_policy=NO_CACHE, retries=0)
def write_reports(
    root: StoreRoot,
    ctx: RunContext,
    staging: StagingArea,
    report_dir: str | None,
    report_uri: str | None = None,
) -> dict[str, Any]:
    """Write the AWS-format all-nodes CSV report and its QuickSight manifest, from the staged
    node rows. Single-node reports are on demand (``patchfleet report --node ID``), as AWS's
    are: at fleet scale two files per node and run are waste.

    With ``report_uri`` (``s3://bucket[/prefix]``) the folder is also uploaded to
    ``REPORT_URI/date=YYYY-MM-DD/run_id=<run id>/`` (UTC day the run started, as in the store),
    and the manifest, local copy included, names those S3 objects instead of local files.
    Returns ``folder``, ``all_nodes``, ``files`` and ``uris`` (the uploaded objects, manifest
    last; empty without ``report_uri``). A bad ``report_uri`` raises ConfigError before anything
    is written; a failed upload raises PublishError (the store and the local folder are written).
    """
    uri_prefix = run_report_uri(report_uri, ctx.run_id, run_date(ctx)) if report_uri else None
    folder = (Path(report_dir).expanduser() if report_dir
              else reports_dir(StoreLocation.of(root).work_dir, ctx.run_id))
    files = write_csv_reports(folder, report_nodes(read_nodes(staging)), {},
                              uri_prefix=uri_prefix)
    uris = (
        publish_reports(files.folder, uri_prefix, files=files, source="report_uri")
        if uri_prefix
        else []
    )
    return {
        "folder": str(files.folder),
        "all_nodes": str(files.all_nodes),
        "files": [str(p) for p in files],
        "uris": uris,
    }


@task(name="discard-staging", cache_policy=NO_CACHE, retries=0)
def discard_staging(staging: StagingArea) -> None:
    """Remove the run's staging area (its rows are in the store, or it was a dry run)."""
    staging.remove()
