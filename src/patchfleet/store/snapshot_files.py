"""Snapshots on disk: ``<store>/snapshots/<snapshot id>.json``, written atomically.

A snapshot freezes the approved set of a rollout per (OS, patch group), so every node of one
SnapshotId is judged by the same decision even if a baseline or a repository changes mid-rollout
(spec §1.9, §3.1). Reusing a snapshot id reuses it; a group it has not seen yet is added.
"""

from __future__ import annotations

import re
from pathlib import Path

from patchfleet.atomicio import write_atomic
from patchfleet.domain.snapshot import Snapshot
from patchfleet.errors import ConfigError, StoreError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


def snapshot_path(root: Path, snapshot_id: str) -> Path:
    if not _ID.match(snapshot_id):
        raise ConfigError(
            f"{snapshot_id!r} is not a usable snapshot id: use 1-128 characters from "
            "A-Z a-z 0-9 . _ - (a GUID works)", source="snapshot_id")
    return root / "snapshots" / f"{snapshot_id}.json"


def load_snapshot(root: Path, snapshot_id: str) -> Snapshot | None:
    path = snapshot_path(root, snapshot_id)
    try:
        return Snapshot.from_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: unreadable snapshot ({err}); remove it to freeze a new one "
                         "or use another snapshot id") from None


def save_snapshot(root: Path, snapshot: Snapshot) -> Path:
    path = snapshot_path(root, snapshot.snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, snapshot.to_json())
    return path
