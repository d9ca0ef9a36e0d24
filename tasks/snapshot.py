"""Tasks: a run's snapshot (SnapshotId) read from the store, frozen and saved back.

A snapshot freezes the approved set per (OS, patch group) the first time its id is used, so
every node of the id is judged by one decision (spec §3.1). An Install freezes it before the
rollout from a scan of every target; a Scan extends it from its own results.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import NodeResult
from patchfleet.domain.snapshot import Snapshot, extend
from patchfleet.ops.scan import ScanOptions, scan_nodes
from patchfleet.store.location import StoreRoot
from patchfleet.store.snapshot_files import load_snapshot, save_snapshot
from patchfleet.transport import Connector


@task(name="load-snapshot", cache_policy=NO_CACHE, retries=0)
def load_run_snapshot(store_root: StoreRoot, snapshot_id: str) -> Snapshot | None:
    """The snapshot ``snapshot_id`` as frozen by earlier runs; None if it is new."""
    return load_snapshot(store_root, snapshot_id)


def _save(store_root: StoreRoot, snapshot: Snapshot | None, frozen: Snapshot) -> None:
    if frozen != snapshot:
        get_run_logger().info("snapshot %s saved to %s", frozen.snapshot_id,
                              save_snapshot(store_root, frozen))


@task(name="extend-snapshot", cache_policy=NO_CACHE, retries=0)
def extend_snapshot(store_root: StoreRoot, snapshot_id: str, snapshot: Snapshot | None,
                    results: Sequence[NodeResult]) -> Snapshot:
    """``snapshot`` plus the (OS, patch group) pairs of ``results`` it lacks, saved if new."""
    frozen = extend(snapshot, snapshot_id, datetime.now(UTC), results)
    _save(store_root, snapshot, frozen)
    return frozen


@task(name="freeze-snapshot", cache_policy=NO_CACHE, retries=0)
async def freeze_snapshot(store_root: StoreRoot, snapshot_id: str, nodes: list[ResolvedNode],
                          registry: BaselineRegistry, options: ScanOptions,
                          connector: Connector) -> Snapshot:
    """Scan the targets once and freeze every (OS, patch group) the snapshot lacks, so every
    node of the rollout is judged by the same approved set (AWS computes a snapshot once)."""
    logger = get_run_logger()

    def progress(result: NodeResult, done: int, total: int) -> None:
        if result.failed:
            logger.warning("snapshot scan [%d/%d] %s: FAILED %s", done, total, result.node_id,
                           result.failure_reason)

    scanned = await scan_nodes(nodes, registry, options, connector, progress=progress)
    frozen = extend(options.snapshot, snapshot_id, datetime.now(UTC), scanned)
    _save(store_root, options.snapshot, frozen)
    return frozen
