"""The compliance store on S3: a run's Parquet files, committed by a marker written last.

Same layout, file names and schema metadata as a local store, under the store's prefix::

    PREFIX/patch_states/date=YYYY-MM-DD/run_id=<id>/part-0.parquet
    PREFIX/node_summaries/date=YYYY-MM-DD/run_id=<id>/part-0.parquet
    PREFIX/_commits/run_id=<id>.json          the commit marker, written last
    PREFIX/snapshots/<snapshot id>.json

An object store has no rename, so the commit is the marker: the data files go up first (each
PUT is all-or-nothing), then ``_commits/run_id=<id>.json`` names them with their rows and sizes,
the schema version and when it was written. Readers list ``_commits/`` and read only the files
the markers name: a run whose upload stopped half-way has no marker and is invisible. A run id
that already has a marker is refused (history is appended, never overwritten); the marker is
written with ``If-None-Match: *`` where the endpoint supports it, so of two writers racing on
one run id only one commits. Keys in a marker are relative to the store's prefix, so a store
copied to another bucket or prefix still reads.

Reading builds one ``pyarrow.dataset`` per table from the committed files (no listing of the
table folders, no request per file until a query reads it). Its schema is the current one, so
files that predate a column read it as null, as DuckDB's ``union_by_name`` does on a local
store; files of a newer schema version add their extra columns.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, BinaryIO, Final

import pyarrow as pa
import pyarrow.dataset as ds

from patchfleet.domain.results import RunContext
from patchfleet.errors import StoreError
from patchfleet.store.audit import AUDIT, AUDIT_SCHEMA
from patchfleet.store.location import StoreLocation
from patchfleet.store.s3_access import StoreBucket
from patchfleet.store.schema import SCHEMA_VERSION, TABLES, file_schema, run_date

PART_NAME: Final = "part-0.parquet"
"""As the local writer's (:mod:`patchfleet.store.writer`): one file layout for both stores."""
COMMITS_DIR: Final = "_commits"
PARQUET_TYPE: Final = "application/vnd.apache.parquet"
_MARKER_KEY = re.compile(r"run_id=([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.json")
_MISSING: Final = ("404", "NoSuchKey", "NotFound")
_CONDITION_CODES: Final = ("PreconditionFailed", "412", "ConditionalRequestConflict",
                           "NotImplemented", "501")
_PARTITION_FIELDS: Final = (pa.field("date", pa.date32()), pa.field("run_id", pa.string()))
_READERS: Final = 16


def partition_path(table: str, run_day: date, run_id: str) -> str:
    return f"{table}/date={run_day.isoformat()}/run_id={run_id}"


def marker_path(run_id: str) -> str:
    return f"{COMMITS_DIR}/run_id={run_id}.json"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One committed data file: its key (relative to the store's prefix), rows and size."""

    key: str
    rows: int
    size: int


@dataclass(frozen=True, slots=True)
class CommitMarker:
    """What ``_commits/run_id=<id>.json`` says about one committed run."""

    run_id: str
    date: date
    schema_version: int
    written_at: datetime
    tables: dict[str, tuple[StoredFile, ...]]

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(f.rows for f in files) for t, files in self.tables.items()}

    def to_json(self) -> bytes:
        doc = {
            "run_id": self.run_id,
            "date": self.date.isoformat(),
            "schema_version": self.schema_version,
            "written_at": self.written_at.isoformat().replace("+00:00", "Z"),
            "tables": {
                table: {"rows": sum(f.rows for f in files),
                        "files": [{"key": f.key, "rows": f.rows, "bytes": f.size}
                                  for f in files]}
                for table, files in self.tables.items()
            },
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> CommitMarker:
        """Parse a marker; StoreError naming ``where`` if it is not one."""
        try:
            doc = json.loads(data)
            return cls(
                run_id=str(doc["run_id"]),
                date=date.fromisoformat(doc["date"]),
                schema_version=int(doc["schema_version"]),
                written_at=datetime.fromisoformat(doc["written_at"]),
                tables={
                    str(table): tuple(StoredFile(str(f["key"]), int(f["rows"]), int(f["bytes"]))
                                      for f in entry["files"])
                    for table, entry in doc["tables"].items()
                },
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"{where} is not a commit marker ({type(exc).__name__}: {exc}); restore it from "
                "a backup, or delete it to hide that run"
            ) from None


# --- writing ----------------------------------------------------------------------------------


def check_writable(location: StoreLocation) -> None:
    """Prove the bucket exists and takes a write under the prefix, or raise StoreError.

    The probe object is removed again when the credentials may delete; an append-only policy
    leaves it (``.write-probe-*.tmp``, outside every table and ``_commits/``)."""
    bucket = StoreBucket(location)
    probe = location.key(f".write-probe-{secrets.token_hex(4)}.tmp")
    bucket.call("write", "put_object", Key=probe, Body=b"")
    with contextlib.suppress(StoreError):
        bucket.call("write", "delete_object", Key=probe)


ParquetWrite = Callable[[BinaryIO, Iterable[pa.Table], str, str], int]
"""``(file, pieces, table, run_id) -> rows``: the writer's own Parquet writer, so both stores
write the same files (:func:`patchfleet.store.writer.write_parquet`)."""


def commit_tables(
    location: StoreLocation, ctx: RunContext, tables: Mapping[str, Iterable[pa.Table]],
    write_parquet: ParquetWrite,
) -> CommitMarker:
    """Upload one run's tables (each as pieces, written in order into one file by
    ``write_parquet``), then commit it with its marker. StoreError if the run is already
    committed or S3 fails; on failure the files this call uploaded are removed again where the
    credentials allow (without a marker they are invisible anyway)."""
    bucket = StoreBucket(location)
    run_day = run_date(ctx)
    _refuse_committed(bucket, ctx.run_id)
    uploaded: list[str] = []
    stored: dict[str, tuple[StoredFile, ...]] = {}
    try:
        for table in (t for t in TABLES if t in tables):
            relative = f"{partition_path(table, run_day, ctx.run_id)}/{PART_NAME}"
            with tempfile.TemporaryFile() as fh:
                rows = write_parquet(fh, tables[table], table, ctx.run_id)
                size = fh.tell()
                fh.seek(0)
                uploaded.append(location.key(relative))
                bucket.call("write", "put_object", Key=location.key(relative), Body=fh,
                            ContentType=PARQUET_TYPE)
            stored[table] = (StoredFile(relative, rows, size),)
        marker = CommitMarker(run_id=ctx.run_id, date=run_day, schema_version=SCHEMA_VERSION,
                              written_at=datetime.now(UTC), tables=stored)
        _put_marker(bucket, marker)
    except BaseException as exc:
        if isinstance(exc, DuplicateRunError):  # those keys are the committed run's: keep them
            raise
        for key in uploaded:
            with contextlib.suppress(StoreError):
                bucket.call("write", "delete_object", Key=key)
        raise
    return marker


def _refuse_committed(bucket: StoreBucket, run_id: str) -> None:
    # A HEAD on a missing bucket is a bare 404 as well: the first upload then says which it is.
    found, _ = bucket.attempt("read", "head_object", _MISSING,
                              Key=bucket.location.key(marker_path(run_id)))
    if found is not None:
        raise _duplicate(bucket.location, run_id)


def _put_marker(bucket: StoreBucket, marker: CommitMarker) -> None:
    args: dict[str, Any] = {"Key": bucket.location.key(marker_path(marker.run_id)),
                            "Body": marker.to_json(), "ContentType": "application/json"}
    _, code = bucket.attempt("write", "put_object", _CONDITION_CODES, IfNoneMatch="*", **args)
    if code in ("NotImplemented", "501"):  # an endpoint without conditional writes
        bucket.call("write", "put_object", **args)
    elif code:
        raise _duplicate(bucket.location, marker.run_id)


class DuplicateRunError(StoreError):
    """The run id already has a commit marker."""


def _duplicate(location: StoreLocation, run_id: str) -> StoreError:
    return DuplicateRunError(
        f"run {run_id!r} is already in the compliance store ({location.uri_of(marker_path(run_id))}"
        "); history is never overwritten: use a new run id"
    )


# --- reading ----------------------------------------------------------------------------------


def committed_runs(bucket: StoreBucket) -> tuple[list[CommitMarker], str | None]:
    """Every commit marker of the store, oldest run id first, and the bucket's region when the
    endpoint told it (AWS does, in ``x-amz-bucket-region``)."""
    location = bucket.location
    folder = location.key(f"{COMMITS_DIR}/")
    keys: dict[str, str] = {}  # key -> the run id it names
    region: str | None = None
    for page in bucket.list_pages("read", folder):
        headers = page.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = region or headers.get("x-amz-bucket-region")
        for entry in page.get("Contents", []):
            if named := _MARKER_KEY.fullmatch(entry["Key"][len(folder):]):
                keys[entry["Key"]] = named.group(1)
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        markers = list(pool.map(lambda key: _read_marker(bucket, key, keys[key]), sorted(keys)))
    return markers, region


def _read_marker(bucket: StoreBucket, key: str, run_id: str) -> CommitMarker:
    body = bucket.call("read", "get_object", Key=key)["Body"].read()
    where = f"s3://{bucket.location.bucket}/{key}"
    marker = CommitMarker.from_json(body, where)
    if marker.run_id != run_id:
        raise StoreError(f"{where} names run {marker.run_id!r}, not the run of its key; restore "
                         "the marker from a backup, or delete it to hide that run")
    return marker


def dataset_schema(table: str) -> pa.Schema:
    """The columns a table's dataset reads: the current file schema, every column nullable (an
    older file may lack one), then the partition columns ``date`` and ``run_id``."""
    fields = [field.with_nullable(True) for field in file_schema(table)]
    return pa.schema([*fields, *_PARTITION_FIELDS])


def table_datasets(location: StoreLocation) -> dict[str, ds.Dataset]:
    """One dataset per table over the committed files, and one over the audit trail's entries;
    a table without files is left out."""
    bucket = StoreBucket(location)
    markers, region = committed_runs(bucket)
    audit = _audit_objects(bucket)
    if not markers and not audit:
        return {}
    filesystem = bucket.arrow_filesystem(region)
    parquet = ds.ParquetFileFormat()
    datasets: dict[str, ds.Dataset] = {}
    for table in TABLES:
        fragments = []
        newer = []
        for marker in markers:
            partition = ((ds.field("date") == pa.scalar(marker.date, pa.date32()))
                         & (ds.field("run_id") == pa.scalar(marker.run_id)))
            for stored in marker.tables.get(table, ()):
                fragment = parquet.make_fragment(
                    f"{location.bucket}/{location.key(stored.key)}", filesystem=filesystem,
                    partition_expression=partition, file_size=stored.size)
                fragments.append(fragment)
                if marker.schema_version > SCHEMA_VERSION:
                    newer.append(fragment)
        if not fragments:
            continue
        schema = dataset_schema(table)
        if newer:  # columns a later patchfleet added; reads those files' footers
            schema = pa.unify_schemas([schema, *(f.physical_schema for f in newer)])
        datasets[table] = ds.FileSystemDataset(fragments, schema, parquet, filesystem)
    if audit:
        fragments = [parquet.make_fragment(
            f"{location.bucket}/{key}", filesystem=filesystem, file_size=size,
            partition_expression=(ds.field("date") == pa.scalar(day, pa.date32()))
            & (ds.field("run_id") == pa.scalar(run_id))) for key, day, run_id, size in audit]
        fields = [f.with_nullable(True) for f in AUDIT_SCHEMA if f.name != "run_id"]
        datasets[AUDIT] = ds.FileSystemDataset(
            fragments, pa.schema([*fields, *_PARTITION_FIELDS]), parquet, filesystem)
    return datasets


_AUDIT_KEY = re.compile(r"date=(\d{4}-\d{2}-\d{2})/run_id=([^/]+)/entry-[^/]+\.parquet")


def _audit_objects(bucket: StoreBucket) -> list[tuple[str, date, str, int]]:
    """``(key, date, run id, size)`` of every audit entry object (they have no commit marker:
    each is written whole by one conditional put)."""
    folder = bucket.location.key(f"{AUDIT}/")
    found: list[tuple[str, date, str, int]] = []
    for page in bucket.list_pages("read", folder):
        for entry in page.get("Contents", []):
            if named := _AUDIT_KEY.fullmatch(entry["Key"][len(folder):]):
                found.append((entry["Key"], date.fromisoformat(named.group(1)),
                              named.group(2), int(entry["Size"])))
    return found


# --- small objects (snapshots) ----------------------------------------------------------------


def read_object(location: StoreLocation, relative: str) -> bytes | None:
    """The object at ``relative`` inside the store, or None if there is none."""
    found, _ = StoreBucket(location).attempt("read", "get_object", _MISSING,
                                             Key=location.key(relative))
    return None if found is None else bytes(found["Body"].read())


def write_object(location: StoreLocation, relative: str, data: bytes) -> str:
    """Put ``data`` (JSON) at ``relative`` inside the store, replacing it; its ``s3://`` URI."""
    StoreBucket(location).call("write", "put_object", Key=location.key(relative), Body=data,
                               ContentType="application/json")
    return location.uri_of(relative)
