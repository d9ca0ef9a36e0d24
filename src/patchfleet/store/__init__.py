"""The compliance store: Parquet files written per run, read through DuckDB views.

The only place pyarrow and duckdb are used. See ``schema`` (columns, version), ``writer``
(``write_run``, ``commit_tables``), ``staging`` (a running run's rows, batch by batch, and their
commit) and ``query`` (``ComplianceStore`` and the views in ``sql/``).
"""

from patchfleet.store.query import ComplianceStore
from patchfleet.store.schema import SCHEMA_VERSION
from patchfleet.store.writer import WrittenRun, check_writable, write_run

__all__ = ["SCHEMA_VERSION", "ComplianceStore", "WrittenRun", "check_writable", "write_run"]
