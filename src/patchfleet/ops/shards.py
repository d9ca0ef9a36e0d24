"""Cutting a fleet scan into shards, and what a shard that did not finish leaves behind.

The Prefect side (one deployment run per shard) is ``tasks/shards.py``; the exchange of target
lists and staged rows through the shared store is :mod:`patchfleet.store.shard_exchange`. Here:
which nodes each shard scans (contiguous spans, so the report keeps the inventory's order), and
the FAILED rows recorded for the nodes of a shard that crashed, was cancelled or timed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import RunContext
from patchfleet.ops.batches import BatchCounts, BatchRecorder
from patchfleet.ops.scan import failed_result
from patchfleet.store.shard_exchange import shard_label
from patchfleet.store.staging import StagingArea

__all__ = ["record_lost_shard", "shard_count", "shard_spans"]


def shard_count(nodes: int, shards: int, shard_size: int = 0) -> int:
    """How many shards ``nodes`` targets make: ``ceil(nodes / shard_size)`` when ``shard_size``
    is set, else ``shards``; never more than the nodes, never fewer than 1 (1: no sharding,
    the run scans in its own process)."""
    wanted = -(-nodes // shard_size) if shard_size > 0 else shards
    return max(1, min(wanted, nodes))


def shard_spans(nodes: int, shards: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each non-empty shard: ``nodes`` split into ``shards`` near-equal
    contiguous spans (never more shards than nodes)."""
    count = max(1, min(shards, nodes))
    size, extra = divmod(nodes, count)
    spans: list[tuple[int, int]] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            spans.append((start, end))
        start = end
    return spans


def record_lost_shard(area: StagingArea, ctx: RunContext, index: int,
                      nodes: Sequence[ResolvedNode], first_ordinal: int, started: datetime,
                      reason: str) -> BatchCounts:
    """Record every node of shard ``index`` FAILED with ``reason`` (the caller has discarded
    whatever the shard staged), in their places in the run."""
    recorder = BatchRecorder(area, ctx, f"{shard_label(index)}lost")
    for offset, node in enumerate(nodes):
        recorder.add(failed_result(node, started, reason), first_ordinal + offset)
    return recorder.close()
