"""Snapshots on disk and extending a snapshot with new groups."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.domain.compliance import summarize
from patchfleet.domain.records import PatchRecord, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.domain.snapshot import extend
from patchfleet.errors import ConfigError
from patchfleet.store.snapshot_files import load_snapshot, save_snapshot

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def node(node_id: str, os_: str, group: str | None, version: str) -> NodeResult:
    recs = (PatchRecord(package="fake-curl", arch="amd64", installed_version="1.0",
                        available_version=version, state=PatchState.MISSING),)
    return NodeResult(node_id=node_id, host="h", summary=summarize(recs), records=recs,
                      operation_start_time=NOW, operation_end_time=NOW, patch_group=group,
                      operating_system=os_)


def test_extend_adds_new_groups_and_never_changes_frozen_ones(tmp_path: Path) -> None:
    first = extend(None, "snap-1", NOW, [node("a", "DEBIAN", "web", "1.1")])
    assert set(first.entries) == {"DEBIAN/web"}
    later = extend(first, "snap-1", datetime.now(UTC),
                   [node("b", "DEBIAN", "web", "1.2"), node("c", "UBUNTU", None, "2.0")])
    assert set(later.entries) == {"DEBIAN/web", "UBUNTU/"}
    assert later.entries["DEBIAN/web"] == first.entries["DEBIAN/web"]
    assert later.created_at == NOW
    save_snapshot(tmp_path, later)
    assert load_snapshot(tmp_path, "snap-1") == later
    assert load_snapshot(tmp_path, "snap-2") is None


def test_bad_snapshot_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="snapshot id"):
        load_snapshot(tmp_path, "../escape")
