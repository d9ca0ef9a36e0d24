"""Task: run one shard of a sharded scan as a deployment run that any worker may take.

Only handles go through Prefect: the shard's parameters are the parent's request with
``shard = PARENT_RUN_ID/INDEX``; its nodes and rows go through the shared store
(:class:`~patchfleet.store.shard_exchange.ShardExchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelling

from patchfleet.store.shard_exchange import ShardExchange

POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ShardOutcome:
    """How one shard ended: ``counts`` (from its done marker) only when it finished."""

    index: int
    flow_run: str
    state: str
    message: str
    counts: dict[str, Any] | None

    @property
    def reason(self) -> str:
        """Why the shard's nodes have no result (the FAILED reason recorded for each)."""
        detail = f": {self.message[:300]}" if self.message else ""
        return (f"SHARD_FAILED: shard {self.index + 1} (flow run {self.flow_run}) ended "
                f"{self.state}{detail}; its nodes were not scanned by this run")


@task(name="run-shard", cache_policy=NO_CACHE, retries=0)
async def run_shard(exchange: ShardExchange, index: int, count: int, deployment: str,
                    parameters: dict[str, Any], timeout: float) -> ShardOutcome:
    """Start shard ``index`` of ``count`` as a run of ``deployment`` and wait for it (up to
    ``timeout`` seconds; then it is cancelled and its nodes recorded FAILED)."""
    logger = get_run_logger()
    try:
        run = await arun_deployment(
            deployment, parameters=parameters, timeout=timeout, poll_interval=POLL_SECONDS,
            flow_run_name=f"shard-{index + 1}-of-{count}-{exchange.parent_run_id[:8]}",
            tags=["patchfleet", "shard"])
    except ObjectNotFound:
        return ShardOutcome(index, "-", "NOT_STARTED",
                            f"deployment {deployment!r} does not exist: deploy it (prefect "
                            "deploy --prefect-file deployments/prefect.yaml --name shard) or "
                            "set shard_deployment", None)
    state = run.state
    name = (state.name if state is not None else None) or "UNKNOWN"
    if state is None or not state.is_final():
        async with get_client() as client:
            await client.set_flow_run_state(run.id, Cancelling(), force=True)
        logger.warning("shard %d/%d (flow run %s) still %s after %g s: cancelled", index + 1,
                       count, run.id, name, timeout)
        return ShardOutcome(index, str(run.id), f"TIMED_OUT ({name})",
                            f"not finished within shard_timeout {timeout:g} s", None)
    counts = exchange.finished(index) if state.is_completed() else None
    message = state.message or ("" if counts is not None else "no done marker in the store")
    logger.info("shard %d/%d (flow run %s): %s", index + 1, count, run.id, name)
    return ShardOutcome(index, str(run.id), name, message if counts is None else "", counts)
