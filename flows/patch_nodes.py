"""Flow: run AWS-RunPatchBaseline's operation on a set of nodes.

Parameters mirror AWS-RunPatchBaseline where they apply (``operation``, ``snapshot_id``,
``baseline_override``) plus what an agentless tool needs (``inventory``, ``targets``, ``store``).
Nodes are scanned concurrently by tasks that each take a batch (asyncio fan-out inside), the
results land in the Parquet store and the CSV reports, and the flow publishes a table artifact
with one row per node and a markdown summary.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from patchfleet.domain.records import Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.runplan import plan_scan
from patchfleet.transport import KeyRing
from tasks.publish import publish_artifacts
from tasks.scan import scan_batch
from tasks.store import store_results, write_reports


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"{str(params.get('operation', 'Scan')).lower()}-{params.get('targets', '*')}"


@flow(name="patch-nodes", flow_run_name=_run_name, log_prints=False)
async def patch_nodes(
    operation: str = "Scan",
    targets: str = "*",
    inventory: str | None = None,
    baseline_override: str | None = None,
    snapshot_id: str | None = None,
    store: str | None = None,
    baselines_dir: str | None = None,
    refresh: bool = True,
    concurrency: int = 50,
    batch_size: int = 100,
    lock_timeout: int = 60,
    report_dir: str | None = None,
) -> dict[str, Any]:
    """Scan the targeted nodes and record their compliance.

    Returns a JSON-able summary: run id, node counts by status, store and report paths.
    """
    logger = get_run_logger()
    plan = plan_scan(
        operation=operation,
        inventory=inventory,
        targets=targets,
        baseline=baseline_override,
        baselines_dir=baselines_dir,
        store=store,
        refresh=refresh,
        concurrency=concurrency,
        lock_timeout=lock_timeout,
    )
    run_id = str(flow_run.id or uuid.uuid4())
    ctx = RunContext(
        run_id=run_id,
        operation=Operation.SCAN,
        started_at=datetime.now(UTC),
        snapshot_id=snapshot_id,
    )
    nodes = plan.nodes
    size = max(1, batch_size)
    batches = [nodes[i : i + size] for i in range(0, len(nodes), size)]
    per_batch = max(1, math.ceil(plan.options.concurrency / len(batches)))
    logger.info(
        "scanning %d node(s) from %s in %d batch(es), up to %d at once",
        len(nodes), plan.inventory_source, len(batches), per_batch * len(batches),
    )
    keys = KeyRing()
    options = plan.options.with_concurrency(per_batch)
    results: list[NodeResult] = []
    try:
        for part in await asyncio.gather(
            *(
                scan_batch(b, plan.registry, options, keys, f"batch {i + 1}/{len(batches)} ")
                for i, b in enumerate(batches)
            )
        ):
            results.extend(part)
    finally:
        keys.close()

    written = store_results(plan.store_root, ctx, results)
    reports = write_reports(plan.store_root, ctx, results, report_dir)
    summary = await publish_artifacts(ctx, results, written, reports, str(plan.store_root))
    logger.info(
        "run %s: %d compliant, %d non-compliant, %d failed; store %s; reports %s",
        run_id, summary["compliant"], summary["non_compliant"], summary["failed"],
        plan.store_root, reports.get("folder"),
    )
    return summary
