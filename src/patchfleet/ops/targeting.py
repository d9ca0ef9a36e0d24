"""Run-time target resolution: decide ``os:`` selectors by reading the nodes' OS.

:func:`~patchfleet.domain.selectors.select_targets` keeps a node that declares no OS whenever an
``os:`` selector might match it. Before anything is scanned or installed, :func:`resolve_os_targets`
reads /etc/os-release on each such node (the scan's own probe and parser, through the caller's
connector, concurrently) and evaluates the whole expression again with the OS it found, so
``web-*,os:DEBIAN`` keeps every web node and every Debian node. A node whose OS cannot be read
becomes a FAILED result and is neither scanned nor patched: running an install on a node whose
OS was never confirmed could patch the wrong fleet. A node whose os-release names an OS outside
AWS's OperatingSystem list (Fedora, Tumbleweed...) matches no ``os:NAME`` and is dropped.
Nodes that declare their OS are decided by the declaration, without connecting. No Prefect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.results import NodeResult
from patchfleet.domain.selectors import node_selected, os_selectors, parse_targets
from patchfleet.errors import ConfigError, NodeError, PatchfleetError, UnsupportedOSError
from patchfleet.managers.common import collect_os
from patchfleet.ops.scan import failed_result
from patchfleet.transport.base import Connector

log = logging.getLogger("patchfleet.ops.targeting")


class OsTargets(NamedTuple):
    """What :func:`resolve_os_targets` decided, each list in input order."""

    kept: list[ResolvedNode]
    """Nodes the expression selects: scan or install these."""
    failed: list[NodeResult]
    """FAILED results of nodes whose OS could not be read: record and report these."""
    dropped: dict[str, str]
    """Node id -> the OS it runs (or why it has none), for nodes the expression does not select."""


async def _read_os(node: ResolvedNode, connector: Connector) -> str:
    async with connector.open(node) as transport:
        return (await collect_os(transport)).operating_system


async def resolve_os_targets(
    nodes: Sequence[ResolvedNode],
    expression: str,
    connector: Connector,
    *,
    concurrency: int = 50,
    source: str = "--targets",
) -> OsTargets:
    """Decide ``expression`` for every node in ``nodes`` (typically ``RunPlan.nodes``), reading
    the OS of those only an ``os:`` selector could select and that declare none (at most
    ``concurrency`` at once). Without ``os:`` selectors nothing is read.

    Raises :class:`ConfigError` when no node is kept and none failed.
    """
    selectors = parse_targets(expression, source)
    wanted = ", ".join(os_selectors(selectors))
    kept: dict[str, ResolvedNode] = {}
    failed: dict[str, NodeResult] = {}
    dropped: dict[str, str] = {}
    undecided: list[ResolvedNode] = []
    for node in nodes:
        decided = node_selected(selectors, node)
        if decided is None:
            undecided.append(node)
        elif decided:
            kept[node.id] = node
        else:
            dropped[node.id] = str(node.os) if node.os else "not targeted"

    if undecided:
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(node: ResolvedNode) -> None:
            async with sem:
                started = datetime.now(UTC)
                try:
                    found = await _read_os(node, connector)
                except UnsupportedOSError as err:
                    dropped[node.id] = f"{err.reason_code}: {err.message}"
                    return
                except NodeError as err:
                    why = (err.reason_code, err.message)
                except PatchfleetError as err:
                    why = ("ERROR", str(err))
                except OSError as err:  # a transport should map these; never lose the node
                    why = ("UNREACHABLE", str(err))
                else:
                    if node_selected(selectors, node, found):
                        kept[node.id] = node
                    else:
                        dropped[node.id] = found
                    return
            failed[node.id] = failed_result(
                node, started,
                f"{why[0]}: could not read the node's OS (/etc/os-release) to match the "
                f"target selector {wanted}, so it was neither scanned nor patched: {why[1]}",
            )

        await asyncio.gather(*(one(n) for n in undecided))

    order = [n.id for n in nodes]
    result = OsTargets(
        kept=[kept[i] for i in order if i in kept],
        failed=[failed[i] for i in order if i in failed],
        dropped={i: dropped[i] for i in order if i in dropped},
    )
    if undecided:
        found_oses = Counter(result.dropped.values())
        log.info(
            "targets %s: read the OS of %d node(s); %d kept, %d dropped (%s), %d failed",
            expression, len(undecided), len(result.kept), len(result.dropped),
            ", ".join(f"{os} x{n}" for os, n in sorted(found_oses.items())) or "none",
            len(result.failed),
        )
    if not result.kept and not result.failed:
        found = ", ".join(f"{i} ({os})" for i, os in list(result.dropped.items())[:10])
        raise ConfigError(f"{expression!r} selects no node; the nodes run: {found}",
                          source=source)
    return result
