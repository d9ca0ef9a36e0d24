"""Arrow schemas of the compliance store, and the conversion of one run into its two tables.

The column names and their order are the DESIGN.md contract (``patch_states``, ``node_summaries``);
analysts rely on them, so columns are added at the end, never renamed or reordered. Extension
columns, after the contract ones:

- ``patch_states``: ``source_package``, ``repository``, ``held``, ``security``: the rest of
  :class:`~patchfleet.domain.records.PatchRecord`, kept so nothing the scan saw is lost
  (``security`` is what ``security_non_compliant_count`` counts; ``held`` explains a package that
  never updates).
- ``node_summaries``: ``warnings`` (list of strings): what the scan noticed but did not fail on;
  ``boot_id``: the node's boot id when the operation ended (what an install left pending a
  reboot stays pending while the boot id is the same); ``reboot_required`` /
  ``reboot_required_packages``: the OS's own reboot signal and the packages it names (a fact:
  it affects compliance only for baselines with ``os_reboot_signals``); ``restart_needed``:
  processes still
  running replaced files; ``auto_updaters``: competing automatic updaters found active.

``date`` (the UTC day the run started) and ``run_id`` are Hive partition columns: they live in the
folder names (``date=YYYY-MM-DD/run_id=...``) and are *not* stored inside the files, because a
column present in both places breaks ``pandas.read_parquet(folder)`` and
``pyarrow.parquet.read_table(folder)`` ("Unable to merge: Field run_id has incompatible types") and
DuckDB silently prefers the folder value anyway. The conversion functions return ``run_id`` so the
in-memory tables are complete; the writer drops it (:func:`file_schema`). The run id is also kept
in each file's key-value metadata, so a file copied out of its folder still says where it belongs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Final

import pyarrow as pa

from patchfleet.domain.clock import opt_utc, utc
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import PatchRecord
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.store.audit import AUDIT, AUDIT_SCHEMA
from patchfleet.store.facts_table import (
    FACT_ELEMENTS,
    FACT_ELEMENTS_SCHEMA,
    FACT_LISTS,
    FACT_LISTS_SCHEMA,
    fact_tables,
)

SCHEMA_VERSION: Final = 2
"""2: ``fact_elements`` and ``fact_lists`` (the ``package_facts`` view); ``node_summaries``
gained the OS, tags, inventory source, baseline hash, what-if flag and the node-level facts.
Files of version 1 stay readable: the views union every version by column name, the new columns
NULL in old files."""
SCHEMA_VERSION_KEY: Final = b"patchfleet.schema_version"
TABLE_KEY: Final = b"patchfleet.table"
RUN_ID_KEY: Final = b"patchfleet.run_id"

PATCH_STATES: Final = "patch_states"
NODE_SUMMARIES: Final = "node_summaries"
TABLES: Final = (PATCH_STATES, NODE_SUMMARIES, FACT_ELEMENTS, FACT_LISTS)
COMMIT_ORDER: Final = (PATCH_STATES, FACT_ELEMENTS, FACT_LISTS, NODE_SUMMARIES)
VIEW_TABLES: Final = (*TABLES, AUDIT)
"""Every table the store's views read: a run's tables, and the audit trail (store/audit.py:
appended entry by entry, not committed with a run)."""
"""The order a run's files are committed in: ``node_summaries`` last, as the views key on it."""

# Hive partition columns, in folder order; they are read back from the path, never from the file.
PARTITION_COLUMNS: Final = ("date", "run_id")

_TS = pa.timestamp("us", tz="UTC")
_STR = pa.string()
_STRINGS = pa.list_(pa.field("item", pa.string(), nullable=False))
_COUNT = pa.int32()

PATCH_STATES_SCHEMA: Final = pa.schema(
    [
        pa.field("node_id", _STR, nullable=False),
        pa.field("package", _STR, nullable=False),
        pa.field("arch", _STR, nullable=False),
        pa.field("installed_version", _STR),
        pa.field("available_version", _STR),
        pa.field("state", _STR, nullable=False),
        pa.field("classification", _STR),
        pa.field("severity", _STR),
        pa.field("priority", _STR),
        pa.field("section", _STR),
        pa.field("advisory_ids", _STRINGS, nullable=False),
        pa.field("cve_ids", _STRINGS, nullable=False),
        pa.field("release_date", _TS),
        pa.field("compliance_level", _STR),
        pa.field("run_id", _STR, nullable=False),
        pa.field("snapshot_id", _STR),
        pa.field("operation", _STR, nullable=False),
        pa.field("execution_type", _STR, nullable=False),
        pa.field("baseline_id", _STR),
        pa.field("scanned_at", _TS, nullable=False),
        # extensions
        pa.field("source_package", _STR),
        pa.field("repository", _STR),
        pa.field("held", pa.bool_(), nullable=False),
        pa.field("security", pa.bool_(), nullable=False),
    ]
)

_COUNT_COLUMNS: Final = (
    "installed_count",
    "installed_other_count",
    "installed_pending_reboot_count",
    "installed_rejected_count",
    "missing_count",
    "failed_count",
    "not_applicable_count",
    "critical_non_compliant_count",
    "security_non_compliant_count",
    "other_non_compliant_count",
)

NODE_SUMMARIES_SCHEMA: Final = pa.schema(
    [
        pa.field("node_id", _STR, nullable=False),
        pa.field("host", _STR, nullable=False),
        pa.field("platform_name", _STR),
        pa.field("platform_version", _STR),
        pa.field("patch_group", _STR),
        pa.field("baseline_id", _STR),
        pa.field("status", _STR, nullable=False),
        pa.field("overall_severity", _STR),
        pa.field("failure_reason", _STR),
        *(pa.field(name, _COUNT, nullable=False) for name in _COUNT_COLUMNS),
        pa.field("operation", _STR, nullable=False),
        pa.field("operation_start_time", _TS, nullable=False),
        pa.field("operation_end_time", _TS, nullable=False),
        pa.field("reboot_option", _STR),
        pa.field("last_no_reboot_install_operation_time", _TS),
        pa.field("run_id", _STR, nullable=False),
        pa.field("snapshot_id", _STR),
        pa.field("execution_type", _STR, nullable=False),
        # extensions
        pa.field("warnings", _STRINGS, nullable=False),
        pa.field("boot_id", _STR),
        pa.field("restart_needed", _STRINGS),
        pa.field("auto_updaters", _STRINGS),
        pa.field("reboot_required", pa.bool_()),
        pa.field("reboot_required_packages", _STRINGS),
        # schema v2
        pa.field("operating_system", _STR),
        pa.field("tags", pa.map_(_STR, _STR)),
        pa.field("inventory_source", _STR),
        pa.field("baseline_hash", _STR),
        pa.field("what_if", pa.bool_()),
        pa.field("facts_run_id", _STR),
        pa.field("product", _STR),
        pa.field("package_manager", _STR),
        pa.field("os_id", _STR),
        pa.field("os_pretty_name", _STR),
        pa.field("os_codename", _STR),
        pa.field("os_id_like", _STRINGS),
        pa.field("collected_at", _TS),
        pa.field("boot_time", _TS),
        pa.field("refresh_attempted", pa.bool_()),
        pa.field("refresh_ok", pa.bool_()),
        pa.field("refresh_message", _STR),
        pa.field("facts_warnings", _STRINGS),
        pa.field("run_label", _STR),
    ]
)

SCHEMAS: Final[dict[str, pa.Schema]] = {  # a run's tables
    PATCH_STATES: PATCH_STATES_SCHEMA,
    NODE_SUMMARIES: NODE_SUMMARIES_SCHEMA,
    FACT_ELEMENTS: FACT_ELEMENTS_SCHEMA,
    FACT_LISTS: FACT_LISTS_SCHEMA,
}
VIEW_SCHEMAS: Final[dict[str, pa.Schema]] = {**SCHEMAS, AUDIT: AUDIT_SCHEMA}


def file_schema(table: str, run_id: str | None = None) -> pa.Schema:
    """The schema of the Parquet files of ``table``: no partition columns, versioned metadata."""
    schema = SCHEMAS[table]
    for name in PARTITION_COLUMNS:
        index = schema.get_field_index(name)
        if index >= 0:
            schema = schema.remove(index)
    metadata = {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: table.encode()}
    if run_id is not None:
        metadata[RUN_ID_KEY] = run_id.encode()
    return schema.with_metadata(metadata)


def run_date(ctx: RunContext) -> date:
    """The ``date=`` partition of a run: the UTC calendar day it started."""
    return utc(ctx.started_at).date()


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


_RECORD_COLUMNS: tuple[tuple[str, Callable[[PatchRecord], object]], ...] = (
    ("package", lambda r: r.package),
    ("arch", lambda r: r.arch),
    ("installed_version", lambda r: r.installed_version),
    ("available_version", lambda r: r.available_version),
    ("state", lambda r: r.state),
    ("classification", lambda r: r.classification),
    ("severity", lambda r: r.severity),
    ("priority", lambda r: r.priority),
    ("section", lambda r: r.section),
    ("advisory_ids", lambda r: r.advisory_ids),
    ("cve_ids", lambda r: r.cve_ids),
    ("release_date", lambda r: opt_utc(r.release_date)),
    ("compliance_level", lambda r: r.compliance_level),
    ("source_package", lambda r: r.source_package),
    ("repository", lambda r: r.repository),
    ("held", lambda r: r.held),
    ("security", lambda r: r.security),
)


def _distinct_records(results: Sequence[NodeResult]) -> tuple[list[PatchRecord], pa.Array]:
    """Each distinct record object of ``results`` once, and the index of every row's record
    (nodes in order, records in order): columns are converted per distinct record and
    gathered with Arrow's ``take``. Nodes of one image share their record objects."""
    where: dict[int, int] = {}
    distinct: list[PatchRecord] = []
    index: list[int] = []
    for result in results:
        for rec in result.records:
            i = where.get(id(rec))
            if i is None:
                i = where[id(rec)] = len(distinct)
                distinct.append(rec)
            index.append(i)
    return distinct, pa.array(index, type=pa.int32())


def _per_node(results: Sequence[NodeResult], value: Callable[[NodeResult], object]
              ) -> list[object]:
    """A node-level value repeated on each of the node's record rows."""
    column: list[object] = []
    for result in results:
        column.extend([value(result)] * len(result.records))
    return column


def patch_states_table(ctx: RunContext, results: Sequence[NodeResult]) -> pa.Table:
    """One row per node x record of this run (a FAILED node has no records, so no rows).

    Built column by column: a run can hold millions of records, and a per-row dict is several
    times slower (:func:`_distinct_records`). Enum members are ``str`` subclasses, which
    pyarrow takes as they are.
    """
    distinct, take = _distinct_records(results)
    n = len(take)
    columns: dict[str, object] = {
        name: pa.array([value(r) for r in distinct],
                       type=PATCH_STATES_SCHEMA.field(name).type).take(take)
        for name, value in _RECORD_COLUMNS
    }
    columns.update({
        "node_id": _per_node(results, lambda r: r.node_id),
        "run_id": [ctx.run_id] * n,
        "snapshot_id": [ctx.snapshot_id] * n,
        "operation": [str(ctx.operation)] * n,
        "execution_type": [str(ctx.execution_type)] * n,
        "baseline_id": _per_node(results, lambda r: r.baseline_id),
        "scanned_at": _per_node(results, lambda r: utc(r.operation_end_time)),
    })
    return pa.table({name: columns[name] for name in PATCH_STATES_SCHEMA.names},
                    schema=PATCH_STATES_SCHEMA)


def verdicts_table(results: Sequence[NodeResult]) -> pa.Table:
    """``node_id, package, arch, state`` of every record of ``results`` (what a what-if
    compares with the stored verdicts), built like :func:`patch_states_table`."""
    distinct, take = _distinct_records(results)
    return pa.table({
        "node_id": pa.array(_per_node(results, lambda r: r.node_id), _STR),
        **{name: pa.array([value(r) for r in distinct], _STR).take(take)
           for name, value in (("package", lambda r: r.package), ("arch", lambda r: r.arch),
                               ("state", lambda r: str(r.state)))},
    })


def _node_facts(facts: NodeFacts | None) -> dict[str, object]:
    """The node-level facts (what the fact tables need beside them to rebuild the facts)."""
    if facts is None:
        return {}
    os = facts.os
    return {
        "product": os.product, "package_manager": str(os.package_manager), "os_id": os.id,
        "os_pretty_name": os.pretty_name, "os_codename": os.version_codename,
        "os_id_like": list(os.id_like), "collected_at": utc(facts.collected_at),
        "boot_time": opt_utc(facts.boot_time), "refresh_attempted": facts.refresh.attempted,
        "refresh_ok": facts.refresh.ok, "refresh_message": facts.refresh.message,
        "facts_warnings": list(facts.warnings),
    }


def node_summaries_table(ctx: RunContext, results: Sequence[NodeResult]) -> pa.Table:
    """One row per node of this run, FAILED nodes included (with their reason, counts zero)."""
    rows: dict[str, list[object]] = {name: [] for name in NODE_SUMMARIES_SCHEMA.names}
    for result in results:
        summary = result.summary
        facts = result.facts
        values: dict[str, object] = {
            "node_id": result.node_id,
            "host": result.host,
            "platform_name": result.platform_name,
            "platform_version": result.platform_version,
            "patch_group": result.patch_group,
            "baseline_id": result.baseline_id,
            "status": str(summary.status),
            "overall_severity": _str(summary.overall_severity),
            "failure_reason": result.failure_reason,
            **{name: getattr(summary, name) for name in _COUNT_COLUMNS},
            "operation": str(ctx.operation),
            "operation_start_time": utc(result.operation_start_time),
            "operation_end_time": utc(result.operation_end_time),
            "reboot_option": ctx.reboot_option,
            "last_no_reboot_install_operation_time": opt_utc(
                result.last_no_reboot_install_operation_time
            ),
            "run_id": ctx.run_id,
            "snapshot_id": ctx.snapshot_id,
            "execution_type": str(ctx.execution_type),
            "warnings": list(result.warnings),
            "boot_id": result.boot_id,
            "restart_needed": list(result.restart_needed),
            "auto_updaters": list(result.auto_updaters),
            "reboot_required": result.reboot_required,
            "reboot_required_packages": list(result.reboot_required_packages),
            "operating_system": result.operating_system,
            "tags": list(result.tags),
            "inventory_source": ctx.inventory_source,
            "baseline_hash": result.baseline_hash,
            "what_if": ctx.what_if,
            "facts_run_id": (result.facts_run_id or ctx.run_id) if facts is not None else None,
            "run_label": ctx.label,
            **_node_facts(facts),
        }
        for name in NODE_SUMMARIES_SCHEMA.names:
            rows[name].append(values.get(name))
    return pa.table(rows, schema=NODE_SUMMARIES_SCHEMA)


def run_tables(ctx: RunContext, results: Sequence[NodeResult]) -> dict[str, pa.Table]:
    """The tables of one run, keyed by table name (a what-if stores no facts of its own)."""
    tables = {
        PATCH_STATES: patch_states_table(ctx, results),
        NODE_SUMMARIES: node_summaries_table(ctx, results),
    }
    if not ctx.what_if:  # a what-if's facts are its source run's, already stored
        tables[FACT_ELEMENTS], tables[FACT_LISTS] = fact_tables(ctx.run_id, results)
    return tables


_DUCKDB_TYPES: Final[dict[pa.DataType, str]] = {
    _STR: "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    _TS: "TIMESTAMPTZ",
    pa.date32(): "DATE",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type a column of ``arrow_type`` reads back as (used for typed empty views)."""
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_map(arrow_type):
        return f"MAP({duckdb_type(arrow_type.key_type)}, {duckdb_type(arrow_type.item_type)})"
    if pa.types.is_struct(arrow_type):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.type)}'
                                     for f in arrow_type) + ")"
    try:
        return _DUCKDB_TYPES[arrow_type]
    except KeyError:
        raise TypeError(f"no DuckDB type mapped for {arrow_type}") from None
