"""What-if: judge stored facts with any baseline, without contacting a node.

``patchfleet evaluate`` and the ``what-if`` deployment run :func:`evaluate_stored`: it reads the
facts of one run (or each node's latest facts) from the store, judges them exactly as a scan
would (``ops.scan.judge``: the baseline, first-seen dates from every stored sighting, pending
reboots; no snapshot), and compares the verdicts with the ones the store holds for those facts.
Only nodes whose operating system the baseline (or BaselineOverride) covers are judged; the
others are listed as skipped. With ``save`` the evaluation is stored as a run flagged
``what_if`` (its own ``patch_states`` and ``node_summaries`` rows, no facts of its own), which
the latest-state views and the compliance history leave out.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import NamedTuple

from patchfleet.domain import clock
from patchfleet.domain.baseline import Baseline, OperatingSystem, baseline_hash
from patchfleet.domain.firstseen import first_seen
from patchfleet.domain.inventory import Inventory, Node, ResolvedNode
from patchfleet.domain.pending import PendingInstalls
from patchfleet.domain.records import Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.domain.selectors import select_targets
from patchfleet.errors import ConfigError, PatchfleetError
from patchfleet.ops.audit_trail import audit
from patchfleet.ops.scan import ScanOptions, judge, node_result
from patchfleet.store.audit import AuditEntry
from patchfleet.store.facts_reader import StoredNode, load_facts, verdict_changes
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore
from patchfleet.store.schema import node_summaries_table
from patchfleet.store.writer import WrittenRun, write_run


class PatchFlip(NamedTuple):
    """A patch whose state differs from the stored verdict (None: no record on that side)."""

    node_id: str
    package: str
    arch: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class NodeFlip:
    node_id: str
    before: str
    after: str


@dataclass
class WhatIf:
    """The outcome of one what-if evaluation."""

    run_id: str
    at: datetime
    results: list[NodeResult]
    source_runs: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    """node id -> why it was not judged (its OS is not covered by the baseline)."""
    without_facts: int = 0
    """Nodes whose latest result holds no facts (a FAILED scan, or written before schema v2):
    not judged."""
    node_flips: list[NodeFlip] = field(default_factory=list)
    patch_flips: list[PatchFlip] = field(default_factory=list)
    written: WrittenRun | None = None

    def node_rows(self) -> list[dict[str, object]]:
        """The results as ``node_summaries`` rows (what the scan summary prints)."""
        ctx = RunContext(run_id=self.run_id, operation=Operation.SCAN, started_at=self.at,
                         what_if=True)
        rows: list[dict[str, object]] = node_summaries_table(ctx, self.results).to_pylist()
        return rows


def parse_at(value: str | None) -> datetime | None:
    """``--at``: an ISO 8601 date or time (UTC when no offset is given)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{value!r} is not an ISO 8601 date or time; write e.g. 2026-12-11 "
                          "or 2026-12-11T09:00:00Z", source="--at") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _node(stored: StoredNode) -> ResolvedNode:
    """The stored node as targeting and judging see it (its id, host, tags and OS); never
    connected to, so the connection fields are placeholders."""
    s = stored.summary
    tags = dict(s.get("tags") or {})
    os = s.get("operating_system") or None
    declared = {"os": os} if os in OperatingSystem.__members__ else {}
    node = Node.model_validate({"id": s["node_id"], "host": s["host"] or s["node_id"],
                                "tags": tags, **declared})
    return Inventory(nodes=[node]).resolved()[0]


def evaluate_stored(
    root: StoreLocation,
    baselines: Mapping[str, Baseline],
    *,
    run_id: str | None = None,
    targets: str = "*",
    at: datetime | None = None,
    save: bool = False,
    evaluation_id: str | None = None,
    flow_run_id: str | None = None,
    deployment: str | None = None,
) -> WhatIf:
    """Judge the stored facts of ``run_id`` (None: each node's latest) with ``baselines``
    (OperatingSystem -> baseline), as of ``at`` (default now); ``evaluation_id`` names the
    evaluation (and the run ``save`` stores; default ``whatif-<uuid>``)."""
    if not baselines:
        raise ConfigError("no baseline given; pass --baseline NAME|FILE", source="--baseline")
    pinned = clock.frozen_at(at) if at is not None else contextlib.nullcontext()
    with pinned:
        outcome = _evaluate(root, baselines, run_id, targets, save, evaluation_id)
    statuses = [r.summary.status.value for r in outcome.results]
    audit(root, AuditEntry(
        action="WHAT_IF", run_id=outcome.run_id,
        outcome="saved" if outcome.written else "not saved", targets=targets,
        target_count=len(outcome.results) + len(outcome.skipped),
        baselines=sorted(f"{b.name}@{baseline_hash(b)}" for b in baselines.values()),
        nodes=len(outcome.results), compliant=statuses.count("COMPLIANT"),
        non_compliant=statuses.count("NON_COMPLIANT"), failed=statuses.count("FAILED"),
        prefect_flow_run_id=flow_run_id, prefect_deployment=deployment,
        detail=(f"facts of {', '.join(outcome.source_runs) or 'no run'} as of "
                f"{outcome.at.isoformat()}; {len(outcome.node_flips)} node(s) and "
                f"{len(outcome.patch_flips)} patch(es) change")))
    return outcome


def _evaluate(root: StoreLocation, baselines: Mapping[str, Baseline], run_id: str | None,
              targets: str, save: bool, evaluation_id: str | None) -> WhatIf:
    now = clock.now()
    with ComplianceStore(root) as store:
        stored = load_facts(store, run_id)
        if run_id:
            _, missing = store.query("SELECT count(*) FROM node_summaries WHERE run_id = $run "
                                     "AND facts_run_id IS NULL", {"run": run_id})
        else:
            _, missing = store.query("SELECT count(*) FROM latest_node_summaries "
                                     "WHERE facts_run_id IS NULL")
        by_id = {s.summary["node_id"]: s for s in stored}
        chosen = {n.id: n for n in select_targets([_node(s) for s in stored], targets)}
        seen = first_seen(store.first_sightings())
        pending = {node_id: PendingInstalls(boot_id, frozenset(packages))
                   for node_id, (boot_id, packages) in store.pending_installs().items()}
    outcome = WhatIf(run_id=evaluation_id or f"whatif-{uuid.uuid4()}", at=now, results=[],
                     source_runs=sorted({by_id[node_id].run_id for node_id in chosen}),
                     without_facts=int(missing[0][0]) if missing else 0)
    options = ScanOptions(first_seen=seen, pending=pending, baseline_overrides=dict(baselines),
                          now=now)
    for node_id, node in chosen.items():
        item = by_id[node_id]
        baseline = baselines.get(item.facts.os.operating_system)
        if baseline is None:
            outcome.skipped[node_id] = (
                f"runs {item.facts.os.operating_system or 'an unknown OS'}; the baseline "
                f"covers {', '.join(sorted(baselines))}")
            continue
        try:
            records = judge(item.facts, baseline, node, options, now)
        except PatchfleetError as err:  # facts the baseline cannot judge: say so, go on
            outcome.skipped[node_id] = f"cannot be judged: {err}"
            continue
        result = replace(node_result(node, item.facts, baseline, records, now),
                         facts_run_id=item.run_id)
        outcome.results.append(result)
        old_status = str(item.summary["status"])
        if old_status != result.summary.status.value:
            outcome.node_flips.append(NodeFlip(node_id, old_status, result.summary.status.value))
    with ComplianceStore(root) as store:
        runs = {r.node_id: by_id[r.node_id].run_id for r in outcome.results}
        outcome.patch_flips = list(map(PatchFlip._make,
                                       verdict_changes(store, outcome.results, runs)))
    if save and outcome.results:
        source = "what-if of " + ", ".join(outcome.source_runs)
        ctx = RunContext(run_id=outcome.run_id, operation=Operation.SCAN, started_at=now,
                         what_if=True, inventory_source=source)
        outcome.written = write_run(root, ctx, outcome.results)
    return outcome


MAX_DIGEST_CHANGES = 200


@dataclass(frozen=True, slots=True)
class WhatIfDigest:
    """A small summary of a what-if (what a flow returns and logs: never every record)."""

    run_id: str
    at: str
    saved: bool
    source_runs: list[str]
    nodes: int
    compliant: int
    non_compliant: int
    skipped: int
    node_changes: list[str]
    patch_changes: int
    first_patch_changes: list[str]
    """The first ``MAX_DIGEST_CHANGES`` patch changes, one line each."""

    def markdown(self) -> str:
        lines = [f"# What-if {self.run_id}", "",
                 f"Facts of run(s) {', '.join(self.source_runs) or 'none'}, as of {self.at}: "
                 f"**{self.nodes}** node(s) judged ({self.compliant} compliant, "
                 f"{self.non_compliant} non-compliant), {self.skipped} skipped.", "",
                 f"Changes against the stored verdicts: {len(self.node_changes)} node(s), "
                 f"{self.patch_changes} patch(es).", ""]
        lines += [f"- {line}" for line in (*self.node_changes, *self.first_patch_changes)]
        return "\n".join(lines)


def digest(outcome: WhatIf) -> WhatIfDigest:
    """The :class:`WhatIfDigest` of ``outcome``."""
    statuses = [r.summary.status.value for r in outcome.results]
    return WhatIfDigest(
        run_id=outcome.run_id, at=outcome.at.isoformat(), saved=outcome.written is not None,
        source_runs=outcome.source_runs, nodes=len(outcome.results),
        compliant=statuses.count("COMPLIANT"), non_compliant=statuses.count("NON_COMPLIANT"),
        skipped=len(outcome.skipped),
        node_changes=[f"{f.node_id}: {f.before} -> {f.after}" for f in outcome.node_flips],
        patch_changes=len(outcome.patch_flips),
        first_patch_changes=[
            f"{p.node_id} {p.package}{'.' + p.arch if p.arch else ''}: {p.before} -> {p.after}"
            for p in outcome.patch_flips[:MAX_DIGEST_CHANGES]],
    )
