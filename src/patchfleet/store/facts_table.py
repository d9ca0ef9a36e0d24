"""``package_facts``: what each node showed, kept beside the verdicts (schema v2).

One row per element of a node's :class:`~patchfleet.domain.facts.NodeFacts`, in the order the
scan saw them, told apart by ``kind``:

================  =============================================================================
``installed``     an installed package: ``package, arch, version`` (installed), ``source_package,
                  source_version, status, held, priority, section, install_time``
``candidates``    apt: every version ``apt-cache policy`` offered for an installed package:
                  ``package, installed_version, candidate_version`` and ``versions`` (a list of
                  ``{version, installed, priority, section, security, origins: [{origin, label,
                  archive, codename, component, site, security}]}``)
``update``        dnf/zypper: the newest version a repository offers: ``package, arch, version``
                  (E:V-R), ``installed_version, repository, build_time``
``notice``        dnf/zypper: an updateinfo notice or zypper patch: ``notice_id, notice_type,
                  severity, title, issued, updated, cve_ids, bugzilla_ids, reboot_suggested,
                  interactive, notice_installed`` and ``notice_packages`` (``[{name, epoch,
                  version, release, arch}]``)
``planned``       apt: an ``Inst`` line of the dist-upgrade simulation: ``package, arch,
                  installed_version`` (old), ``version`` (new), ``planned_origins``
================  =============================================================================

The node-level facts (OS, reboot signal, refresh, collection time) are columns of
``node_summaries``. Together they are enough to rebuild the node's facts exactly
(:func:`rebuild_facts`), which is what ``patchfleet evaluate`` (what-if) judges, and what the
first-seen dates of staged approval are read from (every version ever offered, not only the one
a verdict named). The analyst's flat form is the ``package_offers`` view (sql/60).

Nodes of one image share their fact objects (``domain.memo``), so each distinct element is
converted once per batch and the rows are gathered by index in Arrow, as ``patch_states`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa

from patchfleet.domain.facts import (
    Advisory,
    AvailableUpdate,
    InstalledPackage,
    NodeFacts,
    PackageCandidates,
    PackageOrigin,
    PackageVersion,
    PlannedChange,
    RpmRef,
)
from patchfleet.domain.results import NodeResult

PACKAGE_FACTS: Final = "package_facts"

INSTALLED: Final = "installed"
CANDIDATES: Final = "candidates"
UPDATE: Final = "update"
NOTICE: Final = "notice"
PLANNED: Final = "planned"
KINDS: Final = (INSTALLED, CANDIDATES, UPDATE, NOTICE, PLANNED)

_TS = pa.timestamp("us", tz="UTC")
_STR = pa.string()
_STRINGS = pa.list_(pa.field("item", pa.string(), nullable=False))
_ORIGIN = pa.struct([
    pa.field("origin", _STR), pa.field("label", _STR), pa.field("archive", _STR),
    pa.field("codename", _STR), pa.field("component", _STR), pa.field("site", _STR),
    pa.field("security", pa.bool_()),
])
_VERSION = pa.struct([
    pa.field("version", _STR), pa.field("installed", pa.bool_()),
    pa.field("priority", _STR), pa.field("section", _STR), pa.field("security", pa.bool_()),
    pa.field("origins", pa.list_(pa.field("item", _ORIGIN))),
])
_RPM_REF = pa.struct([
    pa.field("name", _STR), pa.field("epoch", pa.int32()), pa.field("version", _STR),
    pa.field("release", _STR), pa.field("arch", _STR),
])

PACKAGE_FACTS_SCHEMA: Final = pa.schema([
    pa.field("node_id", _STR, nullable=False),
    pa.field("seq", pa.int32(), nullable=False),
    pa.field("kind", _STR, nullable=False),
    pa.field("package", _STR),
    pa.field("arch", _STR),
    pa.field("version", _STR),
    pa.field("installed_version", _STR),
    pa.field("candidate_version", _STR),
    pa.field("source_package", _STR),
    pa.field("source_version", _STR),
    pa.field("status", _STR),
    pa.field("held", pa.bool_()),
    pa.field("priority", _STR),
    pa.field("section", _STR),
    pa.field("install_time", _TS),
    pa.field("repository", _STR),
    pa.field("security", pa.bool_()),
    pa.field("build_time", _TS),
    pa.field("versions", pa.list_(pa.field("item", _VERSION))),
    pa.field("planned_origins", _STRINGS),
    pa.field("notice_id", _STR),
    pa.field("notice_type", _STR),
    pa.field("severity", _STR),
    pa.field("title", _STR),
    pa.field("issued", _TS),
    pa.field("updated", _TS),
    pa.field("cve_ids", _STRINGS),
    pa.field("bugzilla_ids", _STRINGS),
    pa.field("reboot_suggested", pa.bool_()),
    pa.field("interactive", pa.bool_()),
    pa.field("notice_installed", pa.bool_()),
    pa.field("notice_packages", pa.list_(pa.field("item", _RPM_REF))),
    pa.field("run_id", _STR, nullable=False),
])

Row = dict[str, Any]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- facts -> rows ----------------------------------------------------------------------------


def _installed_row(p: InstalledPackage) -> Row:
    return {"kind": INSTALLED, "package": p.name, "arch": p.arch, "version": p.version,
            "source_package": p.source_name, "source_version": p.source_version,
            "status": p.status, "held": p.held, "priority": p.priority, "section": p.section,
            "install_time": _utc(p.install_time)}


def _origin(o: PackageOrigin) -> Row:
    return {"origin": o.origin, "label": o.label, "archive": o.archive, "codename": o.codename,
            "component": o.component, "site": o.site, "security": o.security}


def _candidates_row(c: PackageCandidates) -> Row:
    candidate = c.version(c.candidate_version) if c.candidate_version else None
    return {
        "kind": CANDIDATES, "package": c.name, "installed_version": c.installed_version,
        "candidate_version": c.candidate_version,
        "repository": candidate.origins[0].display if candidate and candidate.origins else None,
        "security": candidate.security if candidate else None,
        "versions": [{"version": v.version, "installed": v.installed, "priority": v.priority,
                      "section": v.section, "security": v.security,
                      "origins": [_origin(o) for o in v.origins]} for v in c.versions],
    }


def _ref(r: RpmRef) -> Row:
    return {"name": r.name, "epoch": r.epoch, "version": r.version, "release": r.release,
            "arch": r.arch}


def _update_row(u: AvailableUpdate) -> Row:
    return {"kind": UPDATE, "package": u.package.name, "arch": u.package.arch,
            "version": u.package.evr, "installed_version": u.installed_evr,
            "repository": u.repository, "build_time": _utc(u.build_time)}


def _notice_row(a: Advisory) -> Row:
    return {"kind": NOTICE, "notice_id": a.id, "notice_type": a.type, "severity": a.severity,
            "title": a.title, "issued": _utc(a.issued), "updated": _utc(a.updated),
            "cve_ids": list(a.cves), "bugzilla_ids": list(a.bugzillas),
            "reboot_suggested": a.reboot_suggested, "interactive": a.interactive,
            "notice_installed": a.installed, "notice_packages": [_ref(r) for r in a.packages]}


def _planned_row(p: PlannedChange) -> Row:
    return {"kind": PLANNED, "package": p.name, "arch": p.arch,
            "installed_version": p.old_version, "version": p.new_version,
            "planned_origins": list(p.origins)}


def _elements(facts: NodeFacts) -> Iterable[tuple[object, Callable[[Any], Row]]]:
    for p in facts.installed:
        yield p, _installed_row
    for c in facts.candidates:
        yield c, _candidates_row
    for u in facts.updates:
        yield u, _update_row
    for a in facts.advisories:
        yield a, _notice_row
    for change in facts.planned:
        yield change, _planned_row


_ELEMENT_COLUMNS: Final = tuple(n for n in PACKAGE_FACTS_SCHEMA.names
                                if n not in ("node_id", "seq", "run_id"))
ELEMENT_COLUMNS: Final = _ELEMENT_COLUMNS
"""The columns that make up one element (what a row holds besides node, position and run)."""
_ELEMENT_SCHEMA: Final = pa.schema([PACKAGE_FACTS_SCHEMA.field(n) for n in _ELEMENT_COLUMNS])


def package_facts_table(run_id: str, results: Sequence[NodeResult]) -> pa.Table:
    """One row per fact element of each scanned node of ``results`` (nodes without facts, the
    FAILED ones, have none), nodes in order, each node's elements in scan order."""
    where: dict[int, int] = {}
    distinct: list[Row] = []
    index: list[int] = []
    node_ids: list[str] = []
    seq: list[int] = []
    for result in results:
        if result.facts is None:
            continue
        before = len(index)
        for element, to_row in _elements(result.facts):
            i = where.get(id(element))
            if i is None:
                i = where[id(element)] = len(distinct)
                distinct.append(to_row(element))
            index.append(i)
        node_ids.extend([result.node_id] * (len(index) - before))
        seq.extend(range(len(index) - before))
    elements = pa.Table.from_pylist(distinct, schema=_ELEMENT_SCHEMA) if distinct \
        else _ELEMENT_SCHEMA.empty_table()
    rows = elements.take(pa.array(index, type=pa.int32()))
    columns = {name: rows.column(name) for name in _ELEMENT_COLUMNS}
    columns["node_id"] = pa.array(node_ids, _STR)
    columns["seq"] = pa.array(seq, pa.int32())
    columns["run_id"] = pa.array([run_id] * len(index), _STR)
    return pa.table({n: columns[n] for n in PACKAGE_FACTS_SCHEMA.names},
                    schema=PACKAGE_FACTS_SCHEMA)


# --- rows -> facts ----------------------------------------------------------------------------


def parse_evr(name: str, arch: str, evr: str) -> RpmRef:
    """The :class:`RpmRef` of ``name``/``arch`` at ``E:V-R`` (the form :attr:`RpmRef.evr`
    prints: no epoch when it is 0; rpm allows no ``-`` inside a version or a release)."""
    epoch, _, vr = evr.rpartition(":")
    version, _, release = vr.rpartition("-")
    return RpmRef(name, int(epoch or 0), version, release, arch)


def element_from_row(row: Mapping[str, Any]) -> object:
    """The fact object one ``package_facts`` row holds (the inverse of the writer's rows)."""
    kind = row["kind"]
    if kind == INSTALLED:
        return InstalledPackage(
            name=row["package"], arch=row["arch"] or "", version=row["version"] or "",
            source_name=row["source_package"] or "", source_version=row["source_version"] or "",
            status=row["status"] or "", held=bool(row["held"]), priority=row["priority"] or "",
            section=row["section"] or "", install_time=row["install_time"])
    if kind == CANDIDATES:
        return PackageCandidates(
            name=row["package"], installed_version=row["installed_version"],
            candidate_version=row["candidate_version"],
            versions=tuple(PackageVersion(
                version=v["version"], installed=bool(v["installed"]),
                priority=v["priority"] or "", section=v["section"] or "",
                origins=tuple(PackageOrigin(
                    origin=o["origin"] or "", label=o["label"] or "", archive=o["archive"] or "",
                    codename=o["codename"] or "", component=o["component"] or "",
                    site=o["site"] or "", security=bool(o["security"]))
                    for o in v["origins"] or ()))
                for v in row["versions"] or ()))
    if kind == UPDATE:
        return AvailableUpdate(
            package=parse_evr(row["package"], row["arch"] or "", row["version"] or ""),
            repository=row["repository"] or "", installed_evr=row["installed_version"] or "",
            build_time=row["build_time"])
    if kind == NOTICE:
        return Advisory(
            id=row["notice_id"], type=row["notice_type"] or "", severity=row["severity"] or "",
            title=row["title"] or "", issued=row["issued"], updated=row["updated"],
            cves=tuple(row["cve_ids"] or ()), bugzillas=tuple(row["bugzilla_ids"] or ()),
            packages=tuple(RpmRef(r["name"], r["epoch"], r["version"], r["release"], r["arch"])
                           for r in row["notice_packages"] or ()),
            reboot_suggested=bool(row["reboot_suggested"]),
            interactive=bool(row["interactive"]), installed=bool(row["notice_installed"]))
    if kind == PLANNED:
        return PlannedChange(name=row["package"], arch=row["arch"] or "",
                             old_version=row["installed_version"], new_version=row["version"],
                             origins=tuple(row["planned_origins"] or ()))
    raise ValueError(f"package_facts row of unknown kind {kind!r}")


def split_elements(elements: Iterable[object]) -> dict[str, tuple[Any, ...]]:
    """A node's elements (in scan order) grouped into the NodeFacts fields they came from."""
    out: dict[str, list[object]] = {"installed": [], "candidates": [], "updates": [],
                                    "advisories": [], "planned": []}
    for e in elements:
        if isinstance(e, InstalledPackage):
            out["installed"].append(e)
        elif isinstance(e, PackageCandidates):
            out["candidates"].append(e)
        elif isinstance(e, AvailableUpdate):
            out["updates"].append(e)
        elif isinstance(e, Advisory):
            out["advisories"].append(e)
        else:
            out["planned"].append(e)
    return {k: tuple(v) for k, v in out.items()}
