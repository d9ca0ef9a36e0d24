"""Running lifecycle hooks around an install (AWS-RunPatchBaselineWithHooks, section 3.2).

The hooks config (``pre_install``, ``post_install``, ``on_exit``: a ``command`` or a ``script``
each) and the command a hook becomes are :mod:`patchfleet.config.hooks`. Nothing from the config
is spliced into a shell string: every part of the command is quoted by
:class:`~patchfleet.transport.Command`.

Hooks run as root (privileged) with a timeout, and with ``PATCHFLEET_RUN_ID``,
``PATCHFLEET_NODE_ID``, ``PATCHFLEET_OPERATION`` and, when set, ``PATCHFLEET_SNAPSHOT_ID`` in
their environment. A result is ``ok`` (exit 0) or ``failed`` with the exit code (None when the
hook timed out) and the tail of its output.

:func:`hook_plan` is the pure step decision of the WithHooks flow (steps 1-8).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from patchfleet.config.hooks import HookPhase, HookSpec
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import CommandTimeout, ConfigError, NodeError
from patchfleet.ops.reboot import decide_reboot
from patchfleet.transport.base import Command, Connector, Transport

TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class HookResult:
    phase: str
    ok: bool
    exit_status: int | None
    """None when the hook was stopped at its timeout."""
    output_tail: str
    duration: float
    reason: str

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"


def hook_env(
    *, run_id: str, node_id: str, operation: str, snapshot_id: str | None = None
) -> tuple[tuple[str, str], ...]:
    env = [
        ("PATCHFLEET_RUN_ID", run_id),
        ("PATCHFLEET_NODE_ID", node_id),
        ("PATCHFLEET_OPERATION", operation),
    ]
    if snapshot_id:
        env.append(("PATCHFLEET_SNAPSHOT_ID", snapshot_id))
    return tuple(env)


def _tail(stdout: str, stderr: str, limit: int = TAIL_CHARS) -> str:
    text = stdout.rstrip("\n")
    if stderr.strip():
        text = f"{text}\n{stderr.rstrip()}" if text else stderr.rstrip()
    return text[-limit:]


async def run_hook(
    transport: Transport,
    phase: HookPhase,
    spec: HookSpec,
    *,
    run_id: str,
    node_id: str,
    operation: str,
    snapshot_id: str | None = None,
) -> HookResult:
    """Run one hook on the node behind ``transport``. A non-zero exit or a timeout is a failed
    result; a lost connection (or other node error) is raised, as for any command."""
    command = Command(
        spec.argv(),
        privileged=True,
        timeout=spec.timeout,
        env=hook_env(run_id=run_id, node_id=node_id, operation=operation,
                     snapshot_id=snapshot_id),
        name=f"{phase} hook",
    )
    started = time.perf_counter()
    try:
        res = await transport.run(command)
    except CommandTimeout:
        return HookResult(
            phase=phase,
            ok=False,
            exit_status=None,
            output_tail="",
            duration=time.perf_counter() - started,
            reason=f"{phase} hook ({spec.label}) timed out after {spec.timeout:g}s and was "
            "stopped",
        )
    tail = _tail(res.stdout, res.stderr)
    if res.exit_status == 0:
        return HookResult(phase, True, 0, tail, res.duration, f"{phase} hook ({spec.label}) ok")
    return HookResult(
        phase,
        False,
        res.exit_status,
        tail,
        res.duration,
        f"{phase} hook ({spec.label}) exited {res.exit_status}",
    )


async def run_node_hook(
    node: ResolvedNode,
    connector: Connector,
    phase: HookPhase,
    spec: HookSpec,
    *,
    run_id: str,
    operation: str,
    snapshot_id: str | None = None,
) -> HookResult:
    """Run one hook on ``node`` over its own connection; a node error (unreachable, lost
    connection) becomes a failed result with its reason instead of an exception."""
    try:
        async with connector.open(node) as transport:
            return await run_hook(transport, phase, spec, run_id=run_id, node_id=node.id,
                                  operation=operation, snapshot_id=snapshot_id)
    except NodeError as err:
        return HookResult(phase=phase, ok=False, exit_status=None, output_tail="",
                          duration=0.0, reason=err.reason)


# -- the WithHooks flow ------------------------------------------------------------------------

StepName = Literal[
    "scan", "pre_install_hook", "install", "post_install_hook", "reboot", "on_exit_hook"
]


@dataclass(frozen=True, slots=True)
class PlanStep:
    step: int
    """Step number in AWS-RunPatchBaselineWithHooks (1, 3, 4, 5, 7, 8)."""
    name: StepName
    run: bool
    reason: str


def hook_plan(
    operation: str,
    missing_count: int,
    pending_reboot: bool,
    reboot_option: str,
    pre_hook_ok: bool = True,
    *,
    install_ok: bool = True,
    installed_count: int | None = None,
    os_says_required: bool | None = None,
) -> list[PlanStep]:
    """Which WithHooks steps run (pure). Step 2 and 6 are decisions, not steps in the result.

    ``pre_hook_ok``/``install_ok``: outcomes known so far (a failure jumps to step 8: on-exit
    still runs). ``installed_count``: known after install; before it, the missing count is
    assumed to get installed. Scan runs step 1 only: the hooks are for Install.
    """
    if operation not in ("Scan", "Install"):
        raise ConfigError(f"unknown operation {operation!r}; use Scan or Install")
    steps = [PlanStep(1, "scan", True, "step 1: scan and report compliance")]
    names: list[tuple[int, StepName]] = [
        (3, "pre_install_hook"), (4, "install"), (5, "post_install_hook"), (7, "reboot"),
        (8, "on_exit_hook"),
    ]

    if operation == "Scan":
        return steps + [PlanStep(n, name, False, "Scan: only step 1 runs") for n, name in names]
    if missing_count == 0 and not pending_reboot:
        reason = "step 2: no missing patches and no pending reboot: straight to on-exit"
        return steps + [PlanStep(n, name, n == 8, reason if n != 8 else "step 8: on-exit hook")
                        for n, name in names]
    if pending_reboot and missing_count == 0 and reboot_option == "NoReboot":
        reason = "step 2: a reboot is pending but RebootOption is NoReboot: straight to on-exit"
        return steps + [PlanStep(n, name, n == 8, reason if n != 8 else "step 8: on-exit hook")
                        for n, name in names]
    out = list(steps)
    out.append(PlanStep(3, "pre_install_hook", True, "step 3: pre-install hook"))
    if not pre_hook_ok:
        skip = "the pre-install hook failed: install is skipped, straight to on-exit"
        out += [PlanStep(4, "install", False, skip), PlanStep(5, "post_install_hook", False, skip),
                PlanStep(7, "reboot", False, skip),
                PlanStep(8, "on_exit_hook", True, "step 8: on-exit hook (runs after failures)")]
        return out
    out.append(PlanStep(4, "install", True, "step 4: install with NoReboot"))
    if not install_ok:
        skip = "the install failed: straight to on-exit"
        out += [PlanStep(5, "post_install_hook", False, skip), PlanStep(7, "reboot", False, skip),
                PlanStep(8, "on_exit_hook", True, "step 8: on-exit hook (runs after failures)")]
        return out
    out.append(PlanStep(5, "post_install_hook", True, "step 5: post-install hook"))
    installed = missing_count if installed_count is None else installed_count
    decision = decide_reboot(reboot_option, installed, 1 if pending_reboot else 0,
                             os_says_required)
    out.append(PlanStep(7, "reboot", decision.reboot, f"step 6: {decision.reason}"))
    out.append(PlanStep(8, "on_exit_hook", True,
                        "step 8: on-exit hook" + (" (after the reboot)" if decision.reboot
                                                  else "")))
    return out


def plan_names(plan: list[PlanStep]) -> list[str]:
    """The names of the steps that run, in order (for logs and tests)."""
    return [s.name for s in plan if s.run]

