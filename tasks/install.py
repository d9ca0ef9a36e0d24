"""Task: scan and install a set of nodes under rate control (one task for the whole rollout:
the error threshold counts across every node, so the nodes can't be split into batches). Each
node's rows go to the run's staging area as it finishes; only a small outcome comes back."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import RunContext
from patchfleet.ops.batches import BatchRecorder, RolloutOutcome, rollout_to_staging
from patchfleet.ops.plan import InstallSettings
from patchfleet.ops.rollout import RolloutNodeResult
from patchfleet.ops.scan import ScanOptions
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.handles import Opaque
from tasks.locks import NodeLocks

PROGRESS_SECONDS = 30.0


@task(name="install-rollout", cache_policy=NO_CACHE, retries=0)
async def install_rollout(
    nodes: Opaque[list[ResolvedNode]],
    registry: Opaque[BaselineRegistry],
    scan_options: Opaque[ScanOptions],
    settings: Opaque[InstallSettings],
    connector: Connector,
    staging: StagingArea,
    ctx: RunContext,
    deadline: datetime | None = None,
    node_lock_timeout: float | None = None,
) -> RolloutOutcome:
    """``deadline`` (a CANCEL_TASK window's cutoff), when given, replaces the options' one:
    from then on no node starts and nodes in progress start no install and no reboot.
    ``node_lock_timeout``, when given, holds each node's lock on the Prefect server while it is
    worked on (tasks/locks.py; the limits must exist), waiting at most that long for it."""
    logger = get_run_logger()
    rates = settings.value
    options = rates.options if deadline is None else replace(rates.options, deadline=deadline)
    recorder = BatchRecorder(staging, ctx, "rollout")
    last = time.monotonic()

    def progress(res: RolloutNodeResult, done: int, total: int) -> None:
        nonlocal last
        r = res.result
        if r.failed:
            logger.warning("[%d/%d] %s: FAILED %s", done, total, r.node_id, r.failure_reason)
        for line in res.plan if options.dry_run else ():
            logger.info("  %s: %s", r.node_id, line)
        if done < total and time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            c = recorder.counts
            logger.info("%d/%d node(s) done: %d compliant, %d non-compliant, %d failed", done,
                        total, c.compliant, c.non_compliant, c.failed)

    async def rollout(locks: NodeLocks | None) -> RolloutOutcome:
        return await rollout_to_staging(
            nodes.value, registry.value, scan_options.value, options, connector, recorder,
            max_concurrency=rates.max_concurrency, max_errors=rates.max_errors,
            progress=progress, guard=locks.lock if locks is not None else None)

    if node_lock_timeout is None:
        outcome = await rollout(None)
    else:
        async with NodeLocks(node_lock_timeout, ctx.run_id) as locks:
            outcome = await rollout(locks)
    c = outcome.counts
    logger.info("%d node(s) done: %d compliant, %d non-compliant, %d failed; %d rebooted%s",
                c.nodes, c.compliant, c.non_compliant, c.failed, len(outcome.rebooted),
                "; the error threshold stopped the rollout" if outcome.stopped else "")
    return outcome
