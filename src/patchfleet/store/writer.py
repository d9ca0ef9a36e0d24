"""Append one run to the compliance store, atomically, never overwriting history.

Layout (Hive partitions, one file per table per run)::

    ROOT/patch_states/date=YYYY-MM-DD/run_id=<id>/part-0.parquet
    ROOT/package_facts/date=YYYY-MM-DD/run_id=<id>/part-0.parquet    (schema v2; not what-ifs)
    ROOT/node_summaries/date=YYYY-MM-DD/run_id=<id>/part-0.parquet

Each file is first staged as ``.part-0.parquet.<random>.tmp`` in its final folder, fsynced, and
only then renamed, and the folder fsynced (:mod:`patchfleet.atomicio`). The temporary name must
not end in ``.parquet``: DuckDB's ``**/*.parquet`` glob matches dot-files and ``_``-files too
(checked with DuckDB 2.0), so only the suffix keeps a half-written file out of the views. All
files are staged before any is renamed, and ``node_summaries`` is renamed last: the
``latest_*`` views key on ``node_summaries``, so a crash between the two renames leaves patch rows
no view of the latest state will show.

A store on S3 (``s3://bucket/prefix``, a :class:`~patchfleet.store.location.StoreLocation`) has
the same layout and files, committed by a marker object instead of renames: the public functions
hand it to :mod:`patchfleet.store.object_store`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from patchfleet.atomicio import commit, stage
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.errors import StoreError
from patchfleet.store import object_store
from patchfleet.store.location import StoreLocation, s3_location
from patchfleet.store.schema import (
    COMMIT_ORDER,
    NODE_SUMMARIES,
    PATCH_STATES,
    TABLES,
    file_schema,
    run_date,
    run_tables,
)

PART_NAME: Final = "part-0.parquet"
COMPRESSION: Final = "zstd"
ROW_GROUP_ROWS: Final = 256 * 1024
"""Rows per Parquet row group; pieces are gathered up to this before they are written."""
_FIX = "choose another --store or fix its permissions"
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True)
class WrittenRun:
    """Where one run landed (local files, or ``s3://`` URIs for a store on S3), and how many
    rows each table got."""

    run_id: str
    date: date
    paths: dict[str, Path | str]
    rows: dict[str, int]

    @property
    def patch_states_path(self) -> Path | str:
        return self.paths[PATCH_STATES]

    @property
    def node_summaries_path(self) -> Path | str:
        return self.paths[NODE_SUMMARIES]


def partition_dir(root: Path, table: str, run_day: date, run_id: str) -> Path:
    return root / table / f"date={run_day.isoformat()}" / f"run_id={run_id}"


def check_run_id(run_id: str) -> None:
    """A run id must be a safe folder name that DuckDB reads back as a string.

    DuckDB infers Hive partition types from the folder names: ``run_id=20240101`` becomes a
    BIGINT and ``run_id=2024-01-01`` a DATE for anyone reading the store with a plain
    ``read_parquet(..., hive_partitioning=true)``, so ids that cast to a number or a date are
    refused.
    """
    if not _RUN_ID_RE.fullmatch(run_id):
        raise StoreError(
            f"run id {run_id!r} can't name a store partition: use 1-128 characters from "
            "A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT TRY_CAST($id AS BIGINT) IS NULL AND TRY_CAST($id AS DATE) IS NULL"
            " AND TRY_CAST($id AS TIMESTAMP) IS NULL",
            {"id": run_id},
        ).fetchall()
    if not (row and row[0][0]):
        raise StoreError(
            f"run id {run_id!r} looks like a number or a date, which DuckDB would read back as "
            "one from the partition path: add a letter, e.g. 'run-" + run_id + "'"
        )


def check_writable(root: str | os.PathLike[str] | StoreLocation) -> None:
    """Create the store folders and prove a file can be created in each, or raise StoreError.
    (On S3: prove the bucket takes a write under the prefix.)"""
    if (s3 := s3_location(root)) is not None:
        return object_store.check_writable(s3)
    root = StoreLocation.of(root).local
    for folder in (root, *(root / table for table in TABLES)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-probe-{secrets.token_hex(4)}.tmp"
            probe.touch(exist_ok=False)
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StoreError(
                f"compliance store {root} is not writable ({reason}: {exc.filename or folder}): "
                f"{_FIX}"
            ) from exc


def existing_partitions(root: Path, run_id: str) -> list[Path]:
    """Committed files of ``run_id`` already in the store, in any table and on any date."""
    found: list[Path] = []
    for table in TABLES:
        table_dir = root / table
        if table_dir.is_dir():
            found.extend(sorted(table_dir.glob(f"date=*/run_id={run_id}/*.parquet")))
    return found


def write_run(
    root: str | os.PathLike[str] | StoreLocation, ctx: RunContext, results: Sequence[NodeResult]
) -> WrittenRun:
    """Write one run's ``patch_states`` and ``node_summaries`` files under ``root``.

    Raises :class:`StoreError` (and writes nothing) when the root isn't writable, when the run id
    is unusable, or when the run is already stored: history is appended, never overwritten.
    """
    tables = run_tables(ctx, results)
    return commit_tables(root, ctx, {t: [tables[t]] for t in tables})


def commit_tables(
    root: str | os.PathLike[str] | StoreLocation, ctx: RunContext,
    tables: Mapping[str, Iterable[pa.Table]],
) -> WrittenRun:
    """Write one run whose rows come as pieces per table (``run_tables`` shape, read one piece
    at a time: a staged run streams from its parts); as :func:`write_run` otherwise."""
    if (s3 := s3_location(root)) is not None:
        return _commit_s3(s3, ctx, tables)
    root = StoreLocation.of(root).local
    check_run_id(ctx.run_id)
    check_writable(root)
    if existing := existing_partitions(root, ctx.run_id):
        raise StoreError(
            f"run {ctx.run_id!r} is already in the compliance store ({existing[0]}); history is "
            "never overwritten: use a new run id"
        )

    run_day = run_date(ctx)
    rows: dict[str, int] = {}
    # node_summaries last: it is the commit marker the latest_* views key on.
    order = tuple(t for t in COMMIT_ORDER if t in tables)
    finals = {t: partition_dir(root, t, run_day, ctx.run_id) / PART_NAME for t in order}
    created_dirs: list[Path] = []
    temps: dict[str, Path] = {}
    committed: list[Path] = []
    try:
        for table in order:
            if not finals[table].parent.exists():
                created_dirs.append(finals[table].parent)
            finals[table].parent.mkdir(parents=True, exist_ok=True)
            temps[table], rows[table] = _stage(tables[table], table, ctx.run_id,
                                               finals[table])
        for table in order:
            commit(temps[table], finals[table])
            del temps[table]
            committed.append(finals[table])
    except BaseException as exc:
        _cleanup(temps.values(), committed, created_dirs)
        if isinstance(exc, OSError):
            raise StoreError(
                f"could not write run {ctx.run_id!r} to compliance store {root} "
                f"({exc.strerror or exc}: {exc.filename or ''}); nothing was kept: {_FIX}"
            ) from exc
        raise
    return WrittenRun(
        run_id=ctx.run_id,
        date=run_day,
        paths=dict(finals),
        rows=rows,
    )


def _commit_s3(
    location: StoreLocation, ctx: RunContext, tables: Mapping[str, Iterable[pa.Table]]
) -> WrittenRun:
    """Write one run to a store on S3 (:func:`patchfleet.store.object_store.commit_tables`)."""
    check_run_id(ctx.run_id)
    marker = object_store.commit_tables(location, ctx, tables, write_parquet)
    return WrittenRun(
        run_id=ctx.run_id,
        date=marker.date,
        paths={t: location.uri_of(files[0].key) for t, files in marker.tables.items()},
        rows=marker.rows,
    )


def _stage(pieces: Iterable[pa.Table], name: str, run_id: str, final: Path) -> tuple[Path, int]:
    """Write ``pieces`` to one fsynced temporary file beside ``final``; its path and rows."""
    rows = 0

    def write(fh: BinaryIO) -> None:
        nonlocal rows
        rows = write_parquet(fh, pieces, name, run_id)

    return stage(final, write), rows


def write_parquet(fh: BinaryIO, pieces: Iterable[pa.Table], name: str, run_id: str) -> int:
    """Write ``pieces`` to ``fh`` as one Parquet file of table ``name`` (its file schema and
    metadata, row groups of up to ``ROW_GROUP_ROWS``); return its rows. Both stores' files."""
    schema = file_schema(name, run_id)
    rows = 0
    with pq.ParquetWriter(fh, schema, compression=COMPRESSION) as out:
        buffer: list[pa.Table] = []
        for piece in itertools.chain(pieces, [None]):
            if piece is not None:
                buffer.append(piece.select(schema.names).replace_schema_metadata(
                    schema.metadata))
                rows += piece.num_rows
            buffered = sum(t.num_rows for t in buffer)
            if buffer and (piece is None or buffered >= ROW_GROUP_ROWS):
                out.write_table(pa.concat_tables(buffer), row_group_size=ROW_GROUP_ROWS)
                buffer = []
        if not rows:  # one (empty) row group, as for an empty table
            out.write_table(schema.empty_table())
    return rows


def _cleanup(temps: Iterable[Path], committed: list[Path], created_dirs: list[Path]) -> None:
    """Undo a partial write: this call's files and the folders it created, nothing else."""
    for path in [*temps, *committed]:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    # Only the run's own partition folders: an empty date= folder is harmless, and another writer
    # may be creating its partition in it right now.
    for folder in created_dirs:
        with contextlib.suppress(OSError):
            folder.rmdir()
