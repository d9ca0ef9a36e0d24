"""What each node showed, kept beside the verdicts (schema v2): ``fact_elements`` and
``fact_lists``, read through the ``package_facts`` view.

A node's :class:`~patchfleet.domain.facts.NodeFacts` is a list of elements (an installed package,
apt's versions of a package, an rpm update, a notice, a planned change). A fleet is mostly
copies of a few images, so a run stores each distinct element once, in ``fact_elements`` (an
``element_id`` unique within the run, then the element's columns), and each node's elements, in
scan order, as a list of ids in ``fact_lists`` (``node_id, elements``). Stored per node the same
facts took 4.7 times the bytes of ``patch_states``; normalised they take less than it
(benchmarks/bench_facts.py). The ``package_facts`` view (sql/05) joins them back to one row per
node x element, with ``seq`` its place in the node's list; ``kind`` tells the elements apart:

================  =============================================================================
``installed``     an installed package: ``package, arch, version`` (installed), ``source_package,
                  source_version, status, held, priority, section, install_time``
``candidates``    apt: every version ``apt-cache policy`` offered for an installed package:
                  ``package, installed_version, candidate_version``, ``repository`` and
                  ``security`` of the candidate, and ``versions`` (a list of ``{version,
                  installed, priority, section, security, origins: [{origin, label, archive,
                  codename, component, site, security}]}``)
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
``node_summaries``. Together they rebuild the node's facts exactly (store/facts_reader.py),
which is what ``patchfleet evaluate`` (what-if) judges and what the first-seen dates of staged
approval are read from (every version ever offered, not only the one a verdict named). The
analyst's flat form of the offers is the ``package_offers`` view (sql/60).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from patchfleet.domain.clock import opt_utc
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
"""The view analysts read (one row per node x element)."""
FACT_ELEMENTS: Final = "fact_elements"
FACT_LISTS: Final = "fact_lists"

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

_ELEMENT_FIELDS: Final = [
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
]
FACT_ELEMENTS_SCHEMA: Final = pa.schema([
    pa.field("element_id", pa.int32(), nullable=False), *_ELEMENT_FIELDS,
    pa.field("run_id", _STR, nullable=False),
])
FACT_LISTS_SCHEMA: Final = pa.schema([
    pa.field("node_id", _STR, nullable=False),
    pa.field("elements", pa.list_(pa.field("item", pa.int32(), nullable=False)), nullable=False),
    pa.field("run_id", _STR, nullable=False),
])
PACKAGE_FACTS_SCHEMA: Final = pa.schema([
    pa.field("node_id", _STR, nullable=False), pa.field("seq", pa.int32(), nullable=False),
    *_ELEMENT_FIELDS, pa.field("run_id", _STR, nullable=False),
])
"""The columns of the ``package_facts`` view."""

Row = dict[str, Any]


# --- facts -> rows ----------------------------------------------------------------------------


def _installed_row(p: InstalledPackage) -> Row:
    return {"kind": INSTALLED, "package": p.name, "arch": p.arch, "version": p.version,
            "source_package": p.source_name, "source_version": p.source_version,
            "status": p.status, "held": p.held, "priority": p.priority, "section": p.section,
            "install_time": opt_utc(p.install_time)}


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
            "repository": u.repository, "build_time": opt_utc(u.build_time)}


def _notice_row(a: Advisory) -> Row:
    return {"kind": NOTICE, "notice_id": a.id, "notice_type": a.type, "severity": a.severity,
            "title": a.title, "issued": opt_utc(a.issued), "updated": opt_utc(a.updated),
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


ELEMENT_COLUMNS: Final = tuple(f.name for f in _ELEMENT_FIELDS)
"""The columns that make up one element (what an element row holds besides its id and run)."""
_ELEMENT_SCHEMA: Final = pa.schema(_ELEMENT_FIELDS)


def fact_tables(run_id: str, results: Sequence[NodeResult]) -> tuple[pa.Table, pa.Table]:
    """``(fact_elements, fact_lists)`` of the scanned nodes of ``results`` (nodes without
    facts, the FAILED ones, have no list). Element ids count from 0 in this call; each
    distinct element (the same object, or an equal one) is converted once."""
    by_object: dict[int, int] = {}
    by_content: dict[object, int] = {}
    distinct: list[Row] = []
    lists: list[list[int]] = []
    node_ids: list[str] = []
    for result in results:
        if result.facts is None:
            continue
        ids: list[int] = []
        for element, to_row in _elements(result.facts):
            i = by_object.get(id(element))
            if i is None:
                i = by_content.get(element)
                if i is None:
                    i = by_content[element] = len(distinct)
                    distinct.append(to_row(element))
                by_object[id(element)] = i
            ids.append(i)
        lists.append(ids)
        node_ids.append(result.node_id)
    elements = pa.Table.from_pylist(distinct, schema=_ELEMENT_SCHEMA) if distinct \
        else _ELEMENT_SCHEMA.empty_table()
    elements = elements.add_column(0, FACT_ELEMENTS_SCHEMA.field("element_id"),
                                   pa.array(range(len(distinct)), pa.int32()))
    elements = elements.append_column(FACT_ELEMENTS_SCHEMA.field("run_id"),
                                      pa.array([run_id] * len(distinct), _STR))
    node_lists = pa.table({"node_id": node_ids, "elements": lists,
                           "run_id": [run_id] * len(node_ids)}, schema=FACT_LISTS_SCHEMA)
    return elements, node_lists


def shift_ids(table: pa.Table, offset: int) -> pa.Table:
    """``table`` (of ``fact_elements`` or ``fact_lists``) with every element id moved up by
    ``offset``: parts staged apart number their elements from 0, a committed run once."""
    if not offset or not table.num_rows:
        return table
    if "element_id" in table.column_names:
        index = table.column_names.index("element_id")
        shifted = pc.add(table.column(index), pa.scalar(offset, pa.int32()))
        return table.set_column(index, table.schema.field(index), shifted)
    index = table.column_names.index("elements")
    column = table.column(index).combine_chunks()
    moved = pa.ListArray.from_arrays(
        pc.subtract(column.offsets, column.offsets[0]),
        pc.add(column.flatten(), pa.scalar(offset, pa.int32())),
        type=FACT_LISTS_SCHEMA.field("elements").type)
    return table.set_column(index, table.schema.field(index), moved)


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
