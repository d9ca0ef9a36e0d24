"""Task: scan one batch of nodes with asyncio fan-out inside the task, writing each node's rows
to the run's staging area as it finishes; only the batch's counts come back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.ops.batches import BatchCounts, BatchRecorder, scan_to_staging
from patchfleet.ops.scan import ScanOptions
from patchfleet.ops.snapshots import SnapshotFreezer
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.handles import Opaque

PROGRESS_SECONDS = 30.0
"""A batch still scanning says how far it got at most this often (one line, not one per node)."""


@task(name="scan-batch", cache_policy=NO_CACHE, retries=0)
async def scan_batch(
    nodes: Opaque[list[ResolvedNode]],
    registry: Opaque[BaselineRegistry],
    options: Opaque[ScanOptions],
    connector: Connector,
    staging: StagingArea,
    ctx: RunContext,
    first_ordinal: int,
    batch_label: str = "",
    deadline: datetime | None = None,
    label_prefix: str = "",
) -> BatchCounts:
    """Scan a batch of nodes into ``staging``; failures are recorded FAILED, never raised.

    Nodes whose turn comes after ``deadline`` (a CANCEL_TASK window's cutoff) are not scanned
    and are recorded FAILED, ``TIMED_OUT: ...``. With the run's snapshot id, the batch also
    stages the approved sets it froze for groups the snapshot lacks. ``label_prefix`` starts
    the names of its staging parts (a shard's, so its parent can tell them apart).
    """
    logger = get_run_logger()
    freezer = (SnapshotFreezer(options.value.snapshot, ctx.snapshot_id, datetime.now(UTC))
               if ctx.snapshot_id else None)
    recorder = BatchRecorder(staging, ctx, f"{label_prefix}scan-{first_ordinal:06d}",
                             freezer=freezer)
    last = time.monotonic()

    def progress(result: NodeResult, done: int, total: int) -> None:
        nonlocal last
        if result.failed:
            logger.warning("%s[%d/%d] %s: FAILED %s", batch_label, done, total, result.node_id,
                           result.failure_reason)
        if done < total and time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            logger.info("%s%d/%d node(s) scanned, %d failed", batch_label, done, total,
                        recorder.counts.failed)

    counts = await scan_to_staging(nodes.value, registry.value, options.value, connector,
                                   recorder, first_ordinal=first_ordinal, deadline=deadline,
                                   progress=progress)
    logger.info("%s%d node(s) scanned: %d compliant, %d non-compliant, %d failed", batch_label,
                counts.nodes, counts.compliant, counts.non_compliant, counts.failed)
    return counts
