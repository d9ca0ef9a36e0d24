"""Sharded scans: how targets are split, and the exchange through a local (shared) store.

The S3 exchange and the Prefect side run for real in tests/integration/test_shards.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.domain.requests import Operation, PatchRequest
from patchfleet.errors import StoreError
from patchfleet.ops.shards import shard_count, shard_spans
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


@pytest.mark.parametrize(("nodes", "shards", "size", "count"), [
    (10, 1, 0, 1), (10, 3, 0, 3), (10, 1, 4, 3), (10, 5, 4, 3), (10, 1, 10, 1),
    (10, 1, 25, 1), (2, 1, 1, 2), (0, 1, 5, 1), (0, 4, 0, 1),
])
def test_shard_size_caps_the_nodes_per_shard(nodes: int, shards: int, size: int,
                                             count: int) -> None:
    assert shard_count(nodes, shards, size) == count
    spans = shard_spans(nodes, count)
    assert not size or all(end - start <= size for start, end in spans)


def test_shard_size_is_a_scan_setting_and_not_for_shards() -> None:
    assert PatchRequest(shard_size=500).sharded
    assert not PatchRequest().sharded
    with pytest.raises(ValueError, match="only a Scan is sharded"):
        PatchRequest(operation=Operation.INSTALL, shard_size=10)
    with pytest.raises(ValueError, match="not sharded again"):
        PatchRequest(shard_size=10, shard="run-1/0")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PatchRequest(shard_size=-1)


def test_local_exchange_round_trip(tmp_path: Path) -> None:
    exchange = ShardExchange.of(tmp_path / "store", "run-1")
    parent = exchange.parent_area()
    assert exchange.shard_area(0) == parent  # a shared folder: shards stage in place
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


def test_shards_of_a_store_on_s3_stage_in_folders_of_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two shards of one run can land on one machine; each removes its staging folder when it
    is done, which must not take the other's parts with it."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    from patchfleet.store.location import StoreLocation

    exchange = ShardExchange.of(StoreLocation.resolve("s3://bucket/prefix"), "run-1")
    first, second = exchange.shard_area(0), exchange.shard_area(1)
    assert first.path != second.path
    assert exchange.parent_area().path not in (first.path, second.path)
