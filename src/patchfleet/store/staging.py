"""A run's staging area: its nodes' rows, written batch by batch while the run goes on.

A fleet run never holds every node's records at once, and never hands them from one Prefect task
to the next (Prefect walks every task parameter: passing 1,000 nodes' records to three tasks cost
more than the scan). Each scan batch appends its nodes' rows here as they finish, in the store's
own schema; the store commit, the CSV reports and the artifacts read them back from here::

    ROOT/_staging/run_id=<id>/nodes/part-<label>-<n>.arrow     node_summaries rows (+ extras)
    ROOT/_staging/run_id=<id>/patches/part-<label>-<n>.arrow   patch_states rows
    ROOT/_staging/run_id=<id>/fact_elements/part-<label>-<n>.arrow   the batch's distinct facts
    ROOT/_staging/run_id=<id>/fact_lists/part-<label>-<n>.arrow      each node's list of them
    ROOT/_staging/run_id=<id>/snapshot/part-<label>.json       approved sets a batch froze

Parts are Arrow IPC files (zstd), each written to a ``.tmp`` name and renamed, so a reader never
sees half a part. Node rows carry columns the store does not keep: ``ordinal`` (the node's
place in the run, to report nodes in target order) and one
``noncompliant_<level>`` count per compliance level (what the reports and the summary need, so
they never read the patch rows). :func:`commit_staged` turns a staged run into the store's
Parquet files with :func:`~patchfleet.store.writer.commit_tables` (atomic, same layout and schema
as :func:`~patchfleet.store.writer.write_run`); the staging folder is removed after the run.
``_staging`` is outside every table folder, so the store's views never read it. A store on S3
stages on this machine, under the user's data folder (``~/.local/share/patchfleet/_staging/``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from patchfleet.domain.records import LEVEL_ORDER, ComplianceLevel
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.errors import StoreError
from patchfleet.store.facts_table import FACT_ELEMENTS, FACT_LISTS, fact_tables, shift_ids
from patchfleet.store.location import StoreLocation, StoreRoot
from patchfleet.store.schema import (
    NODE_SUMMARIES,
    NODE_SUMMARIES_SCHEMA,
    PATCH_STATES,
    node_summaries_table,
    patch_states_table,
)
from patchfleet.store.writer import WrittenRun, commit_tables

STAGING_DIR: Final = "_staging"
_NODES: Final = "nodes"
_PATCHES: Final = "patches"
_ELEMENTS: Final = "fact_elements"
_LISTS: Final = "fact_lists"
_SNAPSHOT: Final = "snapshot"
_IPC = ipc.IpcWriteOptions(compression="zstd")

LEVEL_COLUMNS: Final = tuple(f"noncompliant_{level.value.lower()}" for level in LEVEL_ORDER)
"""Per node, its non-compliant patches by compliance level (no level counts as UNSPECIFIED)."""
EXTRA_COLUMNS: Final = ("ordinal", *LEVEL_COLUMNS)
STAGED_NODES_SCHEMA: Final = pa.schema([
    *NODE_SUMMARIES_SCHEMA, pa.field("ordinal", pa.int32()),
    *(pa.field(name, pa.int32()) for name in LEVEL_COLUMNS)])


@dataclass(frozen=True, slots=True)
class StagingArea:
    """The staging folder of one run: a handle small enough to pass to any task."""

    path: Path

    @classmethod
    def of(cls, root: StoreRoot, run_id: str) -> StagingArea:
        """The run's folder under the store, or for a store on S3 under the local work folder
        (:attr:`~patchfleet.store.location.StoreLocation.work_dir`)."""
        return cls(StoreLocation.of(root).work_dir / STAGING_DIR / f"run_id={run_id}")

    def parts(self, kind: str, suffix: str = ".arrow") -> list[Path]:
        folder = self.path / kind
        return sorted(folder.glob(f"part-*{suffix}")) if folder.is_dir() else []

    def snapshot_parts(self) -> list[Path]:
        return self.parts(_SNAPSHOT, ".json")

    def write_snapshot_part(self, label: str, text: str) -> Path:
        return _atomic(self.path / _SNAPSHOT / f"part-{label}.json",
                       lambda fh: fh.write(text.encode()))

    def remove(self) -> None:
        """Delete the run's staging folder (after the run: its rows are in the store), and
        ``_staging`` itself once no other run stages there."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def _atomic(path: Path, write: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"could not stage run rows in {path.parent} ({exc.strerror or exc}): "
                         "choose another --store or free some space") from exc
    return path


def _level_counts(results: Sequence[NodeResult]) -> dict[str, list[int]]:
    columns: dict[str, list[int]] = {name: [] for name in LEVEL_COLUMNS}
    for result in results:
        counts = dict.fromkeys(LEVEL_ORDER, 0)
        for rec in result.records:
            if rec.state.non_compliant:
                counts[rec.compliance_level or ComplianceLevel.UNSPECIFIED] += 1
        for level, name in zip(LEVEL_ORDER, LEVEL_COLUMNS, strict=True):
            columns[name].append(counts[level])
    return columns


def _write_table(path: Path, table: pa.Table) -> None:
    def write(fh: Any) -> None:
        with ipc.new_file(fh, table.schema, options=_IPC) as out:
            out.write_table(table)

    _atomic(path, write)


class StagingWriter:
    """Appends node results to a staging area, one pair of part files per :meth:`write`.

    ``label`` names the writer's parts (one writer per batch: labels must differ).
    """

    def __init__(self, area: StagingArea, ctx: RunContext, label: str) -> None:
        self.area = area
        self.ctx = ctx
        self.label = label
        self._seq = 0

    def write(self, results: Sequence[NodeResult], ordinals: Sequence[int]) -> None:
        """Stage ``results`` (``ordinals``: each node's place in the run)."""
        if not results:
            return
        nodes = node_summaries_table(self.ctx, results)
        nodes = nodes.append_column("ordinal", pa.array(ordinals, pa.int32()))
        for name, values in _level_counts(results).items():
            nodes = nodes.append_column(name, pa.array(values, pa.int32()))
        name = f"part-{self.label}-{self._seq:05d}.arrow"
        self._seq += 1
        _write_table(self.area.path / _PATCHES / name, patch_states_table(self.ctx, results))
        if not self.ctx.what_if:
            elements, lists = fact_tables(self.ctx.run_id, results)
            _write_table(self.area.path / _ELEMENTS / name, elements)
            _write_table(self.area.path / _LISTS / name, lists)
        _write_table(self.area.path / _NODES / name, nodes)


def _read(path: Path) -> pa.Table:
    with ipc.open_file(pa.memory_map(str(path))) as reader:
        return reader.read_all()


def read_node_table(area: StagingArea) -> pa.Table:
    """Every staged node row, in run order (by ``ordinal``), extra columns included."""
    parts = [_read(p) for p in area.parts(_NODES)]
    if not parts:
        return STAGED_NODES_SCHEMA.empty_table()
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, [("ordinal", "ascending")]))


def read_nodes(area: StagingArea) -> list[dict[str, Any]]:
    """Every staged node row as a dict of column -> value, in run order."""
    rows: list[dict[str, Any]] = read_node_table(area).to_pylist()
    return rows


def iter_patch_tables(area: StagingArea) -> Iterator[pa.Table]:
    """The staged patch rows, one part at a time (bounded memory)."""
    for path in area.parts(_PATCHES):
        yield _read(path)


def _fact_parts(area: StagingArea) -> list[tuple[Path, Path, int]]:
    """Each staged part's elements and lists files, and the element id its elements start at
    in the committed run (each part numbers its own from 0)."""
    out: list[tuple[Path, Path, int]] = []
    start = 0
    for elements in area.parts(_ELEMENTS):
        lists = area.path / _LISTS / elements.name
        if not lists.is_file():
            raise StoreError(f"staged facts part {elements} has no {lists.name} beside it in "
                             f"{lists.parent}: the batch that wrote it did not finish")
        out.append((elements, lists, start))
        with ipc.open_file(pa.memory_map(str(elements))) as reader:
            start += sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return out


def iter_fact_tables(area: StagingArea, which: str) -> Iterator[pa.Table]:
    """The staged ``fact_elements`` or ``fact_lists`` rows, one part at a time, with element
    ids numbered across the whole run."""
    for elements, lists, start in _fact_parts(area):
        yield shift_ids(_read(elements if which == FACT_ELEMENTS else lists), start)


def top_missing(area: StagingArea, limit: int = 10) -> list[tuple[str, int, str]]:
    """The packages MISSING on the most nodes: (package, nodes, highest severity seen), most
    nodes first. Reads only the package, node and state columns, one part at a time."""
    nodes: dict[str, set[str]] = {}
    severity: dict[str, str] = {}
    for table in iter_patch_tables(area):
        cols = [c for c in ("package", "node_id", "state", "severity") if c in table.column_names]
        for row in table.select(cols).to_pylist():
            if row["state"] != "MISSING":
                continue
            nodes.setdefault(row["package"], set()).add(row["node_id"])
            sev, pkg = row.get("severity") or "", row["package"]
            if _SEVERITY_RANK.get(sev, 0) > _SEVERITY_RANK.get(severity.get(pkg, ""), 0):
                severity[pkg] = sev
    ranked = sorted(nodes.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    return [(pkg, len(ids), severity.get(pkg, "")) for pkg, ids in ranked]


_SEVERITY_RANK = {"Low": 1, "Moderate": 2, "Medium": 2, "Important": 3, "High": 3,
                  "Critical": 4}


def commit_staged(root: StoreRoot, ctx: RunContext, area: StagingArea) -> WrittenRun:
    """Write the staged run to the store (same files, layout and schema as ``write_run``)."""
    nodes = read_node_table(area).drop_columns(list(EXTRA_COLUMNS))
    tables = {PATCH_STATES: iter_patch_tables(area), NODE_SUMMARIES: iter([nodes])}
    if not ctx.what_if:
        tables[FACT_ELEMENTS] = iter_fact_tables(area, FACT_ELEMENTS)
        tables[FACT_LISTS] = iter_fact_tables(area, FACT_LISTS)
    return commit_tables(root, ctx, tables)
