"""Which Prefect deployments a deployments file (policies.yaml) becomes. Pure data, no Prefect.

Every patch policy ``P`` becomes ``patch-policy/P-scan`` (its scan schedule) and, for
ScanAndInstall, ``patch-policy/P-install`` (its install schedule). Every maintenance window ``W``
becomes ``maintenance-window/W`` (its schedule; paused when the window is disabled). Each is
tagged ``patchfleet``, ``patchfleet-generated`` (what ``deployments apply --prune`` may delete)
and ``policy/P`` or ``window/W``, and runs one at a time per deployment.
:mod:`patchfleet.cli.deploy` registers them with a Prefect server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patchfleet.domain.policies import DeploymentsFile, PatchPolicy, WindowConfig
from patchfleet.domain.schedule_export import DeploySchedule, policy_schedule, window_schedule
from patchfleet.domain.windows import MaintenanceWindow, next_runs
from patchfleet.errors import ConfigError

__all__ = ["GENERATED_TAG", "DeploymentSpec", "build_specs"]

GENERATED_TAG = "patchfleet-generated"
POLICY_FLOW = ("patch-policy", "flows/patch_policy.py:patch_policy")
WINDOW_FLOW = ("maintenance-window", "flows/maintenance_window.py:maintenance_window")


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment to create or update."""

    flow_name: str
    name: str
    entrypoint: str
    parameters: dict[str, Any]
    schedule: DeploySchedule
    tags: tuple[str, ...]
    description: str
    active: bool = True
    run_now: bool = False
    """Start one run right after the deployment is first created (policy NextInterval false)."""
    upcoming: tuple[datetime, ...] = field(default=())
    """patchfleet's own next occurrences, for the operator to compare with Prefect's."""
    installs: bool = False
    """Its runs can install packages (a policy's install, a window with an Install task): its
    schedule is created paused, and an operator resumes it on purpose."""

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def _policy_specs(p: PatchPolicy, file: str, source: str, index: int,
                  now: datetime) -> list[DeploymentSpec]:
    ops = [("Scan", p.scan_schedule, "scan_schedule", not p.scan_next_interval)]
    if p.operation == "ScanAndInstall":
        ops.append(("Install", p.install_schedule, "install_schedule",
                    not p.install_next_interval))
    out = []
    for op, expr, fname, run_now in ops:
        where = f"policies[{index}].{fname}"
        try:
            sched = policy_schedule(expr, p.schedule_timezone, where)
        except ConfigError as err:
            raise ConfigError(err.message, source=source, field=where) from None
        out.append(DeploymentSpec(
            flow_name=POLICY_FLOW[0], name=f"{p.name}-{op.lower()}", entrypoint=POLICY_FLOW[1],
            parameters={"policy": p.name, "operation": op, "file": file},
            schedule=sched, tags=("patchfleet", GENERATED_TAG, f"policy/{p.name}"),
            description=(f"Patch policy {p.name}: {op} of {p.targets} on {expr} "
                         f"({p.schedule_timezone}). Generated from {file} by "
                         "`patchfleet deployments apply`; edit the file, not this deployment."),
            run_now=run_now, upcoming=tuple(_cron_upcoming(expr, p.schedule_timezone, now)),
            installs=op == "Install",
        ))
    return out


def _cron_upcoming(expr: str, tz: str, now: datetime) -> list[datetime]:
    """A policy cron's next three runs, by the window arithmetic (same cron semantics)."""
    probe = MaintenanceWindow(name="policy-schedule", schedule=expr, schedule_timezone=tz,
                              duration_hours=1)
    return next_runs(probe, now, 3)


def _window_spec(w: WindowConfig, file: str, now: datetime) -> DeploymentSpec:
    win = w.window
    sched = window_schedule(win)
    tasks = ", ".join(f"{t.name} (priority {t.priority}, {t.operation})" for t in w.tasks)
    return DeploymentSpec(
        flow_name=WINDOW_FLOW[0], name=w.name, entrypoint=WINDOW_FLOW[1],
        parameters={"window": w.name, "file": file}, schedule=sched,
        tags=("patchfleet", GENERATED_TAG, f"window/{w.name}"),
        description=(f"Maintenance window {w.name}: {win.schedule} ({win.schedule_timezone}), "
                     f"{win.duration_hours}h, cutoff {win.cutoff_hours}h, "
                     f"{win.cutoff_behavior.value}; tasks: {tasks}. Generated from {file} by "
                     "`patchfleet deployments apply`; edit the file, not this deployment."),
        active=win.enabled,
        installs=any(t.operation == "Install" for t in w.tasks),
        upcoming=tuple(next_runs(win, now, 3, activated_at=now)),
    )


def build_specs(dep: DeploymentsFile, file: str, now: datetime) -> list[DeploymentSpec]:
    """The deployments of every policy and window in ``dep``. ``file`` is the path the flows
    will load at run time (relative to the worker's working directory, or absolute)."""
    specs: list[DeploymentSpec] = []
    for i, p in enumerate(dep.policies):
        specs.extend(_policy_specs(p, file, dep.source, i, now))
    specs.extend(_window_spec(w, file, now) for w in dep.windows)
    return specs
