"""Scan and install on one node, and a rate-controlled rollout over many. No Prefect here.

One node follows AWS-RunPatchBaselineWithHooks (spec §3.2): scan; if nothing is missing and
nothing is pending a reboot, go straight to the on-exit hook; otherwise the pre-install hook
(a failure skips the install), install the approved missing set, the post-install hook, the
reboot decision (``RebootIfNeeded``, ``NoReboot``, patchfleet's ``RebootIfRequired``), reboot
and wait for a new boot id, rescan, and the on-exit hook, which always runs.

Many nodes follow AWS rate control: at most ``max_concurrency`` nodes at once, and once more
than ``max_errors`` nodes have failed no new node starts; running ones finish and the rest are
recorded as ``NOT_ATTEMPTED``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from patchfleet.collect_post import collect_post_install
from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.compliance import failed_summary
from patchfleet.domain.install_override import InstallOverrideList
from patchfleet.domain.install_plan import InstallPlan, plan_install
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import NodeResult
from patchfleet.domain.rollout import Rate, Rollout
from patchfleet.errors import NodeError
from patchfleet.hooks import HookPhase, HookResult, Hooks, run_hook
from patchfleet.install import InstallRequest, install_node
from patchfleet.install_commands import PackageSpec
from patchfleet.reboot import decide_reboot, reboot_and_wait
from patchfleet.scan import ScanOptions, scan_node_full, with_post_state
from patchfleet.transport import KeyRing, open_transport

log = logging.getLogger("patchfleet.patch")


@dataclass(frozen=True, slots=True)
class InstallOptions:
    reboot_option: str = "RebootIfNeeded"
    hooks: Hooks = field(default_factory=Hooks)
    override: InstallOverrideList | None = None
    dry_run: bool = False
    reboot_timeout: float = 600
    run_id: str = ""
    snapshot_id: str | None = None


@dataclass(frozen=True, slots=True)
class PatchNodeResult:
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


async def _hook(node: ResolvedNode, keys: KeyRing, phase: HookPhase, options: InstallOptions
                ) -> HookResult | None:
    spec = options.hooks.get(phase)
    if spec is None:
        return None
    try:
        async with open_transport(node, keys) as transport:
            return await run_hook(transport, phase, spec, run_id=options.run_id,
                                  node_id=node.id, operation="Install",
                                  snapshot_id=options.snapshot_id)
    except NodeError as err:
        return HookResult(phase=phase, ok=False, exit_status=None, output_tail="",
                          duration=0.0, reason=err.reason)


def _request(plan: InstallPlan, lock_timeout: int) -> InstallRequest:
    return InstallRequest(
        packages=tuple(PackageSpec(i.name, i.arch, i.to_version) for i in plan.items),
        block=plan.block,
        lock_timeout=lock_timeout,
    )


async def patch_node(
    node: ResolvedNode,
    registry: BaselineRegistry,
    keys: KeyRing,
    scan_options: ScanOptions,
    options: InstallOptions,
) -> PatchNodeResult:
    """Scan and install one node. Every expected failure is recorded, never raised."""
    started = datetime.now(UTC)
    scanned, facts, baseline = await scan_node_full(node, registry, keys, scan_options)
    if facts is None or baseline is None:
        return PatchNodeResult(scanned)
    plan = plan_install(facts, scanned.records, baseline, options.override)
    lines = tuple(plan.describe())
    pending = scanned.summary.installed_pending_reboot_count
    if options.dry_run:
        return PatchNodeResult(scanned, plan=lines)

    hooks: list[HookResult] = []

    async def hook(phase: HookPhase) -> HookResult | None:
        res = await _hook(node, keys, phase, options)
        if res is not None:
            hooks.append(res)
        return res

    result = scanned
    installed_count = 0
    os_says_required: bool | None = None
    skip_reason = ""
    if plan.empty and not pending:
        skip_reason = "nothing to install and nothing pending a reboot"
    else:
        pre = await hook("pre_install")
        if pre is not None and not pre.ok:
            result = _with_failure(result, f"PRE_INSTALL_HOOK: {pre.reason}; install skipped")
            skip_reason = "pre-install hook failed"
    if not skip_reason:
        if not plan.empty:
            done = await install_node(node, keys, baseline, _request(plan,
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
        # at most one reboot per node and run: the boot-loop guard
        if decision.reboot:
            try:
                await reboot_and_wait(node, keys, timeout=options.reboot_timeout,
                                      boot_id_before=scanned.boot_id)
                rebooted = True
                result, _, _ = await scan_node_full(node, registry, keys,
                                                    replace(scan_options, pending={}))
            except NodeError as err:
                result = _with_failure(result, err.reason)
        elif installed_count and options.reboot_option == "NoReboot":
            result = replace(result, last_no_reboot_install_operation_time=datetime.now(UTC))

    if installed_count and not rebooted and not result.failed and scan_options.post_state:
        try:  # what still runs the replaced files, after the install
            async with open_transport(node, keys) as transport:
                os_info = facts.os
                result = with_post_state(replace(result, restart_needed=(), auto_updaters=()),
                                         await collect_post_install(transport, os_info))
        except NodeError as err:
            result = replace(result, warnings=(*result.warnings,
                                               f"post-install report: {err.reason}"))

    exit_hook = await hook("on_exit")
    if exit_hook is not None and not exit_hook.ok:
        result = _with_failure(result, f"ON_EXIT_HOOK: {exit_hook.reason}")
    result = replace(result, operation_start_time=started,
                     operation_end_time=datetime.now(UTC))
    log.info("%s: %s (%s)", node.id, result.summary.status.value, reboot_reason)
    return PatchNodeResult(result, plan=lines, hooks=tuple(hooks), rebooted=rebooted,
                           reboot_reason=reboot_reason)


def not_attempted(node: ResolvedNode, why: str) -> PatchNodeResult:
    now = datetime.now(UTC)
    return PatchNodeResult(NodeResult(
        node_id=node.id, host=node.host, summary=failed_summary(), records=(),
        operation_start_time=now, operation_end_time=now, patch_group=node.patch_group,
        failure_reason=f"NOT_ATTEMPTED: {why}"))


async def patch_nodes(
    nodes: Sequence[ResolvedNode],
    registry: BaselineRegistry,
    scan_options: ScanOptions,
    options: InstallOptions,
    *,
    max_concurrency: int | Rate,
    max_errors: int | Rate,
    keys: KeyRing | None = None,
    progress: Callable[[PatchNodeResult, int, int], None] | None = None,
) -> list[PatchNodeResult]:
    """Scan-and-install ``nodes`` under AWS rate control, results in input order."""
    by_id = {n.id: n for n in nodes}
    rollout = Rollout([n.id for n in nodes], max_concurrency, max_errors)
    keyring = keys or KeyRing()
    results: dict[str, PatchNodeResult] = {}
    running: dict[asyncio.Task[PatchNodeResult], str] = {}
    try:
        while not rollout.done:
            for node_id in rollout.start_next():
                task = asyncio.create_task(patch_node(by_id[node_id], registry, keyring,
                                                      scan_options, options))
                running[task] = node_id
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                node_id = running.pop(task)
                res = task.result()
                results[node_id] = res
                rollout.finish(node_id, res.ok)
                if progress is not None:
                    progress(res, len(results), len(nodes))
    finally:
        if keys is None:
            keyring.close()
    why = (f"more than {rollout.max_errors} node(s) failed (max errors), so the rollout "
           "stopped before this node started")
    return [results.get(n.id) or not_attempted(n, why) for n in nodes]
