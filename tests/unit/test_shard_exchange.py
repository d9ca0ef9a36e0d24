"""Sharded scans: how targets are split, and the exchange through a local (shared) store.

The S3 exchange and the Prefect side run for real in tests/integration/test_shards.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.errors import StoreError
from patchfleet.ops.shards import shard_spans
from patchfleet.store.shard_exchange import ShardExchange, shard_label


@pytest.mark.parametrize(("nodes", "shards", "spans"), [
    (3, 2, [(0, 2), (2, 3)]),
    (10, 3, [(0, 4), (4, 7), (7, 10)]),
    (2, 5, [(0, 1), (1, 2)]),
    (0, 4, []),
    (7, 1, [(0, 7)]),
])
def test_spans_cover_every_node_once_in_order(nodes: int, shards: int,
                                               spans: list[tuple[int, int]]) -> None:
    assert shard_spans(nodes, shards) == spans


def test_local_exchange_round_trip(tmp_path: Path) -> None:
    exchange = ShardExchange.of(tmp_path / "store", "run-1")
    parent = exchange.parent_area()
    assert exchange.shard_area() == parent  # a shared folder: shards stage in place
    exchange.put_targets(1, ["n3", "n4"], 2)
    assert exchange.targets(1) == (["n3", "n4"], 2)
    with pytest.raises(StoreError, match="shard 0 of run run-1 has no target list"):
        exchange.targets(0)

    for kind in ("nodes", "patches"):
        (parent.path / kind).mkdir(parents=True, exist_ok=True)
        (parent.path / kind / f"part-{shard_label(1)}scan-000002-0.arrow").write_bytes(b"x")
        (parent.path / kind / f"part-{shard_label(0)}scan-000000-0.arrow").write_bytes(b"y")
    assert exchange.finished(1) is None
    exchange.publish(1, parent, {"nodes": 2})
    assert exchange.finished(1) == {"nodes": 2}
    assert exchange.collect(1, parent) == 2

    exchange.discard(0, parent)  # shard 0 did not finish: its parts go, shard 1's stay
    left = sorted(p.name for p in parent.path.rglob("part-*"))
    assert left == ["part-s001-scan-000002-0.arrow"] * 2
    exchange.remove()
    assert not (parent.path / "shards").exists()


def test_a_run_id_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a run id"):
        ShardExchange.of(tmp_path, "../../etc")
