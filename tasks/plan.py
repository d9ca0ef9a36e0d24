"""Task: check a run's request and plan it (inventory, targets, baselines, store, install
settings) before any node is contacted."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.requests import PatchRequest
from patchfleet.ops.plan import InstallSettings, RunPlan, plan_request


@task(name="plan-run", cache_policy=NO_CACHE, retries=0)
def plan_run(request: PatchRequest, run_id: str) -> tuple[RunPlan, InstallSettings | None]:
    """The run's plan, and its install settings for an Install; bad input raises ConfigError
    naming the parameter and the fix, and nothing is scanned or written."""
    return plan_request(request, run_id)
