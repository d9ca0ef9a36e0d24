"""Task: scan one batch of nodes with asyncio fan-out inside the task."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.records import NodeStatus
from patchfleet.domain.results import NodeResult
from patchfleet.ops.scan import ScanOptions, scan_nodes
from patchfleet.transport import Connector


@task(name="scan-batch", cache_policy=NO_CACHE, retries=0)
async def scan_batch(
    nodes: list[ResolvedNode],
    registry: BaselineRegistry,
    options: ScanOptions,
    connector: Connector,
    batch_label: str = "",
    deadline: datetime | None = None,
) -> list[NodeResult]:
    """Scan a batch of nodes; failures come back as FAILED results, never as exceptions.

    Nodes whose turn comes after ``deadline`` (a CANCEL_TASK window's cutoff) are not scanned
    and come back FAILED, ``TIMED_OUT: ...``.
    """
    logger = get_run_logger()

    def progress(result: NodeResult, done: int, total: int) -> None:
        s = result.summary
        if s.status is NodeStatus.FAILED:
            logger.warning("%s[%d/%d] %s: FAILED %s", batch_label, done, total, result.node_id,
                           result.failure_reason)
        else:
            logger.info(
                "%s[%d/%d] %s: %s (%d missing, %d installed, baseline %s)",
                batch_label, done, total, result.node_id, s.status.value, s.missing_count,
                s.installed_count, result.baseline_id,
            )

    return await scan_nodes(nodes, registry, options, connector, progress=progress,
                            deadline=deadline)
