"""Freezing a snapshot from results as they stream past, without keeping them.

:func:`patchfleet.domain.snapshot.extend` freezes every (OS, patch group) a snapshot lacks from
a list of results. A fleet run never holds that list: its batches see their nodes a few at a
time. A :class:`SnapshotFreezer` takes them chunk by chunk and keeps only the approved versions
(per group, the union over the group's nodes, as one ``extend`` over them all would); freezers of
several batches merge. Groups already in the base snapshot are never changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from patchfleet.domain.results import NodeResult
from patchfleet.domain.snapshot import ApprovedVersion, Snapshot, SnapshotEntry, entry_key, freeze


class SnapshotFreezer:
    """The groups of ``base`` (None: a new snapshot) plus those frozen from what is added."""

    def __init__(self, base: Snapshot | None, snapshot_id: str, created_at: datetime) -> None:
        self.base = base
        self.snapshot_id = snapshot_id
        self.created_at = created_at
        self._have = dict(base.entries) if base else {}
        self._meta: dict[str, SnapshotEntry] = {}
        self._approved: dict[str, dict[tuple[str, str, str], ApprovedVersion]] = {}

    def add(self, results: Iterable[NodeResult]) -> None:
        """Freeze what ``results`` approve in groups the base lacks."""
        fresh = [r for r in results if r.operating_system and not r.failed
                 and entry_key(r.operating_system, r.patch_group) not in self._have]
        if fresh:
            oses = {r.node_id: r.operating_system or "" for r in fresh}
            self.merge(freeze(self.snapshot_id, self.created_at, fresh, oses))

    def merge(self, other: Snapshot) -> None:
        """Take the groups of ``other`` (another batch's freeze) that the base lacks."""
        for key, entry in other.entries.items():
            if key in self._have:
                continue
            self._meta.setdefault(key, entry)
            bucket = self._approved.setdefault(key, {})
            for a in entry.approved:
                bucket.setdefault((a.package, a.arch, a.version), a)

    def added(self) -> Snapshot:
        """Only the groups frozen here (what a batch hands on)."""
        entries = {
            key: SnapshotEntry(operating_system=meta.operating_system,
                               patch_group=meta.patch_group, baseline_id=meta.baseline_id,
                               approved=tuple(self._approved[key][k]
                                              for k in sorted(self._approved[key])))
            for key, meta in self._meta.items()
        }
        return Snapshot(snapshot_id=self.snapshot_id, created_at=self.created_at,
                        entries=entries)

    def snapshot(self) -> Snapshot:
        """The base with the frozen groups added (equal to the base when none were)."""
        return Snapshot(snapshot_id=self.snapshot_id,
                        created_at=self.base.created_at if self.base else self.created_at,
                        entries={**self._have, **self.added().entries})
