"""AWS-format CSV patch compliance reports and their QuickSight manifests.

Columns are exactly AWS's (spec section 4.4), in AWS's order. One folder per report::

    OUT/all-nodes.csv                 all nodes: the 17 summary columns, one row per node
    OUT/nodes/<node>-summary.csv      single-node report, summary part (same 17 columns, one row)
    OUT/nodes/<node>-patches.csv      single-node report, detail part (17 detail columns)
    OUT/manifest-all-nodes.json       QuickSight manifest for all-nodes.csv
    OUT/manifest-patches.json         QuickSight manifest for every <node>-patches.csv

QuickSight imports a manifest from S3 only, and only ``s3://`` URIs in it (``URIs`` or
``URIPrefixes`` under ``fileLocations``). So the manifests above are written only for a folder
that will be published (``uri_prefix``: they name the objects the upload creates). A folder kept
local gets ``manifest-all-nodes-local.json`` / ``manifest-patches-local.json`` instead: the same
shape with ``file://`` URIs, named and marked (``patchfleet_note``) as a local listing for
upload only, never to import; publish the folder (``patchfleet report --upload``) for
importable ones. Writing one kind removes the other, so a folder never holds a stale manifest.

AWS describes a single-node report as a summary part and a detail part with different columns.
They are written as two files because a CSV with two header rows is not a table any BI tool can
import, and a QuickSight manifest may only list files that share one set of columns; so the two
manifests each cover files of one shape.

Field mapping (patchfleet is agentless, so some AWS fields have no value):

- Instance ID = node id; Instance name = the given name (e.g. a ``Name`` tag), else the node id;
  Instance IP = the address patchfleet connects to (a host name when the inventory gives one).
- SSM Agent version and Logs URL are empty: there is no agent and no per-node log URL.
- Compliance status is COMPLIANT, NON_COMPLIANT or FAILED. FAILED (node not scanned) has no AWS
  equivalent: AWS reports only successful operations, patchfleet shows the failure instead of an
  older result.
- ``Noncompliant <Level> severity patch count``: non-compliant patches (pending reboot, rejected
  but installed, missing, failed) by compliance level; a patch without a level is Unspecified.
- Patch name = ``name.arch:[epoch:]version-release`` and KB ID/Patch ID = ``name.arch``, the
  cells AWS's agent fills on Linux; the version is the one the patch wants (MISSING, FAILED) or
  the one installed (other states). Advisory ids stay in the store (``patch_states``).
- INSTALLED_OTHER rows leave Patch severity and Patch classification empty, as AWS does
  (spec §4.1); the store keeps them.
- Last report time = end of the node's operation, ISO 8601 UTC (``2024-05-01T10:00:05Z``).
- The detail part leaves out NOT_APPLICABLE patches, as AWS does on Linux (it reports a count).

Files are UTF-8 without BOM, RFC 4180 quoting by the csv module, each written to a temporary
file and renamed into place. Reports can be regenerated at any time from the store. QuickSight
reads at most 1,000 files per manifest, so for bigger fleets import ``all-nodes.csv`` and ask the
store (DuckDB) for patch-level detail, or limit ``detail_nodes``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from patchfleet.atomicio import write_atomic
from patchfleet.domain.records import (
    LEVEL_ORDER,
    NON_COMPLIANT_STATES,
    ComplianceLevel,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult
from patchfleet.errors import InputError, StoreError
from patchfleet.report.csv_safety import safe_rows

if TYPE_CHECKING:
    from patchfleet.store.location import StoreRoot
    from patchfleet.store.query import ComplianceStore

SUMMARY_COLUMNS: Final = (
    "Index",
    "Instance ID",
    "Instance name",
    "Instance IP",
    "Platform name",
    "Platform version",
    "SSM Agent version",
    "Patch baseline",
    "Patch group",
    "Compliance status",
    "Compliance severity",
    "Noncompliant Critical severity patch count",
    "Noncompliant High severity patch count",
    "Noncompliant Medium severity patch count",
    "Noncompliant Low severity patch count",
    "Noncompliant Informational severity patch count",
    "Noncompliant Unspecified severity patch count",
)

DETAIL_COLUMNS: Final = (
    "Index",
    "Instance ID",
    "Instance name",
    "Patch name",
    "KB ID/Patch ID",
    "Patch state",
    "Last report time",
    "Compliance level",
    "Patch severity",
    "Patch classification",
    "CVE ID",
    "Patch baseline",
    "Logs URL",
    "Instance IP",
    "Platform name",
    "Platform version",
    "SSM Agent version",
)

ALL_NODES_FILE: Final = "all-nodes.csv"
NODES_DIR: Final = "nodes"
SUMMARY_MANIFEST_FILE: Final = "manifest-all-nodes.json"
PATCHES_MANIFEST_FILE: Final = "manifest-patches.json"
SUMMARY_MANIFEST_LOCAL: Final = "manifest-all-nodes-local.json"
PATCHES_MANIFEST_LOCAL: Final = "manifest-patches-local.json"
LOCAL_NOTE_KEY: Final = "patchfleet_note"
LOCAL_NOTE: Final = (
    "For upload only, not for QuickSight: QuickSight imports manifests from S3 that name s3:// "
    "objects, and these are local file:// URIs. Publish the folder (patchfleet report --upload "
    "s3://BUCKET/PREFIX, or report_uri on a run) and import the uploaded manifest-*.json."
)

_NONCOMPLIANT = frozenset(str(s) for s in NON_COMPLIANT_STATES)
_LEVELS: Final = tuple(str(level) for level in LEVEL_ORDER)
_UNSPECIFIED = str(ComplianceLevel.UNSPECIFIED)
_OTHER = str(PatchState.INSTALLED_OTHER)
_VERSION_OF_AVAILABLE = frozenset({str(PatchState.MISSING), str(PatchState.FAILED)})
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class ReportPatch:
    """One row of a single-node detail report."""

    package: str
    arch: str
    state: str
    installed_version: str | None = None
    available_version: str | None = None
    advisory_ids: tuple[str, ...] = ()
    cve_ids: tuple[str, ...] = ()
    compliance_level: str | None = None
    severity: str | None = None
    classification: str | None = None


@dataclass(frozen=True, slots=True)
class ReportNode:
    """What the reports say about one node (from a NodeResult or a node_summaries row)."""

    node_id: str
    host: str
    status: str
    last_report_time: datetime
    name: str | None = None
    platform_name: str | None = None
    platform_version: str | None = None
    baseline_id: str | None = None
    patch_group: str | None = None
    overall_severity: str | None = None
    noncompliant_by_level: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files one report wrote. Iterating yields every path."""

    folder: Path
    all_nodes: Path
    summary_manifest: Path
    node_summaries: dict[str, Path] = field(default_factory=dict)
    node_patches: dict[str, Path] = field(default_factory=dict)
    patches_manifest: Path | None = None

    def __iter__(self) -> Iterator[Path]:
        yield self.all_nodes
        yield self.summary_manifest
        if self.patches_manifest is not None:
            yield self.patches_manifest
        for node_id, path in self.node_summaries.items():
            yield path
            if node_id in self.node_patches:
                yield self.node_patches[node_id]


# --- rows -------------------------------------------------------------------------------------


def count_noncompliant_by_level(patches: Iterable[ReportPatch]) -> dict[str, int]:
    """Non-compliant patches per compliance level (no level counts as UNSPECIFIED)."""
    counts = dict.fromkeys(_LEVELS, 0)
    for patch in patches:
        if patch.state in _NONCOMPLIANT:
            counts[patch.compliance_level or _UNSPECIFIED] += 1
    return counts


def iso_utc(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def patch_id(patch: ReportPatch) -> str:
    """AWS's "KB ID/Patch ID" on Linux: ``name.arch``."""
    return f"{patch.package}.{patch.arch}" if patch.arch else patch.package


def patch_title(patch: ReportPatch) -> str:
    """AWS's patch title ("Patch name") on Linux: ``name.arch:[epoch:]version-release``, at the
    version the patch wants (MISSING, FAILED) or has (other states)."""
    if patch.state in _VERSION_OF_AVAILABLE:
        version = patch.available_version or patch.installed_version
    else:
        version = patch.installed_version or patch.available_version
    return patch_id(patch) + (f":{version}" if version else "")


def summary_row(index: int, node: ReportNode) -> list[str | int]:
    return [
        index,
        node.node_id,
        node.name or node.node_id,
        node.host,
        node.platform_name or "",
        node.platform_version or "",
        "",  # SSM Agent version: agentless
        node.baseline_id or "",
        node.patch_group or "",
        node.status,
        node.overall_severity or "",
        *(node.noncompliant_by_level.get(level, 0) for level in _LEVELS),
    ]


def detail_rows(node: ReportNode, patches: Iterable[ReportPatch]) -> list[list[str | int]]:
    """The detail part: non-compliant patches first, then by name; NOT_APPLICABLE left out."""
    shown = [p for p in patches if p.state != PatchState.NOT_APPLICABLE]
    shown.sort(key=lambda p: (p.state not in _NONCOMPLIANT, p.package, p.arch))
    reported = iso_utc(node.last_report_time)
    return [
        [
            index,
            node.node_id,
            node.name or node.node_id,
            patch_title(patch),
            patch_id(patch),
            patch.state,
            reported,
            patch.compliance_level or _UNSPECIFIED,
            "" if patch.state == _OTHER else patch.severity or "",
            "" if patch.state == _OTHER else patch.classification or "",
            ",".join(patch.cve_ids),
            node.baseline_id or "",
            "",  # Logs URL: no per-node log location
            node.host,
            node.platform_name or "",
            node.platform_version or "",
            "",  # SSM Agent version: agentless
        ]
        for index, patch in enumerate(shown, start=1)
    ]


def quicksight_manifest(uris: Sequence[str]) -> dict[str, Any]:
    """A QuickSight S3 manifest for CSV files written by this module (double-quote qualifier)."""
    return {
        "fileLocations": [{"URIs": list(uris)}],
        "globalUploadSettings": {
            "format": "CSV",
            "delimiter": ",",
            "textqualifier": '"',
            "containsHeader": "true",
        },
    }


def local_manifest(uris: Sequence[str]) -> dict[str, Any]:
    """The manifest of a folder kept local: QuickSight's shape (so it lists the files the same
    way), ``file://`` URIs, and a note first saying it is for upload only."""
    return {LOCAL_NOTE_KEY: LOCAL_NOTE, **quicksight_manifest(uris)}


def manifest_names(uri_prefix: str | None) -> tuple[str, str]:
    """(all-nodes manifest, patches manifest) file names: importable ones for a folder that is
    published to ``uri_prefix``, ``-local`` ones otherwise."""
    if uri_prefix is None:
        return SUMMARY_MANIFEST_LOCAL, PATCHES_MANIFEST_LOCAL
    return SUMMARY_MANIFEST_FILE, PATCHES_MANIFEST_FILE


def _manifest_text(uris: Sequence[str], uri_prefix: str | None) -> str:
    doc = quicksight_manifest(uris) if uri_prefix is not None else local_manifest(uris)
    return json.dumps(doc, indent=2) + "\n"


# --- files ------------------------------------------------------------------------------------


def node_file_stem(node_id: str) -> str:
    """A file name for ``node_id``: itself when safe, else a cleaned form plus a short hash."""
    if _SAFE_NAME.fullmatch(node_id) and len(node_id) <= 100:
        return node_id
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", node_id).lstrip("._")[:80] or "node"
    return f"{cleaned}-{hashlib.sha256(node_id.encode()).hexdigest()[:8]}"


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str | int]]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # RFC 4180: CRLF line ends, quotes only where needed
    writer.writerow(header)
    writer.writerows(safe_rows(rows))  # no cell a spreadsheet would run as a formula
    return buf.getvalue()


def write_report_file(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, no BOM) to ``path`` atomically (:mod:`patchfleet.atomicio`)."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise StoreError(
            f"could not write report file {path} ({exc.strerror or exc}): choose another report "
            "folder or fix its permissions"
        ) from exc


def _uri(path: Path, folder: Path, uri_prefix: str | None) -> str:
    if uri_prefix is None:
        return path.resolve().as_uri()
    prefix = uri_prefix if uri_prefix.endswith("/") else uri_prefix + "/"
    return prefix + path.relative_to(folder).as_posix()


def write_reports(
    out_dir: str | os.PathLike[str],
    nodes: Sequence[ReportNode],
    patches: Mapping[str, Sequence[ReportPatch]],
    *,
    uri_prefix: str | None = None,
) -> ReportFiles:
    """Write the all-nodes report, a single-node report for each node in ``patches``, and the
    manifests.

    ``uri_prefix`` is where the folder will be published (``s3://bucket/prefix/``); the manifests
    then name the files under it. Without it the manifests are the ``-local`` ones (``file://``
    URIs, marked for upload only), and the importable ones of an earlier write of the folder are
    removed (and the other way round). Per-node files that
    the folder's previous report wrote (its patches manifest lists them) and this one doesn't are
    removed, so a regenerated folder never mixes runs; nothing else in the folder is touched.
    """
    folder = Path(out_dir)
    nodes_dir = folder / NODES_DIR
    previous = _previous_node_files(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if patches:
            nodes_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"can't create report folder {folder} ({exc.strerror or exc}): choose another report "
            "folder or fix its permissions"
        ) from exc

    all_nodes = folder / ALL_NODES_FILE
    rows = [summary_row(i, node) for i, node in enumerate(nodes, start=1)]
    write_report_file(all_nodes, _csv_text(SUMMARY_COLUMNS, rows))
    summary_name, patches_name = manifest_names(uri_prefix)
    other_kind = set(manifest_names(None if uri_prefix is not None else "s3://"))
    summary_manifest = folder / summary_name
    write_report_file(summary_manifest,
                      _manifest_text([_uri(all_nodes, folder, uri_prefix)], uri_prefix))

    by_id = {node.node_id: node for node in nodes}
    node_summaries: dict[str, Path] = {}
    node_patches: dict[str, Path] = {}
    for node_id, node_rows in patches.items():
        node = by_id.get(node_id)
        if node is None:
            raise ValueError(f"patches given for node {node_id!r}, which is not in the report")
        stem = node_file_stem(node_id)
        node_summaries[node_id] = nodes_dir / f"{stem}-summary.csv"
        node_patches[node_id] = nodes_dir / f"{stem}-patches.csv"
        write_report_file(node_summaries[node_id],
                          _csv_text(SUMMARY_COLUMNS, [summary_row(1, node)]))
        write_report_file(node_patches[node_id],
                          _csv_text(DETAIL_COLUMNS, detail_rows(node, node_rows)))

    patches_manifest: Path | None = None
    if node_patches:
        patches_manifest = folder / patches_name
        uris = [_uri(path, folder, uri_prefix) for path in node_patches.values()]
        write_report_file(patches_manifest, _manifest_text(uris, uri_prefix))
    else:
        other_kind.add(patches_name)
    for name in other_kind:
        with contextlib.suppress(OSError):
            (folder / name).unlink(missing_ok=True)
    _remove_stale(previous - {*node_summaries.values(), *node_patches.values()})
    return ReportFiles(
        folder=folder,
        all_nodes=all_nodes,
        summary_manifest=summary_manifest,
        node_summaries=node_summaries,
        node_patches=node_patches,
        patches_manifest=patches_manifest,
    )


def _previous_node_files(folder: Path) -> set[Path]:
    """The per-node files the folder's last report wrote: its patches manifest's files and
    their summary companions (an unreadable manifest: none)."""
    uris: list[object] = []
    for name in (PATCHES_MANIFEST_FILE, PATCHES_MANIFEST_LOCAL):
        try:
            manifest = json.loads((folder / name).read_text(encoding="utf-8"))
            uris.extend(u for loc in manifest["fileLocations"] for u in loc["URIs"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    found: set[Path] = set()
    for uri in uris:
        name = str(uri).rsplit("/", 1)[-1]
        if name.endswith("-patches.csv") and "/" not in name and not name.startswith("."):
            found.add(folder / NODES_DIR / name)
            found.add(folder / NODES_DIR / (name[: -len("-patches.csv")] + "-summary.csv"))
    return found


def _remove_stale(paths: set[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


# --- sources ----------------------------------------------------------------------------------


def _patch_from_record(rec: PatchRecord) -> ReportPatch:
    return ReportPatch(
        package=rec.package,
        arch=rec.arch,
        state=str(rec.state),
        installed_version=rec.installed_version,
        available_version=rec.available_version,
        advisory_ids=tuple(rec.advisory_ids),
        cve_ids=tuple(rec.cve_ids),
        compliance_level=None if rec.compliance_level is None else str(rec.compliance_level),
        severity=rec.severity,
        classification=rec.classification,
    )


def _detail_set(all_ids: Sequence[str], detail_nodes: Iterable[str] | None) -> list[str]:
    if detail_nodes is None:
        return list(all_ids)
    wanted = list(dict.fromkeys(detail_nodes))
    unknown = sorted(set(wanted) - set(all_ids))
    if unknown:
        raise InputError(f"no report data for node(s) {', '.join(unknown)}: check the node ids")
    return wanted


def write_reports_from_results(
    out_dir: str | os.PathLike[str],
    results: Sequence[NodeResult],
    *,
    names: Mapping[str, str] | None = None,
    detail_nodes: Iterable[str] | None = None,
    uri_prefix: str | None = None,
) -> ReportFiles:
    """Reports of one run, straight from its NodeResults (no store needed).

    ``names`` maps node ids to an Instance name; ``detail_nodes`` picks the nodes that get a
    single-node report (default: all of them).
    """
    names = names or {}
    nodes: list[ReportNode] = []
    patches_by_node: dict[str, list[ReportPatch]] = {}
    for result in results:
        patches = [_patch_from_record(rec) for rec in result.records]
        patches_by_node[result.node_id] = patches
        summary = result.summary
        nodes.append(
            ReportNode(
                node_id=result.node_id,
                host=result.host,
                status=str(summary.status),
                last_report_time=result.operation_end_time,
                name=names.get(result.node_id),
                platform_name=result.platform_name,
                platform_version=result.platform_version,
                baseline_id=result.baseline_id,
                patch_group=result.patch_group,
                overall_severity=(
                    None if summary.overall_severity is None else str(summary.overall_severity)
                ),
                noncompliant_by_level=count_noncompliant_by_level(patches),
            )
        )
    wanted = _detail_set([n.node_id for n in nodes], detail_nodes)
    return write_reports(
        out_dir, nodes, {n: patches_by_node[n] for n in wanted}, uri_prefix=uri_prefix
    )


_NODES_SQL: Final = """
SELECT n.node_id, n.host, n.status, n.operation_end_time, n.platform_name, n.platform_version,
       n.baseline_id, n.patch_group, n.overall_severity,
       s.noncompliant_critical_count, s.noncompliant_high_count, s.noncompliant_medium_count,
       s.noncompliant_low_count, s.noncompliant_informational_count,
       s.noncompliant_unspecified_count
FROM {nodes} AS n
JOIN noncompliant_severity_counts AS s ON s.node_id = n.node_id AND s.run_id = n.run_id
{where}
ORDER BY n.node_id
"""

_PATCHES_SQL: Final = """
SELECT node_id, package, arch, state, installed_version, available_version, advisory_ids,
       cve_ids, compliance_level, severity, classification
FROM {patches}
WHERE list_contains($nodes, node_id) {and_run}
"""


def write_reports_from_store(
    store: ComplianceStore | StoreRoot,
    out_dir: str | os.PathLike[str],
    *,
    run_id: str | None = None,
    names: Mapping[str, str] | None = None,
    detail_nodes: Iterable[str] | None = None,
    uri_prefix: str | None = None,
) -> ReportFiles:
    """Regenerate the reports from the compliance store.

    ``store`` is a :class:`~patchfleet.store.query.ComplianceStore` or a store (folder,
    ``s3://`` URI or :class:`~patchfleet.store.location.StoreLocation`). Without
    ``run_id`` the report shows each node's latest run (``latest_node_summaries``); with it, the
    nodes of that run. Raises StoreError when there is nothing to report.
    """
    from patchfleet.store.query import ComplianceStore

    if isinstance(store, ComplianceStore):
        return _from_store(store, out_dir, run_id, names or {}, detail_nodes, uri_prefix)
    with ComplianceStore(store) as opened:
        return _from_store(opened, out_dir, run_id, names or {}, detail_nodes, uri_prefix)


def _from_store(
    store: ComplianceStore,
    out_dir: str | os.PathLike[str],
    run_id: str | None,
    names: Mapping[str, str],
    detail_nodes: Iterable[str] | None,
    uri_prefix: str | None,
) -> ReportFiles:
    if run_id is None:
        nodes_sql = _NODES_SQL.format(nodes="latest_node_summaries", where="")
        params: dict[str, object] = {}
    else:
        nodes_sql = _NODES_SQL.format(nodes="node_summaries", where="WHERE n.run_id = $run")
        params = {"run": run_id}
    _, node_rows = store.query(nodes_sql, params)
    if not node_rows:
        what = f"run {run_id!r}" if run_id else "any run"
        raise StoreError(
            f"the compliance store {store.root} has no node results for {what}: run "
            "`patchfleet scan` first, or check the run id (SELECT * FROM compliance_history)"
        )
    nodes: list[ReportNode] = []
    for row in node_rows:
        (node_id, host, status, end, pname, pversion, baseline, group, severity, *counts) = row
        nodes.append(
            ReportNode(
                node_id=node_id,
                host=host,
                status=status,
                last_report_time=end,
                name=names.get(node_id),
                platform_name=pname,
                platform_version=pversion,
                baseline_id=baseline,
                patch_group=group,
                overall_severity=severity,
                noncompliant_by_level=dict(zip(_LEVELS, counts, strict=True)),
            )
        )
    wanted = _detail_set([n.node_id for n in nodes], detail_nodes)
    patches: dict[str, list[ReportPatch]] = {node_id: [] for node_id in wanted}
    if wanted:
        if run_id is None:
            sql = _PATCHES_SQL.format(patches="latest_patch_states", and_run="")
            pparams: dict[str, object] = {"nodes": wanted}
        else:
            sql = _PATCHES_SQL.format(patches="patch_states", and_run="AND run_id = $run")
            pparams = {"nodes": wanted, "run": run_id}
        _, patch_rows = store.query(sql, pparams)
        for node_id, package, arch, state, inst, avail, advs, cves, level, sev, cls in patch_rows:
            patches[node_id].append(
                ReportPatch(
                    package=package,
                    arch=arch,
                    state=state,
                    installed_version=inst,
                    available_version=avail,
                    advisory_ids=tuple(advs or ()),
                    cve_ids=tuple(cves or ()),
                    compliance_level=level,
                    severity=sev,
                    classification=cls,
                )
            )
    return write_reports(out_dir, nodes, patches, uri_prefix=uri_prefix)
