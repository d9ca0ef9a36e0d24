"""Flow: one execution of a maintenance window (spec section 6).

The deployment for window W runs this flow on W's schedule with ``window=W``. The flow finds the
occurrence the run belongs to (``current_window_start`` at the run's scheduled start time, or
``now`` for tests) and its phase:

- outside any occurrence: does nothing and returns ``{"skipped": reason}`` (unless ``force``);
- in the cutoff phase (past ``start + duration - cutoff``): starts no node work, says so;
- open: runs the window's tasks in priority order, 0 first, tasks of equal priority in
  parallel, each as a ``patch-nodes`` subflow with ``snapshot_id`` = this flow run's id (the
  window execution id, so every node of the execution uses one snapshot).

Before each priority level the phase is checked again (scheduled start + elapsed time): once
the cutoff has passed no new task starts (AWS: no new tasks start after the cutoff). What
happens to tasks already running depends on the window's ``cutoff_behavior``:

- ``CONTINUE_TASK`` (default): they go on to completion, starting their remaining nodes.
- ``CANCEL_TASK``: each task gets ``deadline`` = the cutoff as a real wall-clock instant (with
  a simulated ``now``: this run's real start + the time from ``now`` to the cutoff). From then no
  node starts (recorded FAILED, ``TIMED_OUT: ...``), and nodes in progress stop at their next
  safe point: a scan finishes; an install is not started (the scan result stands) and a reboot
  is not done (installed packages stay INSTALLED_PENDING_REBOOT); a package transaction already
  running is never killed, and the on-exit hook still runs. Such a task's status is TIMED_OUT.

``force`` ignores the window's phase entirely, and with it the cutoff.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prefect import flow, get_run_logger, tags
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.patch_nodes import patch_nodes
from patchfleet.config.allowed_operations import refusal
from patchfleet.config.policies import load_deployments
from patchfleet.domain.policies import DEFAULT_FILE, WindowConfig, WindowTask
from patchfleet.domain.rollout import is_timed_out
from patchfleet.domain.windows import (
    CutoffBehavior,
    WindowPhase,
    current_window_start,
    next_runs,
    window_phase,
)
from patchfleet.errors import ConfigError


def _now(now: str | None) -> datetime:
    if now is not None:
        try:
            value = datetime.fromisoformat(now)
        except ValueError:
            raise ConfigError(f"{now!r} is not ISO-8601, e.g. 2026-01-01T02:00:00+00:00",
                              source="now") from None
        if value.tzinfo is None:
            raise ConfigError("needs a UTC offset, e.g. 2026-01-01T02:00:00+00:00", source="now")
        return value.astimezone(UTC)
    scheduled = flow_run.scheduled_start_time
    if scheduled is None:
        return datetime.now(UTC)
    return datetime.fromisoformat(scheduled.isoformat()).astimezone(UTC)


def _phase(cfg: WindowConfig, at: datetime) -> tuple[WindowPhase, str]:
    start = current_window_start(cfg.window, at)
    if start is None:
        return WindowPhase.CLOSED, (
            f"window {cfg.name} has no occurrence open at {at:%FT%TZ} "
            f"({cfg.window.schedule}, {cfg.window.duration_hours}h, "
            f"{cfg.window.schedule_timezone}{', disabled' if not cfg.window.enabled else ''})")
    return window_phase(cfg.window, start, at)


def _cancel_deadline(cfg: WindowConfig, at: datetime, clock_offset: timedelta
                     ) -> datetime | None:
    """For CANCEL_TASK: the cutoff of the occurrence open at ``at``, as a real wall-clock instant
    (``clock_offset`` is real time minus the window clock: nonzero only for a simulated ``now``)."""
    if cfg.window.cutoff_behavior is not CutoffBehavior.CANCEL_TASK:
        return None
    start = current_window_start(cfg.window, at)
    if start is None:
        return None
    return start + cfg.window.duration - cfg.window.cutoff + clock_offset


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    window = str(params.get("window", "window"))
    if params.get("force"):
        return f"{window}-forced"
    try:
        cfg = load_deployments(params.get("file") or DEFAULT_FILE).window(window)
        phase, _ = _phase(cfg, _now(params.get("now")))
    except Exception:  # the flow itself reports the real error
        return f"{window}-run"
    return f"{window}-{phase.value.lower()}"


async def _run_task(cfg: WindowConfig, task: WindowTask, execution_id: str,
                    store: str | None, deadline: datetime | None) -> dict[str, Any]:
    logger = get_run_logger()
    params: dict[str, Any] = dict(
        operation=task.operation, targets=cfg.task_targets(task), inventory=cfg.inventory,
        snapshot_id=execution_id, store=store, reboot_option=task.reboot_option,
        hooks=task.hooks, max_concurrency=task.max_concurrency, max_errors=task.max_errors,
        deadline=deadline.isoformat() if deadline is not None else None,
        label=f"{cfg.name}/{task.name}", reports=cfg.publish_report,
        report_uri=cfg.report_uri if cfg.publish_report else None,
    )
    try:
        with tags("patchfleet", f"window/{cfg.name}"):
            summary = await patch_nodes(**params)
    except Exception as err:  # one failed task doesn't stop its peers
        logger.error("task %s failed: %s", task.name, err)
        return {"task": task.name, "priority": task.priority, "status": "FAILED",
                "error": str(err)}
    timed_out = [row.node_id for row in summary.nodes if is_timed_out(row.failure_reason)]
    status = "TIMED_OUT" if timed_out else \
        "FAILED" if summary.failed or summary.stopped else "SUCCESS"
    out = {"task": task.name, "priority": task.priority, "status": status,
           "operation": task.operation, "summary": summary.output()}
    return {**out, "timed_out": timed_out} if timed_out else out


@flow(name="maintenance-window", flow_run_name=_run_name, log_prints=False)
async def maintenance_window(
    window: str,
    file: str = DEFAULT_FILE,
    force: bool = False,
    now: str | None = None,
    store: str | None = None,
) -> dict[str, Any]:
    """Run window ``window`` of ``file`` if the run falls in one of its occurrences.

    ``now`` (ISO-8601 with offset) replaces the run's scheduled start time; ``store`` overrides
    the window's store folder. Returns per-task summaries, or ``{"skipped": reason}``. A task
    operation this worker's PATCHFLEET_OPERATIONS refuses fails the whole run at once, before
    any task starts.
    """
    logger = get_run_logger()
    cfg = load_deployments(file).window(window)
    if (refused := refusal(t.operation for t in cfg.tasks)) is not None:
        logger.error("window %s: %s", cfg.name, refused)
        return cast(dict[str, Any], Failed(message=f"window {cfg.name}: {refused}"))
    at = _now(now)
    began, real_start = time.monotonic(), datetime.now(UTC)
    execution_id = str(flow_run.id or uuid.uuid4())
    phase, reason = _phase(cfg, at)
    logger.info("%s", reason)
    base: dict[str, Any] = {"window": cfg.name, "execution_id": execution_id,
                            "phase": phase.value, "forced": force, "reason": reason,
                            "schedule": schedule_text(cfg),
                            "next_occurrence": _next_occurrence(cfg, at)}
    if not force and phase is not WindowPhase.OPEN:
        if phase is WindowPhase.CUTOFF:
            reason = f"{reason}; no task started"
        logger.info("skipping: %s", reason)
        skipped = {**base, "skipped": reason, "tasks": []}
        await _publish(skipped)
        return skipped
    # a scheduled run's clock is real (its cutoff is too, even if the run started late); a
    # simulated ``now`` maps onto the wall clock from this instant on
    offset = real_start - at if now is not None else timedelta(0)
    deadline = None if force else _cancel_deadline(cfg, at, offset)
    if deadline is not None:
        logger.info("CANCEL_TASK: running tasks stop starting node work at %s",
                    f"{deadline:%FT%TZ}")
    results: list[dict[str, Any]] = []
    for group in cfg.priority_groups():
        if not force:
            elapsed = timedelta(seconds=time.monotonic() - began)
            phase_now, why = _phase(cfg, at + elapsed)
            if phase_now is not WindowPhase.OPEN:
                logger.warning("no new task starts: %s", why)
                results.extend({"task": t.name, "priority": t.priority, "status": "SKIPPED",
                                "reason": why} for t in group)
                continue
        logger.info("priority %d: %s", group[0].priority, ", ".join(t.name for t in group))
        results.extend(await asyncio.gather(
            *(_run_task(cfg, t, execution_id, store or cfg.store, deadline) for t in group)))
    done = {**base, "tasks": results}
    await _publish(done)
    return done


def schedule_text(cfg: WindowConfig) -> str:
    """The window's schedule as the operator wrote it, its offset included."""
    win = cfg.window
    offset = f" + {win.schedule_offset} day(s)" if win.schedule_offset else ""
    return f"{win.schedule}{offset} ({win.schedule_timezone})"


def _next_occurrence(cfg: WindowConfig, at: datetime) -> str | None:
    """The next occurrence's start after ``at`` (offset applied), ISO-8601 UTC, or None."""
    upcoming = next_runs(cfg.window, at, 1, activated_at=at)
    return f"{upcoming[0]:%Y-%m-%dT%H:%M:%SZ}" if upcoming else None


def window_markdown(result: dict[str, Any]) -> str:
    """The ``window-summary`` artifact: the occurrence, the schedule (offset included), the
    next occurrence, and each task's outcome."""
    lines = [f"# Maintenance window {result['window']}", "",
             f"- execution (snapshot) id: `{result['execution_id']}`",
             f"- phase: {result['phase']}{' (forced)' if result['forced'] else ''}",
             f"- {result['reason']}"]
    if result.get("schedule"):
        lines.append(f"- schedule: `{result['schedule']}`")
    lines.append(f"- next occurrence: {result.get('next_occurrence') or 'none (schedule ended)'}")
    if result.get("skipped"):
        lines += ["", f"**Nothing ran:** {result['skipped']}"]
        return "\n".join(lines) + "\n"
    lines += ["", "| priority | task | operation | status | nodes | compliant | non-compliant "
              "| failed | timed out / why |", "|---|---|---|---|---|---|---|---|---|"]
    for t in result["tasks"]:
        sm = t.get("summary") or {}
        why = ", ".join(t.get("timed_out", [])) or t.get("reason") or t.get("error") or ""
        lines.append(f"| {t['priority']} | {t['task']} | {t.get('operation', '')} | "
                     f"{t['status']} | {sm.get('node_count', '')} | {sm.get('compliant', '')} | "
                     f"{sm.get('non_compliant', '')} | {sm.get('failed', '')} | {why} |")
    return "\n".join(lines) + "\n"


async def _publish(result: dict[str, Any]) -> None:
    await acreate_markdown_artifact(key="window-summary", markdown=window_markdown(result),
                                    description=f"Maintenance window {result['window']}")
