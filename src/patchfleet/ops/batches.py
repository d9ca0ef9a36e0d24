"""A batch of nodes whose results go to the run's staging area as they come, not to a list.

A fleet run keeps no node's records longer than it takes to write them: a
:class:`BatchRecorder` buffers a few results, writes them to the staging area
(:class:`~patchfleet.store.staging.StagingWriter`), counts them and, for a run with a snapshot
id, freezes the approved sets they show (:class:`~patchfleet.ops.snapshots.SnapshotFreezer`).
:func:`scan_to_staging` is a scan batch done that way, :func:`rollout_to_staging` an install
rollout. What leaves a batch is its counts (and a rollout's plans and reboots).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.records import NodeStatus
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.domain.rollout import Rate
from patchfleet.ops import progress
from patchfleet.ops.rollout import InstallOptions, NodeGuard, RolloutNodeResult, run_rollout
from patchfleet.ops.scan import ScanOptions, scan_each
from patchfleet.ops.snapshots import SnapshotFreezer
from patchfleet.store.staging import StagingArea, StagingWriter
from patchfleet.transport.base import Connector

CHUNK = 25
"""Nodes buffered before their rows are written (bounds a batch's memory)."""


@dataclass(frozen=True, slots=True)
class BatchLayout:
    """How a scan of ``nodes`` nodes is cut into batches without exceeding its concurrency.

    ``starts`` are the batches' first indexes (``size`` nodes each, the last one fewer); at
    most ``in_flight`` batches run at once, each scanning up to ``per_batch`` nodes at a time,
    so no more than ``concurrency`` nodes are ever scanned at once (10,000 nodes in batches
    of 100 at concurrency 50: 50 batches at a time, one node each).
    """

    starts: tuple[int, ...]
    size: int
    in_flight: int
    per_batch: int

    @classmethod
    def of(cls, nodes: int, batch_size: int, concurrency: int) -> BatchLayout:
        size = max(1, batch_size)
        starts = tuple(range(0, nodes, size))
        in_flight = max(1, min(len(starts), concurrency))
        return cls(starts, size, in_flight, max(1, concurrency // in_flight))

    @property
    def max_nodes_at_once(self) -> int:
        return self.in_flight * self.per_batch


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """How many nodes a batch recorded, by status."""

    nodes: int = 0
    compliant: int = 0
    non_compliant: int = 0
    failed: int = 0

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(self.nodes + other.nodes, self.compliant + other.compliant,
                           self.non_compliant + other.non_compliant, self.failed + other.failed)

    def counted(self, result: NodeResult) -> BatchCounts:
        status = result.summary.status
        return self + BatchCounts(1, int(status is NodeStatus.COMPLIANT),
                                  int(status is NodeStatus.NON_COMPLIANT),
                                  int(status is NodeStatus.FAILED))


class BatchRecorder:
    """Records one batch's node results in the staging area (labels must differ per batch).

    ``freezer``, for a run with a snapshot id, also takes every result; :meth:`close` stages
    the groups it froze.
    """

    def __init__(self, area: StagingArea, ctx: RunContext, label: str, *,
                 freezer: SnapshotFreezer | None = None, chunk: int = CHUNK) -> None:
        self.area = area
        self.label = label
        self.counts = BatchCounts()
        self._writer = StagingWriter(area, ctx, label)
        self._freezer = freezer
        self._chunk = max(1, chunk)
        self._results: list[NodeResult] = []
        self._ordinals: list[int] = []

    def add(self, result: NodeResult, ordinal: int) -> None:
        """Record ``result``; ``ordinal`` is the node's place in the run (report order)."""
        self._results.append(result)
        self._ordinals.append(ordinal)
        self.counts = self.counts.counted(result)
        progress.announce(result)
        if len(self._results) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        self._writer.write(self._results, self._ordinals)
        if self._freezer is not None:
            self._freezer.add(self._results)
        self._results, self._ordinals = [], []

    def close(self) -> BatchCounts:
        self.flush()
        if self._freezer is not None and (added := self._freezer.added()).entries:
            self.area.write_snapshot_part(self.label, added.to_json())
        return self.counts


async def scan_to_staging(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    options: ScanOptions,
    connector: Connector,
    recorder: BatchRecorder,
    *,
    first_ordinal: int = 0,
    deadline: datetime | None = None,
    progress: Callable[[NodeResult, int, int], None] | None = None,
) -> BatchCounts:
    """Scan ``nodes`` (see :func:`~patchfleet.ops.scan.scan_each`) into ``recorder``; the
    nodes' ordinals are ``first_ordinal`` on, in input order."""
    done = 0
    async for index, result in scan_each(nodes, registry, options, connector,
                                         deadline=deadline):
        recorder.add(result, first_ordinal + index)
        done += 1
        if progress is not None:
            progress(result, done, len(nodes))
    return recorder.close()


@dataclass(frozen=True, slots=True)
class RolloutOutcome:
    """What an install rollout hands back (its rows are in the staging area)."""

    counts: BatchCounts
    plans: dict[str, list[str]]
    """Node id -> the plan's lines (what would be / was installed)."""
    rebooted: list[str]
    stopped: bool
    """The error threshold stopped the rollout (some nodes are NOT_ATTEMPTED)."""


async def rollout_to_staging(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    scan_options: ScanOptions,
    options: InstallOptions,
    connector: Connector,
    recorder: BatchRecorder,
    *,
    max_concurrency: int | Rate,
    max_errors: int | Rate,
    progress: Callable[[RolloutNodeResult, int, int], None] | None = None,
    guard: NodeGuard | None = None,
) -> RolloutOutcome:
    """:func:`~patchfleet.ops.rollout.run_rollout` into ``recorder``: each node is recorded as
    it finishes, the nodes the rollout never started at the end (ordinals: input order)."""
    ordinal = {n.id: i for i, n in enumerate(nodes)}
    recorded: set[str] = set()

    def done(res: RolloutNodeResult, finished: int, total: int) -> None:
        recorder.add(res.result, ordinal[res.result.node_id])
        recorded.add(res.result.node_id)
        if progress is not None:
            progress(res, finished, total)

    results = await run_rollout(nodes, registry, scan_options, options, connector,
                                max_concurrency=max_concurrency, max_errors=max_errors,
                                progress=done, guard=guard)
    for res in results:
        if res.result.node_id not in recorded:
            recorder.add(res.result, ordinal[res.result.node_id])
    return RolloutOutcome(
        counts=recorder.close(),
        plans={res.result.node_id: list(res.plan) for res in results},
        rebooted=[res.result.node_id for res in results if res.rebooted],
        stopped=any((res.result.failure_reason or "").startswith("NOT_ATTEMPTED")
                    for res in results),
    )
