"""Scan and install on one node (:func:`rollout_node`), and a rate-controlled rollout over many
(:func:`run_rollout`). Nodes are reached through the caller's Connector. No Prefect here.

One node follows AWS-RunPatchBaselineWithHooks (spec §3.2): scan; if nothing is missing and
nothing is pending a reboot, go straight to the on-exit hook; otherwise the pre-install hook
(a failure skips the install), install the approved missing set, the post-install hook, the
reboot decision (``RebootIfNeeded``, ``NoReboot``, patchfleet's ``RebootIfRequired``), reboot
and wait for a new boot id, rescan, and the on-exit hook, which always runs.

Many nodes follow AWS rate control: at most ``max_concurrency`` nodes at once, and once more
than ``max_errors`` nodes have failed no new node starts; running ones finish and the rest are
recorded as ``NOT_ATTEMPTED``.

A deadline (``InstallOptions.deadline``: a CANCEL_TASK maintenance window's cutoff) stops work at
safe points, never in the middle of a package transaction: from the deadline no node starts (the
rest are recorded FAILED, ``TIMED_OUT: ...``), and a node in progress skips the pre-install hook
and install, or the reboot, if the deadline has passed when it gets there (its scan result, or
its installed packages pending a reboot, stand). The on-exit hook still runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from patchfleet.config.hooks import HookPhase, Hooks
from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.compliance import failed_summary
from patchfleet.domain.install_override import InstallOverrideList
from patchfleet.domain.install_plan import InstallPlan, plan_install
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import NodeResult
from patchfleet.domain.rollout import (
    NodeRunState,
    Rate,
    Rollout,
    cutoff_reason,
    deadline_passed,
    seconds_left,
)
from patchfleet.errors import NodeBusyError, NodeError
from patchfleet.managers.base import PackageSpec
from patchfleet.ops.hooks import HookResult, run_node_hook
from patchfleet.ops.install import InstallRequest, install_node
from patchfleet.ops.post_install import collect_post_install
from patchfleet.ops.reboot import decide_reboot, reboot_and_wait
from patchfleet.ops.scan import ScanOptions, failed_result, scan_node_full, with_post_state
from patchfleet.transport.base import Connector

log = logging.getLogger("patchfleet.ops.rollout")

_CUTOFF = "the maintenance window's cutoff passed (CANCEL_TASK)"


@dataclass(frozen=True, slots=True)
class InstallOptions:
    reboot_option: str = "RebootIfNeeded"
    hooks: Hooks = field(default_factory=Hooks)
    override: InstallOverrideList | None = None
    dry_run: bool = False
    reboot_timeout: float = 600
    run_id: str = ""
    snapshot_id: str | None = None
    deadline: datetime | None = None
    """Aware wall-clock instant (a CANCEL_TASK window's cutoff) after which no node starts and
    nodes in progress start no install and no reboot; None: no deadline."""


@dataclass(frozen=True, slots=True)
class RolloutNodeResult:
    result: NodeResult
    plan: tuple[str, ...] = ()
    """The plan's lines (what would be / was installed)."""
    hooks: tuple[HookResult, ...] = ()
    rebooted: bool = False
    reboot_reason: str = ""

    @property
    def ok(self) -> bool:
        """Counts as a success for rate control: scanned, installed, hooks passed."""
        return not self.result.failed and self.result.failure_reason is None


def _with_failure(result: NodeResult, reason: str) -> NodeResult:
    joined = f"{result.failure_reason}; {reason}" if result.failure_reason else reason
    return replace(result, failure_reason=joined)


async def _hook(node: ResolvedNode, connector: Connector, phase: HookPhase,
                options: InstallOptions) -> HookResult | None:
    spec = options.hooks.get(phase)
    if spec is None:
        return None
    return await run_node_hook(node, connector, phase, spec, run_id=options.run_id,
                               operation="Install", snapshot_id=options.snapshot_id)


def _late(options: InstallOptions, what: str) -> str | None:
    """The TIMED_OUT reason when the deadline has passed, else None."""
    if options.deadline is None or not deadline_passed(options.deadline, datetime.now(UTC)):
        return None
    return cutoff_reason(options.deadline, what)


def _request(plan: InstallPlan, lock_timeout: int) -> InstallRequest:
    return InstallRequest(
        packages=tuple(PackageSpec(i.name, i.arch, i.to_version) for i in plan.items),
        block=plan.block,
        lock_timeout=lock_timeout,
    )


async def rollout_node(
    node: ResolvedNode,
    registry: BaselineRegistry,
    connector: Connector,
    scan_options: ScanOptions,
    options: InstallOptions,
) -> RolloutNodeResult:
    """Scan and install one node. Every expected failure is recorded, never raised.

    Every connection of the run uses the install identity (when the inventory sets one): the
    scans before and after are part of the Install operation, so a worker that installs needs
    only the install key, and a scan worker never holds it."""
    started = datetime.now(UTC)
    node = node.for_install()
    scanned, facts, baseline = await scan_node_full(node, registry, connector, scan_options)
    if facts is None or baseline is None:
        return RolloutNodeResult(scanned)
    plan = plan_install(facts, scanned.records, baseline, options.override)
    lines = tuple(plan.describe())
    pending = scanned.summary.installed_pending_reboot_count
    if options.dry_run:
        return RolloutNodeResult(scanned, plan=lines)

    hooks: list[HookResult] = []

    async def hook(phase: HookPhase) -> HookResult | None:
        res = await _hook(node, connector, phase, options)
        if res is not None:
            hooks.append(res)
        return res

    result = scanned
    installed_count = 0
    os_says_required: bool | None = None
    skip_reason = ""
    has_pre = options.hooks.get("pre_install") is not None
    skipped = "install not started" if not plan.empty else "the pending reboot not done"
    if plan.empty and not pending:
        skip_reason = "nothing to install and nothing pending a reboot"
    elif late := _late(options, f"before the {'pre-install hook' if has_pre else 'install'}; "
                       f"{skipped}"):
        result, skip_reason = _with_failure(result, late), _CUTOFF
    else:
        pre = await hook("pre_install")
        if pre is not None and not pre.ok:
            result = _with_failure(result, f"PRE_INSTALL_HOOK: {pre.reason}; install skipped")
            skip_reason = "pre-install hook failed"
        elif has_pre and (late := _late(options, f"during the pre-install hook; {skipped}")):
            result, skip_reason = _with_failure(result, late), _CUTOFF
    if not skip_reason:
        if not plan.empty:
            done = await install_node(node, connector, baseline, _request(plan,
                                      scan_options.collect.lock_timeout),
                                      options=scan_options)
            result = done.result
            installed_count = len(done.installed)
            os_says_required = done.outcome.reboot_required
        post = await hook("post_install")
        if post is not None and not post.ok:
            result = _with_failure(result, f"POST_INSTALL_HOOK: {post.reason}")
            skip_reason = "post-install hook failed"

    rebooted, reboot_reason = False, skip_reason
    # AWS: a failed install jumps to on-exit. Held packages are the operator's choice, not a
    # failure of the install: the rest was installed and may need its reboot.
    if result.failure_reason and not result.failure_reason.startswith("HELD:") \
            and not skip_reason:
        skip_reason = reboot_reason = "the install failed; no reboot"
    if not skip_reason and not result.failed:
        decision = decide_reboot(options.reboot_option, installed_count,
                                 result.summary.installed_pending_reboot_count, os_says_required)
        reboot_reason = decision.reason
        late = _late(options, "before the reboot; not rebooted, the installed packages stay "
                     "INSTALLED_PENDING_REBOOT") if decision.reboot else None
        if late:
            result = _with_failure(result, late)
            reboot_reason = f"{decision.reason}; not rebooted: {_CUTOFF}"
            if installed_count:  # the install ended without its reboot, as with NoReboot
                result = replace(result, last_no_reboot_install_operation_time=datetime.now(UTC))
        # at most one reboot per node and run: the boot-loop guard
        elif decision.reboot:
            try:
                await reboot_and_wait(node, connector,
                                      timeout=options.reboot_timeout,
                                      boot_id_before=scanned.boot_id)
                rebooted = True
                result, _, _ = await scan_node_full(node, registry, connector,
                                                    replace(scan_options, pending={}))
            except NodeError as err:
                result = _with_failure(result, err.reason)
        elif installed_count and options.reboot_option == "NoReboot":
            result = replace(result, last_no_reboot_install_operation_time=datetime.now(UTC))

    if installed_count and not rebooted and not result.failed and scan_options.post_state:
        try:  # what still runs the replaced files, after the install
            async with connector.open(node) as transport:
                os_info = facts.os
                result = with_post_state(replace(result, restart_needed=(), auto_updaters=()),
                                         await collect_post_install(
                                             transport, os_info,
                                             {p.name for p in facts.installed}))
        except NodeError as err:
            result = replace(result, warnings=(*result.warnings,
                                               f"post-install report: {err.reason}"))

    exit_hook = await hook("on_exit")
    if exit_hook is not None and not exit_hook.ok:
        result = _with_failure(result, f"ON_EXIT_HOOK: {exit_hook.reason}")
    result = replace(result, operation_start_time=started,
                     operation_end_time=datetime.now(UTC))
    log.info("%s: %s (%s)", node.id, result.summary.status.value, reboot_reason)
    return RolloutNodeResult(result, plan=lines, hooks=tuple(hooks), rebooted=rebooted,
                             reboot_reason=reboot_reason)


def unstarted(node: ResolvedNode, reason: str, at: datetime | None = None
              ) -> RolloutNodeResult:
    """A node the rollout never started: FAILED, no records, ``reason`` as failure_reason;
    ``at`` (default now) is when it was given up."""
    now = at or datetime.now(UTC)
    return RolloutNodeResult(NodeResult(
        node_id=node.id, host=node.host, summary=failed_summary(), records=(),
        operation_start_time=now, operation_end_time=now, patch_group=node.patch_group,
        failure_reason=reason))


def not_attempted(node: ResolvedNode, why: str) -> RolloutNodeResult:
    return unstarted(node, f"NOT_ATTEMPTED: {why}")


NodeGuard = Callable[[str], AbstractAsyncContextManager[object]]
"""Per-node mutual exclusion around a node's scan-and-install (see tasks/locks.py)."""


async def _guarded(node: ResolvedNode, registry: BaselineRegistry, connector: Connector,
                   scan_options: ScanOptions, options: InstallOptions,
                   guard: NodeGuard | None) -> RolloutNodeResult:
    if guard is None:
        return await rollout_node(node, registry, connector, scan_options, options)
    started = datetime.now(UTC)
    try:
        async with guard(node.id):
            return await rollout_node(node, registry, connector, scan_options, options)
    except NodeBusyError as err:
        log.warning("%s: %s", node.id, err.reason)
        return RolloutNodeResult(failed_result(node, started, err.reason))


async def run_rollout(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    scan_options: ScanOptions,
    options: InstallOptions,
    connector: Connector,
    *,
    max_concurrency: int | Rate,
    max_errors: int | Rate,
    progress: Callable[[RolloutNodeResult, int, int], None] | None = None,
    guard: NodeGuard | None = None,
) -> list[RolloutNodeResult]:
    """Scan-and-install ``nodes`` under AWS rate control, results in input order.

    ``guard(node_id)``, when given, is entered around each node's work (the flow passes the
    per-node lock on the Prefect server); a :class:`NodeBusyError` from it records the node
    FAILED ``BUSY: ...`` and the rollout goes on.

    With ``options.deadline`` the rollout halts at the deadline even while every running node
    is still busy; the nodes it never started are recorded TIMED_OUT.
    """
    by_id = {n.id: n for n in nodes}
    rollout = Rollout([n.id for n in nodes], max_concurrency, max_errors)
    deadline = options.deadline
    results: dict[str, RolloutNodeResult] = {}
    running: dict[asyncio.Task[RolloutNodeResult], str] = {}
    halted_at: datetime | None = None
    while not rollout.done:
        now = datetime.now(UTC)
        if deadline_passed(deadline, now) and not rollout.stopped:
            log.warning("the deadline %s passed: no further node starts", deadline)
            rollout.halt("deadline", timed_out=True)
            halted_at = now
        for node_id in rollout.start_next():
            task = asyncio.create_task(_guarded(by_id[node_id], registry, connector,
                                                scan_options, options, guard))
            running[task] = node_id
        if not running:
            continue  # halted with nothing running: the rollout is done
        wake = None if rollout.stopped else seconds_left(deadline, datetime.now(UTC))
        finished, _ = await asyncio.wait(running, timeout=wake,
                                         return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            node_id = running.pop(task)
            res = task.result()
            results[node_id] = res
            rollout.finish(node_id, res.ok)
            if progress is not None:
                progress(res, len(results), len(nodes))
    why = (f"more than {rollout.max_errors} node(s) failed (max errors), so the rollout "
           "stopped before this node started")

    def never_started(node: ResolvedNode) -> RolloutNodeResult:
        if deadline is not None and rollout.state(node.id) is NodeRunState.TIMED_OUT:
            return unstarted(node, cutoff_reason(deadline, "before this node started"),
                             halted_at)
        return not_attempted(node, why)

    return [results.get(n.id) or never_started(n) for n in nodes]
