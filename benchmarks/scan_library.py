#!/usr/bin/env python3
"""A fleet scan as a plain library call: the ``patch-nodes`` flow's Scan work without Prefect.

    python benchmarks/scan_library.py --inventory INV --store DIR [--concurrency 50]

``bench_fleet.py`` runs this beside ``patchfleet scan`` on the same simulated fleet; the
difference between the two is what Prefect costs (issue 10, "Prefect overhead"). It does what
``flows/patch_nodes.run_request`` + ``_scan`` + ``_record`` do for a Scan, calling the same ops
functions the tasks wrap, in the same order and with the same arguments:

- plan the run (``ops.plan.plan_request``; ``plan-run``), open the default ``SSHConnector``
  (``tasks.connect``), decide the targets (``ops.targeting.resolve_os_targets``;
  ``resolve-targets``);
- split the nodes into batches of ``--batch-size`` with the flow's per-batch concurrency and
  scan them concurrently, each into the run's staging area (``ops.batches.scan_to_staging``;
  ``scan-batch``);
- commit the staged rows to the store (``store.staging.commit_staged``; ``store-results``),
  write the all-nodes CSV report (``write-reports``), build the table and markdown the flow
  publishes as artifacts and the run summary (``publish-artifacts``; no artifact is sent: that
  is Prefect's part), discard the staging area, print the summary as ``-o json`` does.

No Prefect import, no server, no task runs, no run logger. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from patchfleet.config.paths import reports_dir
from patchfleet.domain import records
from patchfleet.domain.requests import Operation, PatchRequest
from patchfleet.domain.results import RunContext
from patchfleet.ops import summary as runsummary
from patchfleet.ops.batches import BatchCounts, BatchLayout, BatchRecorder, scan_to_staging
from patchfleet.ops.plan import plan_request
from patchfleet.ops.targeting import resolve_os_targets
from patchfleet.report.csv_reports import write_reports as write_csv_reports
from patchfleet.store.location import StoreLocation
from patchfleet.store.staging import StagingArea, commit_staged, read_nodes
from patchfleet.transport.connector import SSHConnector


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    request = PatchRequest(operation=Operation.SCAN, targets=args.targets,
                           inventory=args.inventory, store=args.store, refresh=args.refresh,
                           concurrency=args.concurrency, batch_size=args.batch_size)
    run_id = str(uuid.uuid4())
    plan, _ = plan_request(request, run_id)
    ctx = RunContext(run_id=run_id, operation=records.Operation.SCAN,
                     started_at=datetime.now(UTC))
    staging = StagingArea.of(plan.store_root, run_id)
    connector = SSHConnector()
    phases: dict[str, float] = {"plan": time.perf_counter() - t0}
    try:
        t = time.perf_counter()
        chosen = await resolve_os_targets(plan.nodes, request.targets, connector,
                                          concurrency=plan.options.concurrency)
        if chosen.failed:
            recorder = BatchRecorder(staging, ctx, "targets")
            for i, result in enumerate(chosen.failed):
                recorder.add(result, len(chosen.kept) + i)
            recorder.close()
        nodes = chosen.kept
        layout = BatchLayout.of(len(nodes), request.batch_size, plan.options.concurrency)
        options = plan.options.with_concurrency(layout.per_batch)
        phases["targets"] = time.perf_counter() - t
        t = time.perf_counter()
        slots = asyncio.Semaphore(layout.in_flight)

        async def batch(start: int) -> BatchCounts:
            async with slots:
                return await scan_to_staging(
                    nodes[start:start + layout.size], plan.registry, options, connector,
                    BatchRecorder(staging, ctx, f"scan-{start:06d}"), first_ordinal=start,
                    deadline=request.deadline)

        counts = await asyncio.gather(*(batch(start) for start in layout.starts))
        total = sum(counts, BatchCounts())
        phases["scan"] = time.perf_counter() - t
        t = time.perf_counter()
        written = commit_staged(plan.store_root, ctx, staging)
        phases["store"] = time.perf_counter() - t
        t = time.perf_counter()
        folder = reports_dir(StoreLocation.of(plan.store_root).work_dir, ctx.run_id)
        files = write_csv_reports(folder, runsummary.report_nodes(read_nodes(staging)), {})
        phases["reports"] = time.perf_counter() - t
        t = time.perf_counter()
        staged = read_nodes(staging)
        rows = runsummary.node_rows(staged)
        table = [r.model_dump() for r in rows]
        markdown = runsummary.markdown(ctx, staged)
        summary = runsummary.RunSummary(
            run_id=ctx.run_id, operation=ctx.operation.value, snapshot_id=ctx.snapshot_id,
            **runsummary.counts(staged), nodes=rows, store=str(plan.store_root),
            patch_states_file=str(written.patch_states_path),
            node_summaries_file=str(written.node_summaries_path),
            report_folder=str(files.folder), report_files=[str(files.all_nodes)])
        output = json.dumps(summary.output(), default=str)
        phases["summary"] = time.perf_counter() - t
    finally:
        connector.close()
        staging.remove()
    return {"run_id": run_id, "node_count": total.nodes, "compliant": total.compliant,
            "non_compliant": total.non_compliant, "failed": total.failed,
            "artifact_rows": len(table), "markdown_chars": len(markdown),
            "output_chars": len(output), "phases_s": {k: round(v, 2) for k, v in phases.items()},
            "store": str(plan.store_root)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inventory", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--targets", default="*")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--refresh", action=argparse.BooleanOptionalAction, default=True)
    a = p.parse_args()
    result = asyncio.run(run(a))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
