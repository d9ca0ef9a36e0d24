"""A read-only DuckDB session: what ``patchfleet query`` and the notebooks' store helper run in.

DuckDB can read and write any file the process may (``read_text('/etc/shadow')``, ``COPY ... TO``
anywhere, ``ATTACH`` a new database, ``COPY ... (PARTITION_BY ...)`` into the store itself to forge
a run, extension installs from the network). A compliance store session needs none of that, so
once its views are defined the session is locked:

- file access only below the store's own folder (``allowed_directories``; none for a store on S3,
  whose files DuckDB reads through pyarrow datasets registered before the lock), and no other
  external access (``enable_external_access = false``);
- no extension is installed or loaded automatically, community extensions are refused;
- ``lock_configuration``: no statement can undo any of this;
- every statement a user sends is checked first: exactly one, and a SELECT (``WITH ... SELECT``
  is one). COPY, ATTACH, CREATE, INSERT, SET, PRAGMA, EXPLAIN (``EXPLAIN ANALYZE`` runs its
  statement) ... are refused before they run, so nothing can write even inside the store.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from patchfleet.errors import QueryError

__all__ = ["check_read_only", "first_line", "lock_down"]

_SETTINGS = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lock_down(con: duckdb.DuckDBPyConnection, readable: Sequence[str]) -> None:
    """Restrict ``con`` to reading the folders in ``readable`` and lock its configuration."""
    for statement in _SETTINGS:
        con.execute(statement)
    folders = ", ".join(_quote(folder.rstrip("/") + "/") for folder in readable)
    con.execute(f"SET allowed_directories = [{folders}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """QueryError unless ``sql`` is exactly one SELECT statement."""
    if not sql.strip():
        raise QueryError("query: the SQL is empty; give one SELECT, e.g. "
                         "\"SELECT * FROM noncompliant_nodes\"")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query: not valid SQL: {first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(f"query: {len(statements)} statements; send one SELECT at a time")
    kind = statements[0].type
    if kind is not duckdb.StatementType.SELECT:
        raise QueryError(
            f"query: {kind.name} statements are refused: the compliance store is read-only "
            "here; send one SELECT (or WITH ... SELECT) over its views")


def first_line(exc: Exception) -> str:
    """The first line of a DuckDB error, bounded (its messages can quote the whole query)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
