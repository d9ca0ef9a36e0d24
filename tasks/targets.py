"""Task: decide ``os:`` target selectors by reading the OS of the nodes that declare none."""

from __future__ import annotations

from typing import NamedTuple

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import RunContext
from patchfleet.ops.batches import BatchRecorder
from patchfleet.ops.targeting import resolve_os_targets
from patchfleet.store.staging import StagingArea
from patchfleet.transport import Connector
from tasks.handles import Opaque


class Targets(NamedTuple):
    kept: list[ResolvedNode]
    """The nodes to scan or install, in inventory order."""
    failed: int
    """Nodes whose OS could not be read: recorded FAILED in the staging area, after the kept."""


@task(name="resolve-targets", cache_policy=NO_CACHE, retries=0)
async def resolve_targets(nodes: Opaque[list[ResolvedNode]], expression: str,
                          connector: Connector, concurrency: int, staging: StagingArea,
                          ctx: RunContext) -> Targets:
    """The nodes ``expression`` selects once every ``os:`` selector is decided. A node whose OS
    can't be read is never a target: it is recorded FAILED (its ordinal after the kept nodes)."""
    chosen = await resolve_os_targets(nodes.value, expression, connector,
                                      concurrency=concurrency)
    if chosen.dropped:
        get_run_logger().info(
            "targets %s: %d node(s) run another OS and are left out: %s", expression,
            len(chosen.dropped),
            ", ".join(f"{k} ({v})" for k, v in sorted(chosen.dropped.items())[:20]))
    if chosen.failed:
        recorder = BatchRecorder(staging, ctx, "targets")
        for i, result in enumerate(chosen.failed):
            recorder.add(result, len(chosen.kept) + i)
        recorder.close()
    return Targets(chosen.kept, len(chosen.failed))
