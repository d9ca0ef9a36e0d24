"""Scan one real test node, then install its approved set with ``install_node``: the step the
apt and rpm install tests share (integration only: it needs the test nodes)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchfleet.domain.results import NodeResult
from patchfleet.ops.install import InstallNodeResult, install_node, request_from_records
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_node
from patchfleet.transport.connector import SSHConnector


def scan_and_install(fleet: Any, tmp_path: Path, node_id: str, baseline: str | None = None,
                     block: tuple[str, ...] = (), lock_timeout: int = 60,
                     during: Callable[[], None] | None = None,
                     ) -> tuple[NodeResult, InstallNodeResult]:
    """Scan ``node_id`` (it must not fail), then install every approved MISSING patch at its
    available version; ``during`` runs in a thread as the install starts (e.g. to hold a lock)."""
    p = plan_scan(inventory=str(fleet.inventory), targets=node_id, baseline=baseline,
                  store=str(tmp_path / "store"))
    node = p.nodes[0]

    async def run() -> tuple[NodeResult, InstallNodeResult]:
        with SSHConnector() as connector:
            scanned = await scan_node(node, p.registry, connector, p.options)
            assert not scanned.failed, scanned.failure_reason
            base = next(iter(p.options.baseline_overrides.values()), None) or (
                p.registry.get(str(scanned.baseline_id)))
            request = request_from_records(scanned.records, block=block,
                                           lock_timeout=lock_timeout)
            if during is not None:
                threading.Thread(target=during, daemon=True).start()
            return scanned, await install_node(node, connector, base, request)

    return asyncio.run(run())
