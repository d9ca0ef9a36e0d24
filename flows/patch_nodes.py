"""Flow: run AWS-RunPatchBaseline's operation on a set of nodes.

Parameters mirror AWS-RunPatchBaseline where they apply (``operation`` Scan or Install,
``snapshot_id``, ``baseline_override``, ``reboot_option``, ``install_override_list``) plus what an
agentless tool needs (``inventory``, ``targets``, ``store``, hooks, rate control): the fields of
:class:`~patchfleet.domain.requests.PatchRequest`, typed with its enums so the server refuses a
bad value when the run is created. The first step builds that request; the rest is
orchestration of tasks: plan, resolve targets, snapshot, then a Scan fanned out by tasks that
each take a batch of nodes (asyncio inside), or an Install as one rate-controlled rollout task,
since its error threshold counts across every node. Nodes' rows go to the run's staging area as
they are scanned (:mod:`patchfleet.store.staging`); tasks exchange that handle and counts, never
node results. From there they land in the Parquet store and the all-nodes CSV report, and the
flow publishes a table artifact with one row per node and a markdown summary. It returns a
:class:`~patchfleet.ops.summary.RunSummary`.

Targets are resolved when the run starts (dynamic scopes): ``os:`` selectors read the OS of
nodes that don't declare one (:mod:`patchfleet.ops.targeting`), then the run is renamed to say what
it does (``[label ]operation-N-nodes``). An Install holds each node's lock on the Prefect server
while it works on that node (:mod:`tasks.locks`): two runs never install on one node at once.
Every task that contacts nodes gets the run's connector (:mod:`tasks.connect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run
from prefect.states import Failed

from patchfleet.domain import records
from patchfleet.domain.requests import ExecutionType, Operation, PatchRequest, RebootOption
from patchfleet.domain.results import RunContext
from patchfleet.errors import ConfigError
from patchfleet.ops import progress, run_markers
from patchfleet.ops.audit_trail import audit, run_entry, staged_baselines
from patchfleet.ops.batches import BatchCounts, BatchLayout
from patchfleet.ops.plan import InstallSettings, RunPlan, install_rates
from patchfleet.ops.shards import record_lost_shard, shard_count, shard_spans
from patchfleet.ops.summary import RunSummary
from patchfleet.store.shard_exchange import ShardExchange, shard_label
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.connect import open_connector
from tasks.handles import Opaque
from tasks.install import install_rollout
from tasks.locks import ensure_node_limits
from tasks.plan import plan_run
from tasks.publish import publish_artifacts, summarize_dry_run
from tasks.scan import scan_batch
from tasks.shards import run_shard
from tasks.snapshot import extend_snapshot, freeze_snapshot, load_run_snapshot
from tasks.store import discard_staging, store_results, write_reports
from tasks.targets import resolve_targets


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
    operation: Operation = Operation.SCAN,
    targets: str = "*",
    inventory: str | None = None,
    baseline_override: str | dict[str, str] | None = None,
    snapshot_id: str | None = None,
    store: str | None = None,
    baselines_dir: str | None = None,
    refresh: bool = True,
    concurrency: int = 50,
    batch_size: int = 100,
    lock_timeout: int = 60,
    report_dir: str | None = None,
    reboot_option: RebootOption = RebootOption.REBOOT_IF_NEEDED,
    install_override_list: str | None = None,
    hooks: str | None = None,
    max_concurrency: str | None = None,
    max_errors: str | None = None,
    dry_run: bool = False,
    execution_type: ExecutionType = ExecutionType.COMMAND,
    deadline: str | None = None,
    label: str | None = None,
    node_lock_timeout: float = 3600,
    reports: bool = True,
    report_uri: str | None = None,
    shards: int = 1,
    shard_size: int = 0,
    shard_deployment: str = "patch-nodes/shard",
    shard_timeout: float = 21600,
    shard: str | None = None,
) -> RunSummary:
    """Scan (or scan and install on) the targeted nodes and record their compliance.

    ``deadline`` (ISO-8601 with offset; a CANCEL_TASK maintenance window's cutoff): from then on
    no node starts (those are recorded FAILED, ``TIMED_OUT: ...``) and nodes in progress start
    no install and no reboot. ``label`` prefixes the run's name (a policy or window task);
    ``node_lock_timeout`` is how long an Install waits for a node another run is installing on
    (then the node is FAILED ``BUSY: ...`` and the rollout goes on);
    ``reports=False`` skips the CSV reports (the store is always written); ``report_uri``
    (``s3://bucket/prefix``) uploads them to ``prefix/date=.../run_id=.../``.
    ``baseline_override`` may also map OperatingSystem -> baseline name (a policy's baselines).
    ``shards`` > 1 (Scan only) splits the targets into that many runs of ``shard_deployment``
    that any worker of its pool may take, all writing through the shared ``store``; this run
    waits up to ``shard_timeout`` seconds for each, then commits and reports them as one run
    (``shard`` is what it sets on its shards). ``shard_size`` instead caps the nodes per shard
    (shards = ceil(targets / shard_size)); a run that comes to one shard is not sharded.
    """
    request = PatchRequest(
        operation=operation, targets=targets, inventory=inventory,
        baseline_override=baseline_override, snapshot_id=snapshot_id, store=store,
        baselines_dir=baselines_dir, refresh=refresh, concurrency=concurrency,
        batch_size=batch_size, lock_timeout=lock_timeout, report_dir=report_dir,
        reboot_option=reboot_option, install_override_list=install_override_list, hooks=hooks,
        max_concurrency=max_concurrency, max_errors=max_errors, dry_run=dry_run,
        execution_type=execution_type, deadline=deadline, label=label,
        node_lock_timeout=node_lock_timeout, reports=reports, report_uri=report_uri,
        shards=shards, shard_size=shard_size, shard_deployment=shard_deployment,
        shard_timeout=shard_timeout, shard=shard,
    )
    return await run_request(request)


async def run_request(request: PatchRequest) -> RunSummary:
    """The body of a ``patch-nodes`` run (inside the flow): plan, targets, snapshot, then the
    scan or the install; the nodes' rows go through the run's staging area, never through
    task parameters or results. A run started from the CLI is marked on this machine while it
    runs (ops/run_markers.py: a kill -9 is found and the run marked Crashed later) and its
    summary is kept in this process (the CLI reports it even if Prefect fails afterwards)."""
    run_id = str(flow_run.id or uuid.uuid4())
    with contextlib.nullcontext() if deployment.id else run_markers.marked(run_id):
        summary = await _run_request(request, run_id)
    if isinstance(summary, RunSummary):
        progress.finished(summary)
    return summary


async def _run_request(request: PatchRequest, run_id: str) -> RunSummary:
    outcome = plan_run(request, run_id, deployment=bool(deployment.id))
    if isinstance(outcome, str):
        # A deployment run with bad input: one line naming the parameter, no traceback; the
        # run ends Failed with that message (a CLI run raised in plan_run instead).
        get_run_logger().error(outcome)
        return cast(RunSummary, Failed(message=outcome))
    plan, settings = outcome
    candidates = len(plan.nodes)
    ctx = RunContext(
        run_id=run_id,
        operation=records.Operation.INSTALL if request.install else records.Operation.SCAN,
        started_at=datetime.now(UTC),
        snapshot_id=request.snapshot_id,
        reboot_option=request.reboot_option.value if request.install else None,
        execution_type=request.execution_type,
        inventory_source=request.inventory or "local",
        label=request.label,
    )
    if (shard_of := request.shard_of) is not None:
        return await _run_shard(request, plan, *shard_of)
    staging = StagingArea.of(plan.store_root, run_id)
    connector = open_connector()
    try:
        chosen = await resolve_targets(Opaque(plan.nodes), request.targets, connector,
                                       plan.options.concurrency, staging, ctx)
        plan = replace(plan, nodes=chosen.kept)
        total = len(plan.nodes) + chosen.failed
        await _rename(f"{request.label + ' ' if request.label else ''}"
                      f"{request.operation.value.lower()}-{total}-node"
                      f"{'' if total == 1 else 's'}")
        if settings is not None and len(plan.nodes) != candidates:
            # Patch now's default rates depend on how many nodes are really targeted
            rates = install_rates(len(plan.nodes), request.max_concurrency, request.max_errors)
            settings = replace(settings, max_concurrency=rates[0], max_errors=rates[1])
        if request.snapshot_id:
            snapshot = load_run_snapshot(plan.store_root, request.snapshot_id)
            plan = replace(plan, options=replace(plan.options, snapshot=snapshot))
        if settings is not None:
            return await _install(request, plan, settings, ctx, staging, connector)
        if request.sharded and (
                count := shard_count(len(plan.nodes), request.shards, request.shard_size)) > 1:
            return await _scan_sharded(request, plan, ctx, staging, count)
        return await _scan(request, plan, ctx, staging, connector)
    finally:
        connector.close()
        discard_staging(staging)


async def _scan_sharded(request: PatchRequest, plan: RunPlan, ctx: RunContext,
                        staging: StagingArea, count: int) -> RunSummary:
    """Run ``count`` shards as deployment runs, then store, report and publish them as one
    run."""
    logger = get_run_logger()
    exchange = ShardExchange.of(plan.store_root, ctx.run_id)
    spans = shard_spans(len(plan.nodes), count)
    for i, (start, end) in enumerate(spans):
        exchange.put_targets(i, [n.id for n in plan.nodes[start:end]], start)
    logger.info("scanning %d node(s) in %d shard(s) of %s, through store %s", len(plan.nodes),
                len(spans), request.shard_deployment, plan.store_root)
    base = request.model_copy(
        update={"shards": 1, "shard_size": 0, "label": None}).flow_parameters()
    try:
        outcomes = await asyncio.gather(*(
            run_shard(exchange, i, len(spans), request.shard_deployment,
                      {**base, "shard": f"{ctx.run_id}/{i}"}, request.shard_timeout)
            for i in range(len(spans))))
        for outcome, (start, end) in zip(outcomes, spans, strict=True):
            if outcome.counts is not None:
                exchange.collect(outcome.index, staging)
                continue
            logger.warning("%s", outcome.reason)
            exchange.discard(outcome.index, staging)
            record_lost_shard(staging, ctx, outcome.index, plan.nodes[start:end], start,
                              ctx.started_at, outcome.reason)
        if request.snapshot_id:
            extend_snapshot(plan.store_root, request.snapshot_id,
                            Opaque(plan.options.snapshot), staging)
        return await _record(request, plan, ctx, staging)
    finally:
        exchange.remove()


async def _run_shard(request: PatchRequest, plan: RunPlan, parent: str,
                     index: int) -> RunSummary:
    """One shard of a sharded scan: the nodes its parent listed, staged for the parent to
    commit (nothing is committed or reported here)."""
    exchange = ShardExchange.of(plan.store_root, parent)
    ids, first = exchange.targets(index)
    by_id = {n.id: n for n in plan.nodes}
    if missing := [i for i in ids if i not in by_id]:
        raise ConfigError(
            f"shard {index + 1} of run {parent}: {len(missing)} of its nodes are not in this "
            f"worker's inventory ({', '.join(missing[:5])}); give every worker the same "
            "inventory as the parent run", source="inventory")
    ctx = RunContext(run_id=parent, operation=records.Operation.SCAN,
                     started_at=datetime.now(UTC), snapshot_id=request.snapshot_id,
                     execution_type=request.execution_type,
                     inventory_source=request.inventory or "local", label=request.label)
    if request.snapshot_id:
        snapshot = load_run_snapshot(plan.store_root, request.snapshot_id)
        plan = replace(plan, options=replace(plan.options, snapshot=snapshot))
    plan = replace(plan, nodes=[by_id[i] for i in ids])
    staging = exchange.shard_area(index)
    connector = open_connector()
    try:
        counts = await _scan_batches(request, plan, ctx, staging, connector, first,
                                     shard_label(index))
        exchange.publish(index, staging, {"nodes": counts.nodes, "compliant": counts.compliant,
                                          "non_compliant": counts.non_compliant,
                                          "failed": counts.failed})
    finally:
        connector.close()
        if staging != exchange.parent_area():
            discard_staging(staging)
    return RunSummary(run_id=parent, operation=ctx.operation.value, node_count=counts.nodes,
                      compliant=counts.compliant, non_compliant=counts.non_compliant,
                      failed=counts.failed, store=str(plan.store_root))


async def _scan(request: PatchRequest, plan: RunPlan, ctx: RunContext, staging: StagingArea,
                connector: Connector) -> RunSummary:
    await _scan_batches(request, plan, ctx, staging, connector)
    if request.snapshot_id:
        extend_snapshot(plan.store_root, request.snapshot_id, Opaque(plan.options.snapshot),
                        staging)
    return await _record(request, plan, ctx, staging)


async def _scan_batches(request: PatchRequest, plan: RunPlan, ctx: RunContext,
                        staging: StagingArea, connector: Connector, first_ordinal: int = 0,
                        label_prefix: str = "") -> BatchCounts:
    """Scan ``plan.nodes`` batch by batch into ``staging`` (ordinals from ``first_ordinal``)."""
    logger = get_run_logger()
    nodes = plan.nodes
    layout = BatchLayout.of(len(nodes), request.batch_size, plan.options.concurrency)
    logger.info(
        "scanning %d node(s) from %s in %d batch(es), up to %d at once",
        len(nodes), plan.inventory_source, len(layout.starts), layout.max_nodes_at_once,
    )
    registry = Opaque(plan.registry)
    options = Opaque(plan.options.with_concurrency(layout.per_batch))
    slots = asyncio.Semaphore(layout.in_flight)

    async def batch(i: int, start: int) -> BatchCounts:
        async with slots:
            return await scan_batch(Opaque(nodes[start : start + layout.size]), registry,
                                    options, connector, staging, ctx, first_ordinal + start,
                                    f"batch {i + 1}/{len(layout.starts)} ", request.deadline,
                                    label_prefix)

    counts = await asyncio.gather(*(batch(i, start) for i, start in enumerate(layout.starts)))
    return sum(counts, BatchCounts())


def _audit(request: PatchRequest, plan: RunPlan, ctx: RunContext, staging: StagingArea,
           summary: RunSummary, *, dry_run: bool = False, stopped: bool = False) -> None:
    """Append the run to the store's audit trail (who, what, outcome)."""
    entry = run_entry(ctx, summary, targets=request.targets, target_count=len(plan.nodes),
                      baselines=staged_baselines(staging), dry_run=dry_run, stopped=stopped,
                      flow_run_id=str(flow_run.id) if flow_run.id else None,
                      deployment=deployment.name if deployment.id else None)
    audit(plan.store_root, entry)


async def _record(request: PatchRequest, plan: RunPlan, ctx: RunContext,
                  staging: StagingArea, stopped: bool = False) -> RunSummary:
    """Store, report and publish a run's staged rows; the summary says where they went."""
    written = store_results(plan.store_root, ctx, staging)
    report = (write_reports(plan.store_root, ctx, staging, request.report_dir,
                            request.report_uri) if request.reports else {})
    # The run's work is done: if Prefect fails from here on, the CLI can still say where it is
    progress.finished(RunSummary(
        run_id=ctx.run_id, operation=ctx.operation.value, store=str(plan.store_root),
        patch_states_file=str(written.patch_states_path),
        node_summaries_file=str(written.node_summaries_path),
        report_folder=report.get("folder")))
    summary = await publish_artifacts(ctx, staging, written, report, str(plan.store_root))
    _audit(request, plan, ctx, staging, summary, stopped=stopped)
    get_run_logger().info(
        "run %s: %d compliant, %d non-compliant, %d failed; store %s; reports %s",
        ctx.run_id, summary.compliant, summary.non_compliant, summary.failed,
        plan.store_root, report.get("folder", "not written"),
    )
    return summary


async def _install(request: PatchRequest, plan: RunPlan, settings: InstallSettings,
                   ctx: RunContext, staging: StagingArea, connector: Connector) -> RunSummary:
    logger = get_run_logger()
    dry_run = settings.options.dry_run
    lock_timeout: float | None = None
    if not dry_run and plan.nodes:
        created = await ensure_node_limits([n.id for n in plan.nodes])
        logger.info("each node is locked while it is patched (%d new lock(s)); a node another "
                    "run holds waits up to %g s", created, request.node_lock_timeout)
        lock_timeout = request.node_lock_timeout
        if request.snapshot_id:
            frozen = await freeze_snapshot(plan.store_root, request.snapshot_id,
                                           Opaque(plan.nodes), Opaque(plan.registry),
                                           Opaque(plan.options), connector)
            plan = replace(plan, options=replace(plan.options, snapshot=frozen))
    logger.info(
        "%s %d node(s): max concurrency %s, max errors %s, reboot option %s",
        "planning (dry run) for" if dry_run else "scanning and installing on",
        len(plan.nodes), settings.max_concurrency, settings.max_errors, ctx.reboot_option,
    )
    outcome = await install_rollout(Opaque(plan.nodes), Opaque(plan.registry),
                                    Opaque(plan.options), Opaque(settings), connector, staging,
                                    ctx, request.deadline, lock_timeout)
    if dry_run:
        summary = summarize_dry_run(ctx, staging, Opaque(outcome.plans), outcome.stopped)
        _audit(request, plan, ctx, staging, summary, dry_run=True, stopped=outcome.stopped)
        return summary
    summary = await _record(request, plan, ctx, staging, stopped=outcome.stopped)
    return summary.model_copy(update={
        "plans": outcome.plans, "stopped": outcome.stopped, "rebooted": outcome.rebooted})
