"""Scan nodes: connect, collect facts, evaluate against the selected baseline, summarise.

This is the whole Scan operation for one node (:func:`scan_node`) and the asyncio fan-out over many
(:func:`scan_nodes`, or :func:`scan_each` to take each result as it comes) with bounded
concurrency. Nodes are reached through the :class:`~patchfleet.transport.Connector` the caller
passes. No Prefect: the flow's tasks call these, and so can tests and benchmarks. A node that fails
becomes a FAILED :class:`NodeResult` with its reason; it never raises out of here. With a deadline
(a CANCEL_TASK maintenance window's cutoff) a node whose turn comes after it is not scanned and is
recorded FAILED, ``TIMED_OUT: ...``; scans already running finish (they are read-only and short).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from patchfleet.domain import clock
from patchfleet.domain.baseline import Baseline, BaselineRegistry, baseline_hash
from patchfleet.domain.compliance import failed_summary, summarize
from patchfleet.domain.evaluate import evaluate, evaluation_warnings
from patchfleet.domain.facts import NodeFacts, OsInfo
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.pending import PendingInstalls, mark_pending
from patchfleet.domain.records import PatchRecord
from patchfleet.domain.results import NodeResult
from patchfleet.domain.rollout import cutoff_reason, deadline_passed
from patchfleet.domain.snapshot import Snapshot, apply_snapshot
from patchfleet.errors import NodeError, PatchfleetError
from patchfleet.managers.base import CollectOptions
from patchfleet.managers.common import collect_os
from patchfleet.managers.registry import collect_facts
from patchfleet.ops.post_install import PostInstallState, collect_post_install
from patchfleet.transport.base import Connector

log = logging.getLogger("patchfleet.ops.scan")

ProgressCallback = Callable[[NodeResult, int, int], None]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    collect: CollectOptions = field(default_factory=CollectOptions)
    baseline_overrides: dict[str, Baseline] = field(default_factory=dict)
    """OperatingSystem -> baseline that replaces selection for nodes of that OS (AWS
    BaselineOverride: the entry matching the node's OS is used)."""
    patch_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    concurrency: int = 50
    first_seen: Mapping[tuple[str, str], datetime] | None = None
    """(package, version) -> first time any scan saw it offered (from the store); the release
    date apt rules with approve_after_days count from (patchfleet extension)."""

    post_state: bool = False
    """Also report processes running replaced files and competing auto-updaters (three more
    read-only commands per node; the CLI and flows turn it on)."""
    snapshot: Snapshot | None = None
    """A frozen approved set (SnapshotId): nodes of a group it covers are judged by it."""
    pending: Mapping[str, PendingInstalls] = field(default_factory=dict)
    """node_id -> what earlier installs left pending a reboot (from the store)."""

    now: datetime | None = None
    """Evaluate approval delays as of this time instead of the scan's own clock (reproducible
    evaluations, tests)."""

    def with_concurrency(self, concurrency: int) -> ScanOptions:
        return replace(self, concurrency=concurrency)


def failed_result(node: ResolvedNode, started: datetime, reason: str,
                  facts: NodeFacts | None = None, baseline_id: str | None = None, *,
                  os: OsInfo | None = None) -> NodeResult:
    """A node that could not be scanned: no records, no compliance claimed, the reason (and
    the platform, from the facts or the OS read before the failure)."""
    os = facts.os if facts else os
    return NodeResult(
        node_id=node.id,
        host=node.host,
        summary=failed_summary(),
        records=(),
        operation_start_time=started,
        operation_end_time=clock.now(),
        platform_name=os.name if os else None,
        platform_version=os.version_id if os else None,
        patch_group=node.patch_group,
        baseline_id=baseline_id,
        failure_reason=reason,
        tags=tuple(node.tags.items()),
    )


def judge(facts: NodeFacts, baseline: Baseline, node: ResolvedNode, options: ScanOptions,
          now: datetime | None = None) -> tuple[PatchRecord, ...]:
    """Evaluate a node's facts the way every scan does: the baseline with first-seen dates,
    then what earlier installs left pending a reboot, then the run's snapshot."""
    when = now or options.now or clock.now()
    records = mark_pending(evaluate(facts, baseline, when, options.first_seen),
                           options.pending.get(node.id), facts.reboot.boot_id)
    frozen = options.snapshot.entry(facts.os.operating_system, node.patch_group) \
        if options.snapshot else None
    return apply_snapshot(records, frozen) if frozen is not None else records


def node_result(node: ResolvedNode, facts: NodeFacts, baseline: Baseline,
                records: tuple[PatchRecord, ...], started: datetime,
                failure_reason: str | None = None) -> NodeResult:
    """The result of a node whose facts were gathered and judged."""
    return NodeResult(
        node_id=node.id,
        host=node.host,
        summary=summarize(records),
        records=records,
        operation_start_time=started,
        operation_end_time=clock.now(),
        platform_name=facts.os.name,
        platform_version=facts.os.version_id,
        patch_group=node.patch_group,
        baseline_id=baseline.name,
        failure_reason=failure_reason,
        warnings=facts.warnings + evaluation_warnings(facts),
        boot_id=facts.reboot.boot_id or None,
        operating_system=facts.os.operating_system,
        reboot_required=facts.reboot.required,
        reboot_required_packages=tuple(facts.reboot.packages) if facts.reboot.required else (),
        tags=tuple(node.tags.items()),
        baseline_hash=baseline_hash(baseline),
        facts=facts,
    )


def select_baseline(
    registry: BaselineRegistry, os: OsInfo, node: ResolvedNode, options: ScanOptions
) -> Baseline:
    override = options.baseline_overrides.get(os.operating_system)
    if override is not None:
        return override
    return registry.select(os.operating_system, node.patch_group, options.patch_groups)


def with_source(collect: CollectOptions, baseline: Baseline, os: OsInfo) -> CollectOptions:
    """``collect`` with the baseline's alternative source for the node's product, if any."""
    return replace(collect, source=baseline.source_for(os.product))


async def scan_node_full(
    node: ResolvedNode,
    registry: BaselineRegistry,
    connector: Connector,
    options: ScanOptions,
    now: datetime | None = None,
) -> tuple[NodeResult, NodeFacts | None, Baseline | None]:
    """Scan one node; also return the facts and baseline behind the result (None when the
    node could not be scanned). Every expected failure becomes a FAILED result with a reason."""
    started = clock.now()
    facts: NodeFacts | None = None
    os: OsInfo | None = None
    baseline: Baseline | None = None
    try:
        async with connector.open(node) as transport:
            os = await collect_os(transport)
            # the baseline before the packages: its source decides where they come from
            baseline = select_baseline(registry, os, node, options)
            facts = await collect_facts(transport, node.id, node.host, node_sudo=node.sudo,
                                        options=with_source(options.collect, baseline, os),
                                        os=os)
            post = await collect_post_install(
                transport, facts.os, {p.name for p in facts.installed}) \
                if options.post_state else None
        records = judge(facts, baseline, node, options, now)
    except NodeError as err:
        return failed_result(node, started, err.reason, facts, os=os,
                             baseline_id=baseline.name if baseline else None), None, None
    except PatchfleetError as err:
        return failed_result(node, started, f"ERROR: {err}", facts, os=os), None, None
    except OSError as err:  # a transport should map these; keep the run alive regardless
        return failed_result(node, started, f"UNREACHABLE: {err}", facts, os=os), None, None
    result = node_result(node, facts, baseline, records, started)
    if post is not None:
        result = with_post_state(result, post)
    return result, facts, baseline


def with_post_state(result: NodeResult, post: PostInstallState) -> NodeResult:
    """``result`` with the restart and auto-updater report (auto-updaters also as warnings)."""
    updaters = tuple(f"{name}: {detail}" for name, detail in post.auto_updaters.found)
    restart = tuple(
        f"{p.pid} {p.command} {p.file}".rstrip() for p in post.restarts.processes
    ) + tuple(f"service {s}" for s in post.restarts.services)
    # apt's timers alone only refresh lists (and run unattended-upgrades if that is active,
    # which is reported by its own name): warn about what installs packages
    notes = tuple(f"competing auto-updater {name}: {detail}"
                  for name, detail in post.auto_updaters.found
                  if not name.startswith("apt-daily")) + post.warnings
    return replace(result, restart_needed=restart, auto_updaters=updaters,
                   warnings=result.warnings + notes)


async def scan_node(
    node: ResolvedNode,
    registry: BaselineRegistry,
    connector: Connector,
    options: ScanOptions,
    now: datetime | None = None,
) -> NodeResult:
    """Scan one node. Every expected failure becomes a FAILED result with a reason."""
    result, _, _ = await scan_node_full(node, registry, connector, options, now)
    return result


async def scan_each(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    options: ScanOptions,
    connector: Connector,
    *,
    deadline: datetime | None = None,
) -> AsyncIterator[tuple[int, NodeResult]]:
    """Scan many nodes concurrently (at most ``options.concurrency`` at once) and yield
    ``(index in nodes, result)`` as each node finishes, so a caller can write results away
    and hold none of them.

    ``deadline`` (aware, wall clock): a node whose turn comes at or after it is not scanned; its
    result is FAILED with a ``TIMED_OUT:`` reason.
    """
    sem = asyncio.Semaphore(max(1, options.concurrency))
    # A node keeps its slot until the caller has taken its result: results never pile up here
    # (a replayed scan never waits, so without this every result would queue before the
    # caller ran), and the tasks hold none once yielded.
    finished: asyncio.Queue[tuple[int, NodeResult] | Exception] = asyncio.Queue(maxsize=1)

    async def one(index: int, node: ResolvedNode) -> None:
        async with sem:
            t0 = time.perf_counter()
            now = datetime.now(UTC)
            try:
                if deadline is not None and deadline_passed(deadline, now):
                    result = failed_result(node, now, cutoff_reason(
                        deadline, "before this node's scan started"))
                else:
                    result = await scan_node(node, registry, connector, options)
            except Exception as err:  # a bug (e.g. an unrecorded replay): the caller gets it
                await finished.put(err)
                return
            log.debug("scanned %s in %.2fs", node.id, time.perf_counter() - t0)
            await finished.put((index, result))

    tasks = [asyncio.create_task(one(i, n)) for i, n in enumerate(nodes)]
    try:
        for _ in tasks:
            item = await finished.get()
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def scan_nodes(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    options: ScanOptions,
    connector: Connector,
    *,
    progress: ProgressCallback | None = None,
    deadline: datetime | None = None,
) -> list[NodeResult]:
    """Scan many nodes concurrently (see :func:`scan_each`); the results in input order."""
    results: list[NodeResult | None] = [None] * len(nodes)
    done = 0
    async for index, result in scan_each(nodes, registry, options, connector,
                                         deadline=deadline):
        results[index] = result
        done += 1
        if progress is not None:
            progress(result, done, len(nodes))
    return [r for r in results if r is not None]
