"""Task: scan and install a set of nodes under rate control (one task for the whole rollout:
the error threshold counts across every node, so the nodes can't be split into batches)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.ops.plan import InstallSettings
from patchfleet.ops.rollout import RolloutNodeResult, run_rollout
from patchfleet.ops.scan import ScanOptions
from patchfleet.transport import Connector
from tasks.locks import NodeLocks


@task(name="install-rollout", cache_policy=NO_CACHE, retries=0)
async def install_rollout(
    nodes: list[ResolvedNode],
    registry: BaselineRegistry,
    scan_options: ScanOptions,
    settings: InstallSettings,
    connector: Connector,
    deadline: datetime | None = None,
    node_lock_timeout: float | None = None,
    run_id: str | None = None,
) -> list[RolloutNodeResult]:
    """``deadline`` (a CANCEL_TASK window's cutoff), when given, replaces the options' one:
    from then on no node starts and nodes in progress start no install and no reboot.
    ``node_lock_timeout``, when given, holds each node's lock on the Prefect server while it is
    worked on (tasks/locks.py; the limits must exist), waiting at most that long for it."""
    logger = get_run_logger()
    options = settings.options if deadline is None else replace(settings.options,
                                                                 deadline=deadline)

    def progress(res: RolloutNodeResult, done: int, total: int) -> None:
        r = res.result
        status = r.summary.status.value
        extra = f"; {r.failure_reason}" if r.failure_reason else ""
        logger.info("[%d/%d] %s: %s, %d installed, %d pending reboot%s%s", done, total,
                    r.node_id, status, r.summary.installed_count,
                    r.summary.installed_pending_reboot_count,
                    ", rebooted" if res.rebooted else "", extra)
        for line in res.plan if settings.options.dry_run else ():
            logger.info("  %s: %s", r.node_id, line)

    if node_lock_timeout is None:
        return await run_rollout(nodes, registry, scan_options, options, connector,
                                 max_concurrency=settings.max_concurrency,
                                 max_errors=settings.max_errors, progress=progress)
    async with NodeLocks(node_lock_timeout, run_id) as locks:
        return await run_rollout(nodes, registry, scan_options, options, connector,
                                 max_concurrency=settings.max_concurrency,
                                 max_errors=settings.max_errors, progress=progress,
                                 guard=locks.lock)
