"""How a fleet scan is cut into batches: never more nodes at once than its concurrency."""

from __future__ import annotations

import pytest

from patchfleet.ops.batches import BatchLayout


@pytest.mark.parametrize(("nodes", "size", "concurrency", "batches", "in_flight", "per_batch"), [
    (1000, 100, 50, 10, 10, 5),
    (10_000, 100, 50, 100, 50, 1),  # once 100 batches at 1 each: 100 nodes at once
    (150, 100, 50, 2, 2, 25),
    (120, 100, 50, 2, 2, 25),
    (7, 100, 50, 1, 1, 50),
    (300, 100, 50, 3, 3, 16),  # 48 at once, never 51
    (0, 100, 50, 0, 1, 50),
    (5, 0, 1, 5, 1, 1),
])
def test_layout(nodes: int, size: int, concurrency: int, batches: int, in_flight: int,
                per_batch: int) -> None:
    layout = BatchLayout.of(nodes, size, concurrency)
    assert (len(layout.starts), layout.in_flight, layout.per_batch) == (
        batches, in_flight, per_batch)
    assert layout.max_nodes_at_once <= max(1, concurrency)
    covered = [i for s in layout.starts for i in range(s, min(nodes, s + layout.size))]
    assert covered == list(range(nodes))
