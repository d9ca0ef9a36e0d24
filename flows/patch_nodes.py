"""Flow: run AWS-RunPatchBaseline's operation on a set of nodes.

Parameters mirror AWS-RunPatchBaseline where they apply (``operation`` Scan or Install,
``snapshot_id``, ``baseline_override``, ``reboot_option``, ``install_override_list``) plus what an
agentless tool needs (``inventory``, ``targets``, ``store``, hooks, rate control). A Scan is
fanned out by tasks that each take a batch of nodes (asyncio inside); an Install is one
rate-controlled rollout task, since its error threshold counts across every node. The results
land in the Parquet store and the CSV reports, and the flow publishes a table artifact with one
row per node and a markdown summary.

Targets are resolved when the run starts (dynamic scopes): ``os:`` selectors read the OS of
nodes that don't declare one (:mod:`patchfleet.ops.targeting`), then the run is renamed to say what
it does (``[label ]operation-N-nodes``). An Install holds each node's lock on the Prefect server
while it works on that node (:mod:`tasks.locks`): two runs never install on one node at once.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from patchfleet.domain.records import ExecutionType, Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.domain.snapshot import extend
from patchfleet.domain.uris import normalize_s3_uri
from patchfleet.errors import ConfigError
from patchfleet.ops import summary as runsummary
from patchfleet.ops.plan import (
    InstallSettings,
    RunPlan,
    install_rates,
    plan_install_settings,
    plan_scan,
)
from patchfleet.ops.targeting import resolve_os_targets
from patchfleet.store.snapshot_files import load_snapshot, save_snapshot
from patchfleet.transport import KeyRing
from tasks.install import install_rollout
from tasks.locks import ensure_node_limits
from tasks.publish import publish_artifacts
from tasks.scan import scan_batch
from tasks.store import store_results, write_reports


def _deadline(value: str | None) -> datetime | None:
    if value is None:
        return None
    fix = ("pass deadline as ISO-8601 with a UTC offset, e.g. 2026-01-01T05:00:00+00:00, "
           "or leave it out for no deadline")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a date and time; {fix}", source="deadline") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{value!r} has no UTC offset; {fix}", source="deadline")
    return parsed.astimezone(UTC)


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    label = f"{params['label']} " if params.get("label") else ""
    return f"{label}{str(params.get('operation', 'Scan')).lower()}-{params.get('targets', '*')}"


async def _rename(name: str) -> None:
    """Give the running flow run its final name once the targets are known."""
    if flow_run.id is None:
        return
    async with get_client() as client:
        await client.update_flow_run(uuid.UUID(str(flow_run.id)), name=name)


@flow(name="patch-nodes", flow_run_name=_run_name, log_prints=False)
async def patch_nodes(
    operation: str = "Scan",
    targets: str = "*",
    inventory: str | None = None,
    baseline_override: str | None = None,
    snapshot_id: str | None = None,
    store: str | None = None,
    baselines_dir: str | None = None,
    refresh: bool = True,
    concurrency: int = 50,
    batch_size: int = 100,
    lock_timeout: int = 60,
    report_dir: str | None = None,
    reboot_option: str = "RebootIfNeeded",
    install_override_list: str | None = None,
    hooks: str | None = None,
    max_concurrency: str | None = None,
    max_errors: str | None = None,
    dry_run: bool = False,
    execution_type: str = "COMMAND",
    deadline: str | None = None,
    label: str | None = None,
    node_lock_timeout: float = 3600,
    reports: bool = True,
    report_uri: str | None = None,
) -> dict[str, Any]:
    """Scan the targeted nodes and record their compliance.

    ``deadline`` (ISO-8601 with offset; a CANCEL_TASK maintenance window's cutoff): from then on
    no node starts (those are recorded FAILED, ``TIMED_OUT: ...``) and nodes in progress start
    no install and no reboot. ``label`` prefixes the run's name (a policy or window task);
    ``node_lock_timeout`` is how long an Install waits for a node another run is installing on
    (then the node is FAILED ``BUSY: ...`` and the rollout goes on);
    ``reports=False`` skips the CSV reports (the store is always written); ``report_uri``
    (``s3://bucket/prefix``) uploads them to ``prefix/date=.../run_id=.../``.

    Returns a JSON-able summary: run id, node counts by status, store and report paths.
    """
    logger = get_run_logger()
    deadline_at = _deadline(deadline)
    if report_uri:  # a bad URI is bad input: refuse before anything is scanned or written
        normalize_s3_uri(report_uri, source="report_uri")
    plan = plan_scan(
        operation=operation,
        inventory=inventory,
        targets=targets,
        baseline=baseline_override,
        baselines_dir=baselines_dir,
        store=store,
        refresh=refresh,
        concurrency=concurrency,
        lock_timeout=lock_timeout,
    )
    run_id = str(flow_run.id or uuid.uuid4())
    install = operation == "Install"

    # bad install input fails before any node is contacted, even to read its OS
    settings = plan_install_settings(
        nodes=len(plan.nodes), reboot_option=reboot_option,
        install_override_list=install_override_list, baseline_override=baseline_override,
        hooks=hooks, max_concurrency=max_concurrency, max_errors=max_errors,
        dry_run=dry_run, run_id=run_id, snapshot_id=snapshot_id,
    ) if install else None
    candidates = len(plan.nodes)
    keys = KeyRing()
    try:
        chosen = await resolve_os_targets(plan.nodes, targets, keys,
                                          concurrency=plan.options.concurrency)
    finally:
        keys.close()
    if chosen.dropped:
        logger.info("targets %s: %d node(s) run another OS and are left out: %s", targets,
                    len(chosen.dropped), ", ".join(f"{k} ({v})" for k, v in
                                                   sorted(chosen.dropped.items())[:20]))
    plan = replace(plan, nodes=chosen.kept)
    unresolved = chosen.failed
    total = len(plan.nodes) + len(unresolved)
    await _rename(f"{label + ' ' if label else ''}{operation.lower()}-{total}-node"
                  f"{'' if total == 1 else 's'}")
    if settings is not None and len(plan.nodes) != candidates:
        # Patch now's default rates depend on how many nodes are really targeted
        rates = install_rates(len(plan.nodes), max_concurrency, max_errors)
        settings = replace(settings, max_concurrency=rates[0], max_errors=rates[1])
    ctx = RunContext(
        run_id=run_id,
        operation=Operation.INSTALL if install else Operation.SCAN,
        started_at=datetime.now(UTC),
        snapshot_id=snapshot_id,
        reboot_option=reboot_option if install else None,
        execution_type=ExecutionType(execution_type),
    )
    snapshot = load_snapshot(plan.store_root, snapshot_id) if snapshot_id else None
    plan = replace(plan, options=replace(plan.options, snapshot=snapshot))
    if settings is not None:
        if settings.options.dry_run or not plan.nodes:
            return await _install(plan, settings, ctx, report_dir,
                                  deadline_at, unresolved, reports, report_uri)
        created = await ensure_node_limits([n.id for n in plan.nodes])
        logger.info("each node is locked while it is patched (%d new lock(s)); a node another "
                    "run holds waits up to %g s", created, node_lock_timeout)
        if snapshot_id:
            plan = await _freeze_snapshot(plan, snapshot_id)
        return await _install(plan, settings, ctx, report_dir, deadline_at, unresolved,
                              reports, report_uri, node_lock_timeout)
    nodes = plan.nodes
    size = max(1, batch_size)
    batches = [nodes[i : i + size] for i in range(0, len(nodes), size)]
    per_batch = max(1, math.ceil(plan.options.concurrency / max(1, len(batches))))
    logger.info(
        "scanning %d node(s) from %s in %d batch(es), up to %d at once",
        len(nodes), plan.inventory_source, len(batches), per_batch * len(batches),
    )
    keys = KeyRing()
    options = plan.options.with_concurrency(per_batch)
    results: list[NodeResult] = []
    try:
        for part in await asyncio.gather(
            *(
                scan_batch(b, plan.registry, options, keys, f"batch {i + 1}/{len(batches)} ",
                           deadline_at)
                for i, b in enumerate(batches)
            )
        ):
            results.extend(part)
    finally:
        keys.close()
    results.extend(unresolved)

    if snapshot_id:
        frozen = extend(snapshot, snapshot_id, datetime.now(UTC), results)
        if frozen != snapshot:
            logger.info("snapshot %s saved to %s", snapshot_id,
                        save_snapshot(plan.store_root, frozen))
    written = store_results(plan.store_root, ctx, results)
    report = (write_reports(plan.store_root, ctx, results, report_dir, report_uri)
              if reports else {})
    summary = await publish_artifacts(ctx, results, written, report, str(plan.store_root))
    logger.info(
        "run %s: %d compliant, %d non-compliant, %d failed; store %s; reports %s",
        run_id, summary["compliant"], summary["non_compliant"], summary["failed"],
        plan.store_root, report.get("folder", "not written"),
    )
    return summary


async def _freeze_snapshot(plan: RunPlan, snapshot_id: str) -> RunPlan:
    """Scan the targets once and freeze every (OS, patch group) the snapshot lacks, so every
    node of the rollout is judged by the same approved set (AWS computes a snapshot once)."""
    logger = get_run_logger()
    keys = KeyRing()
    try:
        scanned = await scan_batch(plan.nodes, plan.registry, plan.options, keys,
                                   "snapshot scan ")
    finally:
        keys.close()
    snapshot = plan.options.snapshot
    frozen = extend(snapshot, snapshot_id, datetime.now(UTC), scanned)
    if frozen != snapshot:
        logger.info("snapshot %s saved to %s", snapshot_id,
                    save_snapshot(plan.store_root, frozen))
    return replace(plan, options=replace(plan.options, snapshot=frozen))


async def _install(plan: RunPlan, settings: InstallSettings, ctx: RunContext,
                   report_dir: str | None, deadline: datetime | None = None,
                   unresolved: list[NodeResult] | None = None,
                   reports: bool = True, report_uri: str | None = None,
                   node_lock_timeout: float | None = None) -> dict[str, Any]:
    logger = get_run_logger()
    logger.info(
        "%s %d node(s): max concurrency %s, max errors %s, reboot option %s",
        "planning (dry run) for" if settings.options.dry_run else "scanning and installing on",
        len(plan.nodes), settings.max_concurrency, settings.max_errors, ctx.reboot_option,
    )
    keys = KeyRing()
    try:
        done = await install_rollout(plan.nodes, plan.registry, plan.options, settings, keys,
                                     deadline, node_lock_timeout, ctx.run_id)
    finally:
        keys.close()
    results = [d.result for d in done] + list(unresolved or ())
    stopped = any((r.failure_reason or "").startswith("NOT_ATTEMPTED") for r in results)
    plans = {d.result.node_id: list(d.plan) for d in done}
    if settings.options.dry_run:
        return {"run_id": ctx.run_id, "operation": "Install", "dry_run": True,
                **runsummary.counts(results), "nodes": runsummary.node_rows(results),
                "plans": plans, "stopped": stopped}
    written = store_results(plan.store_root, ctx, results)
    report = (write_reports(plan.store_root, ctx, results, report_dir, report_uri)
              if reports else {})
    summary = await publish_artifacts(ctx, results, written, report, str(plan.store_root))
    summary.update(plans=plans, stopped=stopped,
                   rebooted=[d.result.node_id for d in done if d.rebooted])
    logger.info("run %s: %d compliant, %d non-compliant, %d failed%s", ctx.run_id,
                summary["compliant"], summary["non_compliant"], summary["failed"],
                "; the error threshold stopped the rollout" if stopped else "")
    return summary
