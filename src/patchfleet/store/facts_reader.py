"""Read stored facts back as :class:`~patchfleet.domain.facts.NodeFacts` (what-if, tests).

A node's facts are its ``package_facts`` rows (in ``seq`` order) plus the node-level columns
of its ``node_summaries`` row. Rebuilding 10,000 nodes row by row in Python would take minutes,
so DuckDB does the bulk work: it hashes every row's content (``hash`` over the element columns,
64 bits), lists each node's row hashes in order and hashes that list. Python then builds one
object per distinct row and one facts tuple per distinct node content; nodes of one image share
them, exactly as after a live scan, and evaluation's memos apply. Two different rows would have
to collide in 64 bits to be confused (about 1 in 10^10 for a million distinct rows).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from patchfleet.domain.facts import (
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
)
from patchfleet.errors import ConfigError
from patchfleet.store.facts_table import ELEMENT_COLUMNS, element_from_row, split_elements
from patchfleet.store.query import ComplianceStore

_ROW_HASH: Final = "hash(" + ", ".join(f'"{c}"' for c in ELEMENT_COLUMNS) + ")"


@dataclass(frozen=True, slots=True)
class StoredNode:
    """One node's stored facts and what the store concluded from them."""

    run_id: str
    summary: dict[str, Any]
    """The node's ``node_summaries`` row (every column)."""
    facts: NodeFacts


def _scope_sql(run_id: str | None) -> str:
    """The (node_id, run_id) pairs to read: one run's nodes, or each node's latest facts."""
    if run_id is not None:
        return ("SELECT * FROM node_summaries WHERE run_id = $run "
                "AND facts_run_id IS NOT NULL AND what_if IS NOT TRUE")
    return "SELECT * FROM latest_node_summaries WHERE facts_run_id IS NOT NULL"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _os(row: dict[str, Any]) -> OsInfo:
    return OsInfo(
        id=row["os_id"] or "", version_id=row["platform_version"] or "",
        name=row["platform_name"] or "", pretty_name=row["os_pretty_name"] or "",
        version_codename=row["os_codename"] or "", id_like=tuple(row["os_id_like"] or ()),
        operating_system=row["operating_system"] or "", product=row["product"] or "",
        package_manager=PackageManager(row["package_manager"]))


def _node_facts(row: dict[str, Any], parts: dict[str, tuple[Any, ...]]) -> NodeFacts:
    required = bool(row["reboot_required"])
    return NodeFacts(
        node_id=row["node_id"], host=row["host"], os=_os(row),
        installed=parts["installed"], candidates=parts["candidates"], planned=parts["planned"],
        reboot=RebootState(boot_id=row["boot_id"] or "", required=required,
                           packages=tuple(row["reboot_required_packages"] or ())
                           if required else ()),
        refresh=RefreshResult(attempted=bool(row["refresh_attempted"]),
                              ok=bool(row["refresh_ok"]), message=row["refresh_message"] or ""),
        collected_at=_utc(row["collected_at"]) or _utc(row["operation_end_time"])
        or datetime.now(UTC),
        warnings=tuple(row["facts_warnings"] or ()),
        updates=parts["updates"], advisories=parts["advisories"],
        boot_time=_utc(row["boot_time"]))


def load_facts(store: ComplianceStore, run_id: str | None = None,
               nodes: Collection[str] | None = None) -> list[StoredNode]:
    """The stored facts of run ``run_id`` (None: each node's latest run with facts), limited
    to ``nodes`` when given, in node id order. ConfigError when ``run_id`` has no facts."""
    params: dict[str, Any] = {"run": run_id} if run_id is not None else {}
    where = ""
    if nodes is not None:
        where = " WHERE node_id IN (SELECT unnest($nodes))"
        params["nodes"] = sorted(nodes)
    scope = f"WITH scope AS (SELECT * FROM ({_scope_sql(run_id)}){where})"
    names, rows = store.query(f"{scope} SELECT * FROM scope ORDER BY node_id", params)
    summaries = [dict(zip(names, r, strict=True)) for r in rows]
    if not summaries:
        if run_id is not None:
            _no_facts(store, run_id)
        return []
    facts_rows = (f"{scope} SELECT f.* FROM package_facts f "
                  "JOIN scope s ON f.node_id = s.node_id AND f.run_id = s.run_id")
    _, keyed = store.query(
        f"WITH f AS ({facts_rows}), k AS (SELECT node_id, run_id, seq, {_ROW_HASH} AS k "
        "FROM f), n AS (SELECT node_id, run_id, list(k ORDER BY seq) AS keys FROM k "
        "GROUP BY node_id, run_id), h AS (SELECT node_id, run_id, hash(keys) AS node_key, keys "
        "FROM n) SELECT node_id, run_id, node_key, CASE WHEN row_number() OVER (PARTITION BY "
        "node_key ORDER BY node_id, run_id) = 1 THEN keys END FROM h", params)
    names, distinct = store.query(
        f"WITH f AS ({facts_rows}) SELECT DISTINCT ON (k) {_ROW_HASH} AS k, "
        + ", ".join(f'"{c}"' for c in ELEMENT_COLUMNS) + " FROM f", params)
    elements = {r[0]: element_from_row(dict(zip(names, r, strict=True))) for r in distinct}
    parts: dict[int, dict[str, tuple[Any, ...]]] = {}
    node_keys: dict[tuple[str, str], int] = {}
    for node_id, node_run, node_key, keys in keyed:
        node_keys[(node_id, node_run)] = node_key
        if keys is not None:
            parts[node_key] = split_elements(elements[k] for k in keys)
    empty = split_elements(())
    out: list[StoredNode] = []
    for row in summaries:
        key = node_keys.get((row["node_id"], row["run_id"]))
        out.append(StoredNode(run_id=row["run_id"], summary=row,
                              facts=_node_facts(row, parts[key] if key is not None else empty)))
    return out


def _no_facts(store: ComplianceStore, run_id: str) -> None:
    _, rows = store.query("SELECT count(*), count(facts_run_id) FROM node_summaries "
                          "WHERE run_id = $run", {"run": run_id})
    nodes, with_facts = rows[0] if rows else (0, 0)
    if not nodes:
        raise ConfigError(f"run {run_id!r} is not in the compliance store {store.root}: "
                          "pick a run id from `patchfleet query \"SELECT * FROM "
                          "compliance_history\"`, or use --latest", source="--run-id")
    if not with_facts:
        raise ConfigError(f"run {run_id!r} has no stored facts (it was written before schema "
                          "v2, is a what-if, or no node was scanned): pick a later run, or "
                          "scan again", source="--run-id")


def stored_states(store: ComplianceStore, pairs: Sequence[tuple[str, str]]
                  ) -> dict[str, dict[tuple[str, str], tuple[str, str | None]]]:
    """node_id -> {(package, arch): (state, available_version)} of the stored verdicts of the
    given (node_id, run_id) pairs."""
    if not pairs:
        return {}
    _, rows = store.query(
        "SELECT node_id, package, arch, state, available_version FROM patch_states "
        "WHERE (node_id, run_id) IN (SELECT unnest($nodes), unnest($runs))",
        {"nodes": [p[0] for p in pairs], "runs": [p[1] for p in pairs]})
    out: dict[str, dict[tuple[str, str], tuple[str, str | None]]] = {}
    for node_id, package, arch, state, available in rows:
        out.setdefault(node_id, {})[(package, arch)] = (state, available)
    return out
