"""Read the compliance store with DuckDB: the two table views and the analyst views over them.

``ComplianceStore(root)`` opens an in-memory DuckDB connection and defines:

- ``patch_states`` and ``node_summaries``: every stored run, columns in DESIGN.md order, then the
  extension columns, then ``date``. ``run_id`` and ``date`` come from the Hive partition path with
  their types pinned (VARCHAR, DATE) rather than inferred. Each is the union (by name) of a typed
  empty relation and the Parquet files, so a store that is empty, or whose files predate a column,
  still has every column with its type.
- the views in ``sql/*.sql``, applied in file-name order; they only name the two views above, so an
  analyst can run them in any DuckDB session that defines those two.

A local root is handed to DuckDB as a string (``read_parquet`` with Hive partitioning). A store
on S3 (``s3://bucket/prefix``) is read through pyarrow instead, so no DuckDB extension is needed:
:func:`patchfleet.store.object_store.table_datasets` builds one ``pyarrow.dataset`` per table from
the committed runs' files only (a run without its commit marker is invisible), each is registered
in the connection as ``_s3_<table>``, and the two table views select from those the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import duckdb
import pyarrow as pa

from patchfleet.errors import QueryError, StoreError
from patchfleet.store import object_store
from patchfleet.store.integrity import check_store
from patchfleet.store.location import StoreLocation, StoreRoot
from patchfleet.store.query_guard import check_read_only, first_line, lock_down
from patchfleet.store.schema import VIEW_SCHEMAS, VIEW_TABLES, duckdb_type

Params = Sequence[object] | Mapping[str, object] | None

ANALYST_VIEWS: Final = (
    "compliance_by_os",
    "compliance_by_patch_group",
    "compliance_by_tag",
    "compliance_by_baseline",
    "noncompliant_by_severity",
    "top_missing_patches",
    "top_cves",
    "pending_reboots",
    "coverage",
    "changes_since_previous_run",
    "long_noncompliant",
    "daily_node_states",
    "fleet_trend",
    "cve_exposure",
    "time_to_patch",
    "install_outcomes",
)
"""One view per analyst question (sql/70_* to sql/85_*; the README's "Where data lands")."""

_S3_SOURCE: Final = "_s3_"
_HIVE_OPTIONS: Final = (
    "hive_partitioning = true, union_by_name = true, hive_types = {'date': DATE, 'run_id': VARCHAR}"
)


def _sql_files() -> list[tuple[str, str]]:
    folder = resources.files("patchfleet.store") / "sql"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in files]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def store_uri(root: str | os.PathLike[str]) -> str:
    """The root as DuckDB should see it: a URL unchanged, a local path made absolute."""
    text = os.fspath(root)
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


def typed_empty_sql(table: str) -> str:
    """A zero-row SELECT with every column of ``table`` (plus ``date``) and its DuckDB type."""
    columns = [
        f'CAST(NULL AS {duckdb_type(field.type)}) AS "{field.name}"'
        for field in VIEW_SCHEMAS[table]
    ]
    columns.append('CAST(NULL AS DATE) AS "date"')
    return "SELECT " + ", ".join(columns) + " WHERE false"


def source_sql(root: str | os.PathLike[str], table: str,
               files: Sequence[Path] | None = None) -> str:
    """The SELECT behind the ``table`` view: typed empty relation UNION ALL BY NAME the files
    (all of the table's, or exactly ``files``)."""
    if files is None:
        where = _quote(f"{store_uri(root)}/{table}/**/*.parquet")
    else:
        where = "[" + ", ".join(_quote(str(f)) for f in files) + "]"
    empty = typed_empty_sql(table)
    if files is not None and not files:
        return empty
    return f"{empty}\nUNION ALL BY NAME\nSELECT * FROM read_parquet({where}, {_HIVE_OPTIONS})"


_FIRST_SIGHTINGS_SQL: Final = """
WITH runs AS (
    SELECT run_id, min(coalesce(collected_at, operation_end_time)) AS seen_at,
           bool_or(facts_run_id IS NOT NULL) AS has_facts
    FROM node_summaries WHERE what_if IS NOT TRUE GROUP BY run_id
),
apt AS (
    SELECT run_id, package, unnest(versions) AS v FROM fact_elements WHERE kind = 'candidates'
),
notices AS (
    SELECT run_id, unnest(notice_packages) AS p FROM fact_elements WHERE kind = 'notice'
),
offers AS (
    SELECT run_id, package, v.version AS version FROM apt WHERE len(v.origins) > 0
    UNION ALL
    SELECT run_id, package, version FROM fact_elements WHERE kind = 'update'
    UNION ALL
    SELECT run_id, p.name,
           CASE WHEN p.epoch > 0 THEN p.epoch || ':' ELSE '' END || p.version || '-' || p.release
    FROM notices
),
seen AS (
    SELECT o.package, o.version, r.seen_at FROM offers o JOIN runs r USING (run_id)
    UNION ALL
    SELECT p.package, p.available_version, p.scanned_at FROM patch_states p
    WHERE p.available_version IS NOT NULL
      AND p.run_id IN (SELECT run_id FROM runs WHERE NOT has_facts)
)
SELECT '*', package, version, min(seen_at) FROM seen
WHERE version IS NOT NULL GROUP BY package, version
"""


class ComplianceStore:
    """An in-memory DuckDB session over one compliance store (read-only): a local folder, or a
    :class:`~patchfleet.store.location.StoreLocation` / ``s3://`` URI of a store on S3."""

    TABLE_VIEWS: Final = VIEW_TABLES
    VIEWS: Final = (
        *VIEW_TABLES,
        "package_facts",
        "latest_node_summaries",
        "latest_patch_states",
        "noncompliant_severity_counts",
        "noncompliant_nodes",
        "compliance_history",
        "package_offers",
        *ANALYST_VIEWS,
    )

    def __init__(self, root: StoreRoot) -> None:
        location = StoreLocation.of(root)
        self._s3 = location if location.is_s3 else None
        self.root = location.uri if location.is_s3 else store_uri(location.local)
        self._con = duckdb.connect(":memory:")
        self._empty: set[str] = set()
        self.skipped: dict[Path, str] = {}
        """Damaged files left out of the views (path -> why); see store.integrity."""
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._define_sources()
            for name, text in _sql_files():
                try:
                    self._con.execute(text)
                except duckdb.Error as exc:
                    raise StoreError(f"store view file sql/{name} failed: {exc}") from exc
            lock_down(self._con, [] if self._s3 is not None else [self.root])
        except BaseException:
            self._con.close()
            raise

    def _define_sources(self) -> None:
        if self._s3 is not None:
            self._define_s3_sources(self._s3)
            return
        for table in VIEW_TABLES:
            try:
                self._con.execute(
                    f"CREATE OR REPLACE VIEW {table} AS {source_sql(self.root, table)}"
                )
                self._empty.discard(table)
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.IOException) and "No files found" in str(exc):
                    # Nothing written yet: a typed empty view, re-tried before each query.
                    self._con.execute(
                        f"CREATE OR REPLACE VIEW {table} AS {typed_empty_sql(table)}")
                    self._empty.add(table)
                    continue
                self._without_damaged(table, exc)

    def _without_damaged(self, table: str, exc: duckdb.Error) -> None:
        """The ``table`` view over its readable files only, when some are damaged (they are
        named in :attr:`skipped`); StoreError if none is, so the real problem is reported."""
        health = check_store(Path(self.root))
        damaged = {p: why for p, why in health.damaged.items()
                   if p.is_relative_to(Path(self.root) / table)}
        if not damaged:
            raise StoreError(f"can't read {table} in store {self.root}: {exc}") from exc
        self.skipped.update(damaged)
        try:
            self._con.execute(f"CREATE OR REPLACE VIEW {table} AS "
                              f"{source_sql(self.root, table, health.good[table])}")
        except duckdb.Error as again:
            raise StoreError(f"can't read {table} in store {self.root}: {again}") from again
        self._empty.discard(table)

    def _define_s3_sources(self, location: StoreLocation) -> None:
        datasets = object_store.table_datasets(location)
        for table in VIEW_TABLES:
            source = typed_empty_sql(table)
            if table in datasets:
                self._con.register(f"{_S3_SOURCE}{table}", datasets[table])
                source += f"\nUNION ALL BY NAME\nSELECT * FROM {_S3_SOURCE}{table}"
                self._empty.discard(table)
            else:  # nothing committed yet: a typed empty view, re-tried before each query
                self._empty.add(table)
            self._con.execute(f"CREATE OR REPLACE VIEW {table} AS {source}")

    def refresh(self) -> None:
        """Pick up a table whose first files appeared after the store was opened."""
        if self._empty:
            self._define_sources()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views (for notebooks and ad-hoc use)."""
        self.refresh()
        return self._con

    def _relation(self, sql: str, params: Params = None) -> duckdb.DuckDBPyRelation:
        """``sql`` (one SELECT: anything else is refused, see query_guard) as a relation."""
        self.refresh()
        check_read_only(self._con, sql)
        try:
            return self._con.sql(sql, params=params)
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.PermissionException, duckdb.InvalidInputException,
                duckdb.ConversionException) as exc:
            raise QueryError(f"query: {first_line(exc)}") from None
        except duckdb.Error as exc:
            raise StoreError(f"query failed on store {self.root}: {exc}") from exc

    def query(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql``; return the column names and the rows."""
        rel = self._relation(sql, params)
        if rel is None:  # a statement without a result (SET, CREATE ...)
            return [], []
        try:
            return list(rel.columns), rel.fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed on store {self.root}: {exc}") from exc

    def to_arrow(self, sql: str, params: Params = None) -> pa.Table:
        rel = self._relation(sql, params)
        if rel is None:
            return pa.table({})
        try:
            return rel.to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"query failed on store {self.root}: {exc}") from exc

    def to_pandas(self, sql: str, params: Params = None) -> Any:
        """The result as a ``pandas.DataFrame`` (typed ``Any``: pandas ships no type stubs)."""
        rel = self._relation(sql, params)
        if rel is None:
            return pa.table({}).to_pandas()
        try:
            return rel.df()
        except duckdb.Error as exc:
            raise StoreError(f"query failed on store {self.root}: {exc}") from exc

    def first_sightings(self) -> list[tuple[str, str, str, Any]]:
        """Earliest sighting of every (package, version) any node was offered, fleet-wide, as
        ``(node_id, package, version, seen_at)`` rows for
        :func:`patchfleet.domain.firstseen.first_seen` (node_id is ``*``: already aggregated).

        Schema v2 runs say it from their facts: every version offered (also one below apt's
        candidate, or a notice's version below the newest), dated by the run's earliest
        collection time. Read from ``fact_elements`` (each distinct offer once per run), not
        per node, so the cost follows the distinct offers of the history, not nodes x runs;
        a date is at most one run's duration early. Runs stored before facts existed count
        with the versions their verdicts named.
        """
        _, rows = self.query(_FIRST_SIGHTINGS_SQL)
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]

    def pending_installs(self) -> dict[str, tuple[str, set[tuple[str, str]]]]:
        """node_id -> (boot id, {(package, version)}) left INSTALLED_PENDING_REBOOT by the node's
        latest INSTALL run (see :mod:`patchfleet.domain.pending`)."""
        _, rows = self.query(
            "WITH last AS (SELECT node_id, run_id, boot_id, row_number() OVER ("
            "PARTITION BY node_id ORDER BY operation_end_time DESC) AS rn FROM node_summaries "
            "WHERE operation = 'INSTALL' AND boot_id IS NOT NULL) "
            "SELECT l.node_id, l.boot_id, p.package, p.installed_version FROM last l "
            "LEFT JOIN patch_states p ON p.node_id = l.node_id AND p.run_id = l.run_id "
            "AND p.state = 'INSTALLED_PENDING_REBOOT' WHERE l.rn = 1"
        )
        out: dict[str, tuple[str, set[tuple[str, str]]]] = {}
        for node_id, boot_id, package, version in rows:
            entry = out.setdefault(str(node_id), (str(boot_id), set()))
            if package is not None:
                entry[1].add((str(package), str(version or "")))
        return out

    def view_sql(self, name: str) -> str:
        """The SQL that defines view ``name`` in this session."""
        rows = self._con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]
        ).fetchall()  # DuckDB 2 refuses new work while a result is only partly fetched
        if not rows:
            raise StoreError(f"no view named {name!r}; views: {', '.join(self.VIEWS)}")
        return str(rows[0][0])

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ComplianceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
