"""Read stored facts back as :class:`~patchfleet.domain.facts.NodeFacts` (what-if, tests).

A node's facts are its list in ``fact_lists`` (element ids, in scan order), the rows those ids
name in ``fact_elements``, and the node-level columns of its ``node_summaries`` row. Python
builds one object per distinct element content (DuckDB hashes each element row, 64 bits, so
equal elements staged by different batches or runs become one object) and one facts tuple per
distinct list; nodes of one image then share their objects, as after a live scan, and
evaluation's memos apply. Two different elements would have to collide in 64 bits to be
confused (about 1 in 10^10 for a million distinct elements).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow.compute as pc

from patchfleet.domain.clock import opt_utc
from patchfleet.domain.facts import (
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
)
from patchfleet.domain.results import NodeResult
from patchfleet.errors import ConfigError, StoreError
from patchfleet.store.facts_table import ELEMENT_COLUMNS, element_from_row, split_elements
from patchfleet.store.query import ComplianceStore
from patchfleet.store.schema import verdicts_table

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
        collected_at=opt_utc(row["collected_at"]) or opt_utc(row["operation_end_time"])
        or datetime.now(UTC),
        warnings=tuple(row["facts_warnings"] or ()),
        updates=parts["updates"], advisories=parts["advisories"],
        boot_time=opt_utc(row["boot_time"]))


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
    runs = {"runs": sorted({row["run_id"] for row in summaries})}
    in_runs = "FROM fact_elements WHERE run_id IN (SELECT unnest($runs))"
    names, distinct = store.query(
        f"SELECT DISTINCT ON (k) {_ROW_HASH} AS k, "
        + ", ".join(f'"{c}"' for c in ELEMENT_COLUMNS) + f" {in_runs}", runs)
    made = {r[0]: element_from_row(dict(zip(names, r, strict=True))) for r in distinct}
    _, keyed = store.query(f"SELECT run_id, element_id, {_ROW_HASH} {in_runs}", runs)
    by_run: dict[str, dict[int, object]] = {}
    for element_run, element_id, key in keyed:
        by_run.setdefault(element_run, {})[element_id] = made[key]
    _, listed = store.query(
        f"{scope}, l AS (SELECT f.node_id, f.run_id, hash(f.elements) AS k, f.elements "
        "FROM fact_lists f JOIN scope s ON f.node_id = s.node_id AND f.run_id = s.run_id) "
        "SELECT node_id, run_id, k, CASE WHEN row_number() OVER (PARTITION BY run_id, k "
        "ORDER BY node_id) = 1 THEN elements END FROM l", params)
    parts: dict[tuple[str, int], dict[str, tuple[Any, ...]]] = {}
    node_keys: dict[tuple[str, str], int] = {}
    for node_id, node_run, key, elements in listed:
        node_keys[(node_id, node_run)] = key
        if elements is not None:
            objects = by_run.get(node_run, {})
            try:
                parts[(node_run, key)] = split_elements(objects[i] for i in elements)
            except KeyError as missing:
                raise StoreError(
                    f"run {node_run!r}: node {node_id!r} lists fact element {missing} that "
                    "fact_elements does not hold; the run's files are damaged: run "
                    "`patchfleet store check`") from None
    empty = split_elements(())
    out: list[StoredNode] = []
    for row in summaries:
        key = node_keys.get((row["node_id"], row["run_id"]))
        part = parts.get((row["run_id"], key)) if key is not None else None
        out.append(StoredNode(run_id=row["run_id"], summary=row,
                              facts=_node_facts(row, part or empty)))
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


def verdict_changes(store: ComplianceStore, results: Sequence[NodeResult],
                    runs: Mapping[str, str]) -> list[tuple[str, str, str, str | None, str | None]]:
    """``(node_id, package, arch, stored state, new state)`` of every patch whose state in
    ``results`` differs from the verdict stored for the same node in ``runs[node_id]`` (None:
    no record on that side), sorted. Joined in Arrow: a fleet has millions of records."""
    if not results:
        return []
    keys = ["node_id", "package", "arch"]
    after = verdicts_table(results)
    before = store.to_arrow(
        "SELECT node_id, package, arch, state FROM patch_states "
        "WHERE (node_id, run_id) IN (SELECT unnest($nodes), unnest($runs))",
        {"nodes": list(runs), "runs": list(runs.values())})
    if not before.num_columns:
        before = after.schema.empty_table()
    joined = after.join(before.cast(after.schema), keys, join_type="full outer",
                        left_suffix="_after", right_suffix="_before", coalesce_keys=True)
    was, now = joined.column("state_before"), joined.column("state_after")
    differ = pc.invert(pc.equal(pc.fill_null(was, ""), pc.fill_null(now, "")))
    changed = joined.filter(differ).sort_by([(k, "ascending") for k in keys])
    columns = [changed.column(c).to_pylist()
               for c in ("node_id", "package", "arch", "state_before", "state_after")]
    return list(zip(*columns, strict=True))
