"""Per-node locks on the Prefect server, so two runs never install on the same node at once.

Each node has a global concurrency limit ``patchfleet-node-<id>`` with one slot. An Install run
creates the limits its nodes lack once, before the rollout (:func:`ensure_node_limits`); then
each node's scan-and-install runs inside :meth:`NodeLocks.lock` (its slot, under a lease that is
renewed while the node works and expires by itself if the run dies). A node another run holds
waits up to ``timeout_seconds`` and is then recorded FAILED ``BUSY: ...`` while the rest of the
rollout goes on, so runs whose node sets overlap take turns node by node, whatever deployment
started them.

One slot per request, not all of a run's nodes at once: a node waits only for its own lock, and
Prefect 3.9's ``concurrency()`` helper emits an event per limit naming every other limit of the
request, which is quadratic and fails past 100 limits (benchmarks/bench_locks.py).

Scans don't lock: they only read, and a scan that meets an install's package-manager lock
reports it (a warning, or LOCKED) instead of waiting. The locks live on the Prefect server the
run reports to: runs on different servers (or ``patchfleet install`` on its own temporary
server) don't see each other's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from patchfleet.errors import NodeBusyError

LOCK_PREFIX = "patchfleet-node-"
log = logging.getLogger("patchfleet.locks")


def lock_name(node_id: str) -> str:
    return f"{LOCK_PREFIX}{node_id}"


async def ensure_node_limits(node_ids: Sequence[str]) -> int:
    """Create the missing one-slot limits of ``node_ids``; existing ones are left as the
    operator set them. Returns how many were created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    names = sorted({lock_name(n) for n in node_ids})
    async with get_client() as client:
        existing = await _existing(client)
        missing = [n for n in names if n not in existing]
        sem = asyncio.Semaphore(20)

        async def create(name: str) -> None:
            async with sem:
                with contextlib.suppress(ObjectAlreadyExists):  # another run was faster
                    await client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=1))

        await asyncio.gather(*(create(n) for n in missing))
    return len(missing)


async def _existing(client: Any) -> set[str]:
    names: set[str] = set()
    offset, page = 0, 200
    while True:
        limits = await client.read_global_concurrency_limits(limit=page, offset=offset)
        names.update(lim.name for lim in limits)
        if len(limits) < page:
            return names
        offset += page


class NodeLocks:
    """The node locks of one rollout, over one Prefect client (``async with NodeLocks(...)``).

    Each :meth:`lock` is one lease request for one limit (retried on HTTP 423 with the server's
    Retry-After until ``timeout_seconds``), a renewal task, and one release: about two HTTP
    calls per node. (Prefect's own ``concurrency()`` helper starts a thread and a client per
    limit name, several hundred ms per node here; benchmarks/bench_locks.py.)
    """

    def __init__(self, timeout_seconds: float, flow_run_id: str | None = None,
                 lease_seconds: float = 300) -> None:
        self.timeout_seconds = timeout_seconds
        self.flow_run_id = flow_run_id
        self.lease_seconds = lease_seconds
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        # one request at a time: on a SQLite server, 50 concurrent lease requests took 15.7 s
        # against 1.3 s for the same 100 one after the other (bench_locks.py)
        self._serial = asyncio.Lock()

    async def __aenter__(self) -> NodeLocks:
        from prefect.client.orchestration import get_client

        self._client = await self._stack.enter_async_context(get_client())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _busy(self, node_id: str) -> NodeBusyError:
        return NodeBusyError(
            f"another patchfleet run is installing on this node (Prefect concurrency limit "
            f"{lock_name(node_id)}); waited {self.timeout_seconds:g} s, nothing was done. Run "
            "again when it ends, or raise node_lock_timeout", node_id)

    async def _acquire(self, node_id: str) -> UUID:
        import httpx
        from prefect.client.schemas.objects import ConcurrencyLeaseHolder

        holder = (ConcurrencyLeaseHolder(type="flow_run", id=self.flow_run_id)
                  if self.flow_run_id else None)
        give_up = time.monotonic() + self.timeout_seconds
        while True:
            try:
                async with self._serial:
                    resp = await self._client.increment_concurrency_slots_with_lease(
                        [lock_name(node_id)], 1, "concurrency", self.lease_seconds, holder)
            except httpx.HTTPStatusError as err:
                if err.response.status_code != 423:
                    raise
                wait = float(err.response.headers.get("Retry-After") or 1)
                left = give_up - time.monotonic()
                if left <= 0:
                    raise self._busy(node_id) from None
                await asyncio.sleep(min(max(wait, 0.2), left))
                continue
            body = resp.json()
            if not body.get("limits"):
                raise NodeBusyError(
                    f"the lock {lock_name(node_id)} does not exist on the Prefect server; "
                    "it is created before the rollout (was it deleted meanwhile?)", node_id)
            return UUID(body["lease_id"])

    async def _renew(self, lease_id: UUID) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds * 0.75)
            try:
                async with self._serial:
                    await self._client.renew_concurrency_lease(lease_id, self.lease_seconds)
            except Exception as err:  # the server will retry on the next tick
                log.warning("could not renew node lock lease %s: %s", lease_id, err)

    @contextlib.asynccontextmanager
    async def lock(self, node_id: str) -> AsyncIterator[None]:
        """Hold ``node_id``'s lock for the body; :class:`NodeBusyError` if another run kept it
        for ``timeout_seconds``."""
        lease_id = await self._acquire(node_id)
        renew = asyncio.create_task(self._renew(lease_id))
        try:
            yield
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            try:
                async with self._serial:
                    await self._client.release_concurrency_slots_with_lease(lease_id)
            except Exception as err:  # the lease expires on its own after lease_seconds
                log.warning("could not release node lock %s (it expires in %g s): %s",
                            lock_name(node_id), self.lease_seconds, err)
