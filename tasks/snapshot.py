"""Tasks: a run's snapshot (SnapshotId) read from the store, frozen and saved back.

A snapshot freezes the approved set per (OS, patch group) the first time its id is used, so
every node of the id is judged by one decision (spec §3.1). An Install freezes it before the
rollout from a scan of every target; a Scan extends it from what its batches froze (staged).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.snapshot import Snapshot
from patchfleet.ops.scan import ScanOptions, scan_each
from patchfleet.ops.snapshots import SnapshotFreezer
from patchfleet.store.location import StoreRoot
from patchfleet.store.snapshot_files import load_snapshot, save_snapshot
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.handles import Opaque


@task(name="load-snapshot", cache_policy=NO_CACHE, retries=0)
def load_run_snapshot(store_root: StoreRoot, snapshot_id: str) -> Snapshot | None:
    """The snapshot ``snapshot_id`` as frozen by earlier runs; None if it is new."""
    return load_snapshot(store_root, snapshot_id)


def _save(store_root: StoreRoot, freezer: SnapshotFreezer) -> Snapshot:
    frozen = freezer.snapshot()
    if frozen != freezer.base:
        get_run_logger().info("snapshot %s saved to %s", frozen.snapshot_id,
                              save_snapshot(store_root, frozen))
    return frozen


@task(name="extend-snapshot", cache_policy=NO_CACHE, retries=0)
def extend_snapshot(store_root: StoreRoot, snapshot_id: str, snapshot: Opaque[Snapshot | None],
                    staging: StagingArea) -> Snapshot:
    """``snapshot`` plus the groups the run's scan batches froze (staged), saved if new."""
    freezer = SnapshotFreezer(snapshot.value, snapshot_id, datetime.now(UTC))
    for part in staging.snapshot_parts():
        freezer.merge(Snapshot.from_json(part.read_bytes()))
    return _save(store_root, freezer)


@task(name="freeze-snapshot", cache_policy=NO_CACHE, retries=0)
async def freeze_snapshot(store_root: StoreRoot, snapshot_id: str,
                          nodes: Opaque[list[ResolvedNode]],
                          registry: Opaque[BaselineRegistry], options: Opaque[ScanOptions],
                          connector: Connector) -> Snapshot:
    """Scan the targets once and freeze every (OS, patch group) the snapshot lacks, so every
    node of the rollout is judged by the same approved set (AWS computes a snapshot once)."""
    logger = get_run_logger()
    freezer = SnapshotFreezer(options.value.snapshot, snapshot_id, datetime.now(UTC))
    total, done = len(nodes.value), 0
    async for _, result in scan_each(nodes.value, registry.value, options.value, connector):
        done += 1
        if result.failed:
            logger.warning("snapshot scan [%d/%d] %s: FAILED %s", done, total, result.node_id,
                           result.failure_reason)
        freezer.add([result])
    return _save(store_root, freezer)
