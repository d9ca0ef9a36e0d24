"""Where the shards of a sharded run meet their parent: in the shared compliance store.

A sharded scan (``patch-nodes`` with ``shards > 1``) runs each shard as its own deployment run,
on whichever worker takes it, possibly on another machine; all they share is the store. The
parent and its shards exchange, under the parent run's staging prefix::

    STORE/_staging/run_id=<parent>/shards/shard-<i>.targets.json   the shard's node ids (parent)
    STORE/_staging/run_id=<parent>/{nodes,patches,snapshot}/part-s<i>-...   its staged rows
    STORE/_staging/run_id=<parent>/shards/shard-<i>.done.json      written last, by the shard

On a local (shared) store the shard stages straight into the parent's staging folder; on S3 it
stages on its own machine and uploads its parts, then the done marker; the parent downloads the
parts of every shard whose marker is there. Parts of a shard that did not finish are discarded,
so its nodes are recorded once, FAILED with the shard's reason. Nothing here is a table folder:
the store's views never read ``_staging``. Only handles (the parent run id, a shard index)
travel through Prefect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from patchfleet.atomicio import write_atomic
from patchfleet.errors import StoreError
from patchfleet.store.location import StoreLocation, StoreRoot
from patchfleet.store.s3_access import StoreBucket
from patchfleet.store.staging import STAGING_DIR, StagingArea

__all__ = ["ShardExchange", "shard_label"]

_SHARDS: Final = "shards"
_KINDS: Final = ("nodes", "patches", "fact_elements", "fact_lists", "snapshot")


def shard_label(index: int) -> str:
    """The prefix of every staging part shard ``index`` writes (``s003-``)."""
    return f"s{index:03d}-"


@dataclass(frozen=True, slots=True)
class ShardExchange:
    """The exchange of one sharded run: the store and the parent run's id (a small handle)."""

    location: StoreLocation
    parent_run_id: str

    @classmethod
    def of(cls, root: StoreRoot, parent_run_id: str) -> ShardExchange:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", parent_run_id):
            raise StoreError(f"not a run id: {parent_run_id[:80]!r}")
        return cls(StoreLocation.of(root), parent_run_id)

    @property
    def _relative(self) -> str:
        return f"{STAGING_DIR}/run_id={self.parent_run_id}"

    def parent_area(self) -> StagingArea:
        """The parent's staging area (on this machine)."""
        return StagingArea.of(self.location, self.parent_run_id)

    def shard_area(self, index: int) -> StagingArea:
        """Where shard ``index`` stages: the parent's folder on a local store; on S3 a local
        folder of its own (two shards may run on one machine, and each discards its folder
        when it is done)."""
        if self.location.is_s3:
            return StagingArea.of(self.location, f"{self.parent_run_id}-shard-{index}")
        return self.parent_area()

    # -- the parent -------------------------------------------------------------------------

    def put_targets(self, index: int, node_ids: Sequence[str], first_ordinal: int) -> None:
        """Hand shard ``index`` its nodes (ids, in run order) and the first one's place in the
        run."""
        self._put(f"{_SHARDS}/shard-{index}.targets.json",
                  json.dumps({"first_ordinal": first_ordinal, "nodes": list(node_ids)}).encode())

    def finished(self, index: int) -> dict[str, Any] | None:
        """The done marker of shard ``index`` (its counts), or None if it did not finish."""
        data = self._get(f"{_SHARDS}/shard-{index}.done.json")
        return None if data is None else dict(json.loads(data))

    def collect(self, index: int, into: StagingArea) -> int:
        """Bring a finished shard's parts into the parent's staging area (a no-op on a local
        store, where they already are); the number of parts."""
        label = shard_label(index)
        if not self.location.is_s3:
            return sum(1 for kind in _KINDS for p in (into.path / kind).glob(f"part-{label}*"))
        bucket = StoreBucket(self.location)
        count = 0
        for kind in _KINDS:
            for key in self._keys(bucket, f"{kind}/part-{label}"):
                body = bucket.call("read", "get_object", Key=key)["Body"].read()
                write_atomic(into.path / kind / key.rsplit("/", 1)[1], body, parents=True)
                count += 1
        return count

    def discard(self, index: int, area: StagingArea) -> None:
        """Drop whatever shard ``index`` staged (it did not finish: its nodes are recorded
        FAILED instead)."""
        label = shard_label(index)
        for kind in _KINDS:
            for p in (area.path / kind).glob(f"part-{label}*"):
                p.unlink(missing_ok=True)
        if self.location.is_s3:
            bucket = StoreBucket(self.location)
            for kind in _KINDS:
                for key in self._keys(bucket, f"{kind}/part-{label}"):
                    bucket.call("clean up", "delete_object", Key=key)

    def remove(self) -> None:
        """Delete the exchange (after the run is committed, or failed)."""
        if not self.location.is_s3:
            folder = self.parent_area().path / _SHARDS
            for p in folder.glob("*"):
                p.unlink(missing_ok=True)
            if folder.is_dir():
                folder.rmdir()
            return
        bucket = StoreBucket(self.location)
        for key in self._keys(bucket, ""):
            bucket.call("clean up", "delete_object", Key=key)

    # -- a shard ----------------------------------------------------------------------------

    def targets(self, index: int) -> tuple[list[str], int]:
        """The node ids the parent gave shard ``index`` and the first one's place in the run;
        StoreError if there are none."""
        data = self._get(f"{_SHARDS}/shard-{index}.targets.json")
        if data is None:
            raise StoreError(
                f"shard {index} of run {self.parent_run_id} has no target list in "
                f"{self.location.uri}/{self._relative}/{_SHARDS}: shards are started by their "
                "parent run (patch-nodes with shards > 1) and must use the parent's store")
        spec = json.loads(data)
        ids, first = spec.get("nodes"), spec.get("first_ordinal")
        if (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)
                or not isinstance(first, int)):
            raise StoreError(f"shard {index} of run {self.parent_run_id}: bad target list")
        return ids, first

    def publish(self, index: int, area: StagingArea, counts: dict[str, int]) -> None:
        """Make shard ``index``'s staged parts the parent's (uploading them for a store on S3),
        then write its done marker: the parent reads nothing of a shard without one."""
        if self.location.is_s3:
            bucket = StoreBucket(self.location)
            for kind in _KINDS:
                for p in sorted((area.path / kind).glob(f"part-{shard_label(index)}*")):
                    if not p.name.endswith(".tmp"):
                        bucket.call("write", "put_object", Key=self._key(f"{kind}/{p.name}"),
                                    Body=p.read_bytes())
        self._put(f"{_SHARDS}/shard-{index}.done.json", json.dumps(counts).encode())

    # -- storage ----------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        return self.location.key(f"{self._relative}/{relative}")

    def _keys(self, bucket: StoreBucket, prefix: str) -> list[str]:
        return [obj["Key"] for page in bucket.list_pages("list", self._key(prefix))
                for obj in page.get("Contents", [])]

    def _put(self, relative: str, data: bytes) -> None:
        if self.location.is_s3:
            StoreBucket(self.location).call("write", "put_object", Key=self._key(relative),
                                            Body=data)
        else:
            write_atomic(self.parent_area().path / relative, data, parents=True)

    def _get(self, relative: str) -> bytes | None:
        if not self.location.is_s3:
            path = self.parent_area().path / relative
            return path.read_bytes() if path.is_file() else None
        response, _ = StoreBucket(self.location).attempt(
            "read", "get_object", ("NoSuchKey", "404"), Key=self._key(relative))
        return None if response is None else bytes(response["Body"].read())

