"""Task: decide ``os:`` target selectors by reading the OS of the nodes that declare none."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.ops.targeting import OsTargets, resolve_os_targets
from patchfleet.transport import Connector


@task(name="resolve-targets", cache_policy=NO_CACHE, retries=0)
async def resolve_targets(nodes: list[ResolvedNode], expression: str, connector: Connector,
                          concurrency: int) -> OsTargets:
    """The nodes ``expression`` selects once every ``os:`` selector is decided (a node whose OS
    can't be read comes back FAILED, never as a target)."""
    chosen = await resolve_os_targets(nodes, expression, connector, concurrency=concurrency)
    if chosen.dropped:
        get_run_logger().info(
            "targets %s: %d node(s) run another OS and are left out: %s", expression,
            len(chosen.dropped),
            ", ".join(f"{k} ({v})" for k, v in sorted(chosen.dropped.items())[:20]))
    return chosen
