"""Per-node locks on the Prefect server, so two runs never install on the same node at once.

Each node has a global concurrency limit ``patchfleet-node-<id>`` with one slot (created on first
use). An Install run takes the slots of all its nodes in one atomic request before its rollout
starts and holds them (with a lease Prefect renews) until the run ends, so runs whose node sets
overlap run one after the other, whatever deployment started them, and runs on disjoint nodes
run side by side. Scans don't lock: they only read, and a scan that meets an install's package
lock reports it (a warning, or LOCKED) instead of waiting forever.

The locks live on the Prefect server the run reports to: runs on different servers (or
``patchfleet install`` on its own temporary server) don't see each other's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from patchfleet.errors import DeployError

LOCK_PREFIX = "patchfleet-node-"


def lock_name(node_id: str) -> str:
    return f"{LOCK_PREFIX}{node_id}"


async def _ensure_limits(client: Any, names: Sequence[str]) -> None:
    """Create the missing one-slot limits (existing ones are left as the operator set them)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    existing: set[str] = set()
    offset, page = 0, 200
    while True:
        limits = await client.read_global_concurrency_limits(limit=page, offset=offset)
        existing.update(lim.name for lim in limits)
        if len(limits) < page:
            break
        offset += page
    sem = asyncio.Semaphore(20)

    async def create(name: str) -> None:
        # another run may create it meanwhile
        async with sem:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))

    await asyncio.gather(*(create(n) for n in names if n not in existing))


@asynccontextmanager
async def node_locks(node_ids: Sequence[str], timeout_seconds: float,
                     flow_run_id: str | None = None) -> AsyncIterator[None]:
    """Hold the lock of every node in ``node_ids`` for the body; wait at most
    ``timeout_seconds`` for them, then raise :class:`DeployError` naming the busy nodes."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.asyncio import concurrency

    names = sorted({lock_name(n) for n in node_ids})
    if not names:
        yield
        return
    async with get_client() as client:
        await _ensure_limits(client, names)
    holder = (ConcurrencyLeaseHolder(type="flow_run", id=flow_run_id)
              if flow_run_id else None)
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(concurrency(
                names, occupy=1, timeout_seconds=timeout_seconds, strict=True,
                holder=holder, raise_on_lease_renewal_failure=False))
        except TimeoutError:  # Prefect's AcquireConcurrencySlotTimeoutError
            busy = await _busy(names)
            raise DeployError(
                f"another run is installing on {', '.join(busy) or 'some of these nodes'} "
                f"(Prefect concurrency limits {LOCK_PREFIX}<node>); waited "
                f"{timeout_seconds:g} s. Retry when it ends, or raise node_lock_timeout"
            ) from None
        yield


async def _busy(names: Sequence[str]) -> list[str]:
    from prefect.client.orchestration import get_client

    busy: list[str] = []
    async with get_client() as client:
        for name in names:
            lim = await client.read_global_concurrency_limit_by_name(name)
            if lim.active_slots >= lim.limit:
                busy.append(name.removeprefix(LOCK_PREFIX))
    return busy
