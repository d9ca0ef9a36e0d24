"""Snapshots: one approved set per fleet run, so every node installs the same thing (spec §3.1).

AWS evaluates the baseline once per ``SnapshotId`` and hands every node that result. patchfleet
freezes it from a scan: :func:`freeze` collects, per (operating_system, patch_group), every
version that evaluation approved on some node:

- a MISSING record approves its ``available_version`` (what the install would pin);
- an INSTALLED (or INSTALLED_PENDING_REBOOT) record approves its ``installed_version``;
- other states approve nothing (INSTALLED_OTHER is not approved; rejected is never approved).

Each approved version keeps its compliance level, classification and advisory ids. The JSON form
(:meth:`Snapshot.to_json` / :meth:`Snapshot.from_json`) is what a later run reads back.

:func:`apply_snapshot` makes a later evaluation of a node obey the frozen set. The exact rule, per
record of the new evaluation:

1. FAILED, NOT_APPLICABLE and INSTALLED_REJECTED records are kept as evaluated (a package the
   baseline now rejects under BLOCK stays blocked: the safe side).
2. If a frozen approved version of the same package and arch is above the installed one, the
   record is MISSING at the *highest* such version, with the frozen level and advisories, even
   when today's baseline or repositories would say otherwise (if the repo dropped it, the install
   fails and says so).
3. Otherwise the installed version is approved only if it is in the snapshot: INSTALLED with the
   frozen level; else INSTALLED_OTHER (a newer approval since the freeze does not count).
   INSTALLED_PENDING_REBOOT stays as evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from patchfleet.domain.records import ComplianceLevel, PatchRecord, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.domain.versions import dpkg_compare, rpm_compare

__all__ = ["ApprovedVersion", "Snapshot", "SnapshotEntry", "apply_snapshot", "extend", "freeze"]

_APT_OSES = frozenset({"DEBIAN", "UBUNTU", "RASPBIAN"})
_KEEP = frozenset({PatchState.FAILED, PatchState.NOT_APPLICABLE, PatchState.INSTALLED_REJECTED})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovedVersion(_Model):
    package: str
    arch: str
    version: str
    compliance_level: ComplianceLevel | None = None
    classification: str | None = None
    advisory_ids: tuple[str, ...] = ()


class SnapshotEntry(_Model):
    operating_system: str
    patch_group: str | None = None
    baseline_id: str | None = None
    approved: tuple[ApprovedVersion, ...] = ()

    @property
    def key(self) -> str:
        return entry_key(self.operating_system, self.patch_group)

    def versions(self, package: str, arch: str) -> list[ApprovedVersion]:
        return [a for a in self.approved if a.package == package and a.arch == arch]


def entry_key(operating_system: str, patch_group: str | None) -> str:
    return f"{operating_system}/{patch_group or ''}"


class Snapshot(_Model):
    snapshot_id: str
    created_at: datetime
    entries: dict[str, SnapshotEntry] = Field(default_factory=dict)

    def entry(self, operating_system: str, patch_group: str | None) -> SnapshotEntry | None:
        return self.entries.get(entry_key(operating_system, patch_group))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        return cls.model_validate_json(text)


def freeze(
    snapshot_id: str,
    created_at: datetime,
    results: Iterable[NodeResult],
    operating_systems: Mapping[str, str],
) -> Snapshot:
    """Build a snapshot from a scan's node results; ``operating_systems`` maps node id to its
    AWS OperatingSystem value. Failed nodes contribute nothing."""
    found: dict[str, dict[tuple[str, str, str], ApprovedVersion]] = {}
    meta: dict[str, tuple[str, str | None, str | None]] = {}
    for res in results:
        if res.failed:
            continue
        os_ = operating_systems[res.node_id]
        key = entry_key(os_, res.patch_group)
        meta.setdefault(key, (os_, res.patch_group, res.baseline_id))
        bucket = found.setdefault(key, {})
        for r in res.records:
            if r.state is PatchState.MISSING:
                version = r.available_version
            elif r.state in (PatchState.INSTALLED, PatchState.INSTALLED_PENDING_REBOOT):
                version = r.installed_version
            else:
                continue
            if version is None:
                continue
            bucket.setdefault(
                (r.package, r.arch, version),
                ApprovedVersion(
                    package=r.package,
                    arch=r.arch,
                    version=version,
                    compliance_level=r.compliance_level,
                    classification=r.classification,
                    advisory_ids=r.advisory_ids,
                ),
            )
    entries = {
        key: SnapshotEntry(
            operating_system=meta[key][0],
            patch_group=meta[key][1],
            baseline_id=meta[key][2],
            approved=tuple(bucket[k] for k in sorted(bucket)),
        )
        for key, bucket in found.items()
    }
    return Snapshot(snapshot_id=snapshot_id, created_at=created_at, entries=entries)


def apply_snapshot(records: Iterable[PatchRecord], entry: SnapshotEntry) -> tuple[PatchRecord, ...]:
    """Re-judge a fresh evaluation's records by the frozen approved set (module docstring)."""
    compare = dpkg_compare if entry.operating_system in _APT_OSES else rpm_compare
    out: list[PatchRecord] = []
    for r in records:
        if r.state in _KEEP or r.installed_version is None:
            out.append(r)
            continue
        frozen = entry.versions(r.package, r.arch)
        installed = r.installed_version
        newer = [a for a in frozen if compare(a.version, installed) > 0]
        if newer:
            best = newer[0]
            for a in newer[1:]:
                if compare(a.version, best.version) > 0:
                    best = a
            out.append(
                replace(
                    r,
                    state=PatchState.MISSING,
                    available_version=best.version,
                    compliance_level=best.compliance_level or ComplianceLevel.UNSPECIFIED,
                    classification=best.classification or r.classification,
                    advisory_ids=best.advisory_ids,
                )
            )
            continue
        same = next((a for a in frozen if compare(a.version, installed) == 0), None)
        if r.state is PatchState.INSTALLED_PENDING_REBOOT:
            out.append(r)
        elif same is not None:
            out.append(
                replace(r, state=PatchState.INSTALLED, compliance_level=same.compliance_level)
            )
        else:
            out.append(replace(r, state=PatchState.INSTALLED_OTHER, compliance_level=None))
    return tuple(out)


def extend(
    snapshot: Snapshot | None, snapshot_id: str, created_at: datetime,
    results: Iterable[NodeResult],
) -> Snapshot:
    """``snapshot`` plus frozen entries for the (OS, patch group) pairs of ``results`` it does
    not cover yet (a new snapshot when None). Entries already frozen are never changed."""
    have = dict(snapshot.entries) if snapshot else {}
    fresh = [r for r in results if r.operating_system and not r.failed
             and entry_key(r.operating_system, r.patch_group) not in have]
    oses = {r.node_id: r.operating_system or "" for r in fresh}
    added = freeze(snapshot_id, created_at, fresh, oses).entries
    return Snapshot(snapshot_id=snapshot_id,
                    created_at=snapshot.created_at if snapshot else created_at,
                    entries={**have, **added})
