"""Register the deployments of a policies file with a Prefect server (``deployments apply``).

The file is validated first (:func:`patchfleet.config.policies.validate_deployments`: schedules,
timezones, cutoffs, baselines, targets), so a bad file never reaches the server. Then, for every
:class:`~patchfleet.ops.deploy_plan.DeploymentSpec`, the deployment is created or updated in place
(Prefect upserts by flow and name and replaces the schedules), pointed at the checkout on the
worker machines with a ``set_working_directory`` pull step like ``deployments/prefect.yaml``,
limited to one run at a time (ENQUEUE), and given the flow's parameter schema so a mistyped
``-p`` is refused. A policy whose NextInterval is false gets one run right after its deployment is
first created, only with ``start_runs`` (``--yes``). A deployment that can install is created
with its schedule paused (an operator resumes it with the printed command); an update keeps the
pause state the server has. ``prune`` deletes ``patchfleet-generated`` deployments the file no
longer has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchfleet.domain.schedule_export import DeploySchedule
from patchfleet.errors import ConfigError, DeployError
from patchfleet.ops.deploy_plan import GENERATED_TAG, DeploymentSpec

__all__ = ["ApplyReport", "apply_specs", "prefect_schedule"]


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    started: dict[str, str] = field(default_factory=dict)
    """deployment full name -> id of the flow run started now (NextInterval false, ``--yes``)."""
    pending_runs: list[str] = field(default_factory=list)
    """New deployments whose first run (NextInterval false) waits for ``--yes`` or a manual run."""
    paused: dict[str, str] = field(default_factory=dict)
    """Installing deployments whose schedule is paused: full name -> schedule id (to resume)."""


def prefect_schedule(s: DeploySchedule) -> Any:
    """The Prefect client schedule object for ``s``."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    if s.cron is not None:
        return CronSchedule(cron=s.cron, timezone=s.timezone)
    if s.interval is not None:
        return IntervalSchedule(interval=s.interval, anchor_date=s.anchor, timezone=s.timezone)
    return RRuleSchedule(rrule=s.rrule or "", timezone=s.timezone)


def _server_error(err: Exception, api_url: str | None) -> DeployError:
    return DeployError(
        f"the Prefect server at {api_url or '(PREFECT_API_URL unset)'} failed: "
        f"{type(err).__name__}: {err}; check that `prefect server start` runs and "
        "PREFECT_API_URL points at it")


async def apply_specs(specs: list[DeploymentSpec], *, repo: Path, pool: str,
                      queue: str | None = None, prune: bool = False,
                      start_runs: bool = False,
                      install_pool: str | None = None) -> ApplyReport:
    """Create or update every deployment of ``specs`` on the server at PREFECT_API_URL, in
    ``pool``; with ``install_pool``, the deployments that can install go there instead (README
    "Security": the right to install is the right to reach that pool)."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise DeployError("PREFECT_API_URL is not set: deployments live on a Prefect server; "
                          "start one (`prefect server start`) and export "
                          "PREFECT_API_URL=http://127.0.0.1:4200/api")
    for entry in {s.entrypoint.split(":")[0] for s in specs}:
        if not (repo / entry).is_file():
            raise ConfigError(f"{repo / entry} does not exist: pass the patchfleet checkout "
                              "that the workers run (the folder holding flows/)",
                              source="--repo")
    report = ApplyReport()
    pull_steps = [{"prefect.deployments.steps.set_working_directory":
                   {"directory": str(repo)}}]
    schemas = {entry: parameter_schema_from_entrypoint(f"{repo / entry}").model_dump_for_openapi()
               for entry in {s.entrypoint for s in specs}}
    try:
        async with get_client() as client:
            for name in dict.fromkeys(p for p in (pool, install_pool) if p):
                try:
                    await client.read_work_pool(name)
                except ObjectNotFound:
                    raise DeployError(f"work pool {name!r} does not exist; create it: prefect "
                                      f"work-pool create {name} --type process") from None
            existing = await _generated(client)
            for spec in specs:
                flow_id = await client.create_flow_from_name(spec.flow_name)
                try:
                    current = await client.read_deployment_by_name(spec.full_name)
                    is_new = False
                except ObjectNotFound:
                    current, is_new = None, True
                active = spec.active
                if spec.installs:
                    active = active and current is not None and any(
                        s.active for s in current.schedules or [])
                dep_id = await client.create_deployment(
                    flow_id=flow_id, name=spec.name, entrypoint=spec.entrypoint,
                    parameters=spec.parameters, description=spec.description,
                    tags=list(spec.tags),
                    work_pool_name=install_pool if spec.installs and install_pool else pool,
                    work_queue_name=queue,
                    pull_steps=pull_steps, path=None,
                    schedules=[DeploymentScheduleCreate(schedule=prefect_schedule(spec.schedule),
                                                        active=active)],
                    concurrency_limit=1,
                    concurrency_options=ConcurrencyOptions(
                        collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
                    parameter_openapi_schema=schemas[spec.entrypoint],
                    enforce_parameter_schema=True,
                )
                (report.created if is_new else report.updated).append(spec.full_name)
                existing.pop(spec.full_name, None)
                if spec.installs and not active:
                    dep = await client.read_deployment(dep_id)
                    report.paused[spec.full_name] = str(dep.schedules[0].id)
                if is_new and spec.run_now and start_runs:
                    run = await client.create_flow_run_from_deployment(
                        dep_id, tags=list(spec.tags))
                    report.started[spec.full_name] = str(run.id)
                elif is_new and spec.run_now:
                    report.pending_runs.append(spec.full_name)
            if prune:
                for full_name, dep_id in sorted(existing.items()):
                    await client.delete_deployment(dep_id)
                    report.deleted.append(full_name)
    except (httpx.HTTPError, OSError) as err:
        raise _server_error(err, api_url) from None
    return report


async def _generated(client: Any) -> dict[str, Any]:
    """Deployments this command created earlier (tag ``patchfleet-generated``): full name -> id."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    deps = await client.read_deployments(deployment_filter=DeploymentFilter(
        tags=DeploymentFilterTags(all_=[GENERATED_TAG])))
    flows = {f.id: f.name for f in await client.read_flows()}
    return {f"{flows.get(d.flow_id, '?')}/{d.name}": d.id for d in deps}
