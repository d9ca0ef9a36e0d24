"""Task: check a run's request and plan it (inventory, targets, baselines, store, install
settings) before any node is contacted."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from patchfleet.config.allowed_operations import check_operations
from patchfleet.domain.requests import PatchRequest
from patchfleet.errors import InputError
from patchfleet.ops.caller_terms import for_deployment
from patchfleet.ops.plan import InstallSettings, RunPlan, plan_request

PlanOutcome = tuple[RunPlan, InstallSettings | None] | str
"""The plan and install settings, or (a deployment run with bad input) the one-line error."""


@task(name="plan-run", cache_policy=NO_CACHE, retries=0)
def plan_run(request: PatchRequest, run_id: str, deployment: bool = False) -> PlanOutcome:
    """The run's plan, and its install settings for an Install; bad input raises ConfigError
    naming the flag and the fix, and nothing is scanned or written. In a deployment run
    (``deployment``) bad input is returned as one line naming the *parameter* instead: the flow
    fails with it, without a traceback. An operation this machine's PATCHFLEET_OPERATIONS
    does not allow (a scan worker asked for an Install) is refused here, the same way."""
    try:
        check_operations([request.operation])
        return plan_request(request, run_id)
    except InputError as e:
        if not deployment:
            raise
        return for_deployment(e)
