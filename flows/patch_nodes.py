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
import math
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
from patchfleet.ops.plan import InstallSettings, RunPlan, install_rates
from patchfleet.ops.summary import RunSummary
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.connect import open_connector
from tasks.handles import Opaque
from tasks.install import install_rollout
from tasks.locks import ensure_node_limits
from tasks.plan import plan_run
from tasks.publish import publish_artifacts, summarize_dry_run
from tasks.scan import scan_batch
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
    )
    return await run_request(request)


async def run_request(request: PatchRequest) -> RunSummary:
    """The body of a ``patch-nodes`` run (inside the flow): plan, targets, snapshot, then the
    scan or the install; the nodes' rows go through the run's staging area, never through
    task parameters or results."""
    run_id = str(flow_run.id or uuid.uuid4())
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
    )
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
        return await _scan(request, plan, ctx, staging, connector)
    finally:
        connector.close()
        discard_staging(staging)


async def _scan(request: PatchRequest, plan: RunPlan, ctx: RunContext, staging: StagingArea,
                connector: Connector) -> RunSummary:
    logger = get_run_logger()
    nodes = plan.nodes
    size = max(1, request.batch_size)
    starts = range(0, len(nodes), size)
    per_batch = max(1, math.ceil(plan.options.concurrency / max(1, len(starts))))
    logger.info(
        "scanning %d node(s) from %s in %d batch(es), up to %d at once",
        len(nodes), plan.inventory_source, len(starts), per_batch * len(starts),
    )
    registry, options = Opaque(plan.registry), Opaque(plan.options.with_concurrency(per_batch))
    await asyncio.gather(*(
        scan_batch(Opaque(nodes[start : start + size]), registry, options, connector, staging,
                   ctx, start, f"batch {i + 1}/{len(starts)} ", request.deadline)
        for i, start in enumerate(starts)))
    if request.snapshot_id:
        extend_snapshot(plan.store_root, request.snapshot_id, Opaque(plan.options.snapshot),
                        staging)
    return await _record(request, plan, ctx, staging)


async def _record(request: PatchRequest, plan: RunPlan, ctx: RunContext,
                  staging: StagingArea) -> RunSummary:
    """Store, report and publish a run's staged rows; the summary says where they went."""
    written = store_results(plan.store_root, ctx, staging)
    report = (write_reports(plan.store_root, ctx, staging, request.report_dir,
                            request.report_uri) if request.reports else {})
    summary = await publish_artifacts(ctx, staging, written, report, str(plan.store_root))
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
        return summarize_dry_run(ctx, staging, Opaque(outcome.plans), outcome.stopped)
    summary = await _record(request, plan, ctx, staging)
    return summary.model_copy(update={
        "plans": outcome.plans, "stopped": outcome.stopped, "rebooted": outcome.rebooted})
