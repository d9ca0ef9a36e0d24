"""Snapshots in the store: ``<store>/snapshots/<snapshot id>.json``, written atomically.

A snapshot freezes the approved set of a rollout per (OS, patch group), so every node of one
SnapshotId is judged by the same decision even if a baseline or a repository changes mid-rollout
(spec §1.9, §3.1). Reusing a snapshot id reuses it; a group it has not seen yet is added. On a
store on S3 the file is the object ``PREFIX/snapshots/<snapshot id>.json`` (one PUT: a reader sees
the old one or the new one).
"""

from __future__ import annotations

import re
from pathlib import Path

from patchfleet.atomicio import write_atomic
from patchfleet.domain.snapshot import Snapshot
from patchfleet.errors import ConfigError, StoreError
from patchfleet.store import object_store
from patchfleet.store.location import StoreLocation, StoreRoot

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


def snapshot_key(snapshot_id: str) -> str:
    """``snapshots/<id>.json``, the snapshot's place inside the store (ConfigError for an id
    that can't name a file)."""
    if not _ID.match(snapshot_id):
        raise ConfigError(
            f"{snapshot_id!r} is not a usable snapshot id: use 1-128 characters from "
            "A-Z a-z 0-9 . _ - (a GUID works)", source="snapshot_id")
    return f"snapshots/{snapshot_id}.json"


def snapshot_path(root: Path, snapshot_id: str) -> Path:
    return root / snapshot_key(snapshot_id)


def load_snapshot(root: StoreRoot, snapshot_id: str) -> Snapshot | None:
    location = StoreLocation.of(root)
    if location.is_s3:
        where = location.uri_of(snapshot_key(snapshot_id))
        data = object_store.read_object(location, snapshot_key(snapshot_id))
        return None if data is None else _parse(data, where)
    path = snapshot_path(location.local, snapshot_id)
    try:
        return _parse(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreError(f"{path}: unreadable snapshot ({err}); remove it to freeze a new one "
                         "or use another snapshot id") from None


def _parse(data: bytes, where: str) -> Snapshot:
    try:
        return Snapshot.from_json(data)
    except ValueError as err:
        raise StoreError(f"{where}: unreadable snapshot ({err}); remove it to freeze a new one "
                         "or use another snapshot id") from None


def save_snapshot(root: StoreRoot, snapshot: Snapshot) -> Path | str:
    """Save ``snapshot``; where it went (a path, or an ``s3://`` URI)."""
    location = StoreLocation.of(root)
    if location.is_s3:
        return object_store.write_object(location, snapshot_key(snapshot.snapshot_id),
                                         snapshot.to_json().encode())
    path = snapshot_path(location.local, snapshot.snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, snapshot.to_json())
    return path
