"""Apply an approved set of package versions on one node through a transport. No Prefect here.

:func:`install_packages` runs the block step, the install and, always, the unblock step, and
turns every failure into an :class:`InstallOutcome` with a reason (it never raises for a node
problem). :func:`install_node` is the Install operation for one node: read what is installed,
install, rescan (``collect_facts`` + ``evaluate``) and produce the post-install records.

Decisions (see also the README):

- **Held packages** (``apt-mark hold``) and packages under an existing zypper lock are the
  operator's explicit choice: patchfleet never lifts them. Such approved packages are left out
  of the install and reported FAILED with the reason ``held``; the rest is installed.
- **dpkg interrupted**: patchfleet does not run ``dpkg --configure -a`` (it would run the
  maintainer scripts of whatever an earlier run left half-done, unattended). The node fails
  with the fix in the reason; nothing is installed.
- **Pending reboot**: packages this run installed are INSTALLED_PENDING_REBOOT (AWS: "installed
  by a Patch Manager Install, no reboot since"); the set is returned so the reboot handling can
  clear them after a reboot and a scan.
- **Connection lost** during the install: FAILED, "connection lost during install; the next scan
  tells the truth". install_node reconnects once for the rescan and to lift its own blocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from patchfleet.domain.baseline import Baseline
from patchfleet.domain.facts import OsInfo
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.records import PatchRecord, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.errors import CommandTimeout, ConnectError, NodeError, PatchfleetError
from patchfleet.managers.base import (
    CollectOptions,
    InstalledVersions,
    InstallOutcome,
    InstallRequest,
    PackageManagerSupport,
    PackageSpec,
)
from patchfleet.managers.common import collect_os, must
from patchfleet.managers.registry import collect_facts, find
from patchfleet.ops.scan import ScanOptions, failed_result, judge, node_result, with_source
from patchfleet.transport.base import Connector, Transport

__all__ = [
    "CONNECTION_LOST",
    "InstallNodeResult",
    "InstallOutcome",
    "InstallRequest",
    "install_node",
    "install_packages",
    "post_install_records",
    "request_from_records",
    "unblock",
]

log = logging.getLogger("patchfleet.ops.install")

CONNECTION_LOST = "connection lost during install; the next scan tells the truth"


async def _unblock(transport: Transport, support: PackageManagerSupport | None,
                   names: Iterable[str], lock_timeout: int) -> None:
    names = sorted(names)
    if not names or support is None:
        return
    cmd = support.unblock_command(names, lock_timeout)
    if cmd is not None:
        await must(transport, cmd)


async def unblock(transport: Transport, os: OsInfo, names: Iterable[str],
                  lock_timeout: int = 60) -> None:
    """Lift blocks a lost connection left behind (:attr:`InstallOutcome.unblock_pending`)."""
    await _unblock(transport, find(os.package_manager), names, lock_timeout)


async def install_packages(transport: Transport, os: OsInfo, request: InstallRequest
                           ) -> InstallOutcome:
    """Block, install, always unblock; every node failure becomes a failed outcome."""
    started = time.perf_counter()
    support = find(os.package_manager)
    if support is None:
        return InstallOutcome(ok=False, reason=f"UNSUPPORTED_OS: patchfleet cannot install "
                              f"with {os.package_manager.value}")
    blocked_by_us: list[str] = []
    outcome: InstallOutcome
    try:
        outcome = await support.install(transport, request, blocked_by_us)
    except (ConnectError, CommandTimeout) as err:
        what = "timed out" if isinstance(err, CommandTimeout) else "lost"
        reason = CONNECTION_LOST if what == "lost" else (
            "install timed out; the next scan tells the truth")
        outcome = InstallOutcome(ok=False, reason=f"{err.reason_code}: {reason} ({err})")
    except NodeError as err:
        outcome = InstallOutcome(ok=False, reason=err.reason)
    pending: tuple[str, ...] = ()
    if blocked_by_us:
        try:
            await _unblock(transport, support, blocked_by_us, request.lock_timeout)
        except NodeError as err:
            log.warning("%s: could not unblock %s: %s", transport.node_id, blocked_by_us, err)
            pending = tuple(sorted(blocked_by_us))
    return replace(outcome, unblock_pending=pending, duration=time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# the Install operation for one node
# ---------------------------------------------------------------------------------------------

Installed = frozenset[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class InstallNodeResult:
    result: NodeResult
    """Post-install records (from the rescan) and summary; FAILED when the rescan failed."""
    outcome: InstallOutcome
    installed: Installed
    """(name, arch, version) this run installed or upgraded, dependencies included: the
    orchestrator's input for reboot handling."""


def request_from_records(records: Iterable[PatchRecord], block: Iterable[str] = (),
                         lock_timeout: int = 60) -> InstallRequest:
    """Every approved MISSING patch at its available version (the AWS Install set)."""
    specs = tuple(
        PackageSpec(r.package, r.arch, r.available_version)
        for r in records
        if r.state is PatchState.MISSING and r.available_version
    )
    return InstallRequest(packages=specs, block=tuple(block), lock_timeout=lock_timeout)


async def _installed(transport: Transport, os: OsInfo) -> InstalledVersions:
    """What is installed; nothing for a manager patchfleet cannot install with (the install
    refuses it, and its rescan fails)."""
    support = find(os.package_manager)
    return await support.installed(transport) if support is not None else {}


def post_install_records(
    records: Iterable[PatchRecord],
    request: InstallRequest,
    before: InstalledVersions,
    after: InstalledVersions,
) -> tuple[tuple[PatchRecord, ...], Installed]:
    """The rescan's records, adjusted for what this run did: requested packages now at their
    version are INSTALLED_PENDING_REBOOT (installed by this run, no reboot since); requested
    packages still below it are FAILED; packages this run added or changed without being
    requested are INSTALLED_OTHER unless the baseline approves them anyway."""
    requested = {(s.name, s.arch): s for s in request.packages}
    installed = frozenset(
        (name, arch, version) for (name, arch), version in after.items()
        if before.get((name, arch)) != version
    )
    changed = {(n, a) for n, a, _ in installed}
    out = []
    for r in records:
        key = (r.package, r.arch)
        state = r.state
        if key in requested and state is PatchState.MISSING:
            state = PatchState.FAILED
        elif key in changed and state is PatchState.INSTALLED:
            state = PatchState.INSTALLED_PENDING_REBOOT
        if state is not r.state:
            r = replace(r, state=state)
        out.append(r)
    return tuple(out), installed


async def install_node(
    node: ResolvedNode,
    connector: Connector,
    baseline: Baseline,
    request: InstallRequest,
    *,
    collect: CollectOptions | None = None,
    now: datetime | None = None,
    options: ScanOptions | None = None,
) -> InstallNodeResult:
    """Install ``request`` on ``node``, rescan and judge it as a scan with ``options`` would
    (first-seen dates, pending reboots, snapshot). The baseline's alternative source for the
    node's product, if any, serves both the install and the rescan. Every connection uses the
    install identity, when the inventory sets one. Never raises for a node problem."""
    started = datetime.now(UTC)
    options = options or ScanOptions(collect=collect or CollectOptions())
    collect = options.collect
    outcome = InstallOutcome(ok=False, reason="not started")
    before: InstalledVersions = {}
    os: OsInfo | None = None
    installer = node.for_install()  # what changes the node: the install identity, if any
    try:
        async with connector.open(installer) as transport:
            os = await collect_os(transport)
            request = replace(request, source=baseline.source_for(os.product))
            before = await _installed(transport, os)
            if request.packages:
                outcome = await install_packages(transport, os, request)
            else:
                outcome = InstallOutcome(ok=True)
    except NodeError as err:  # before the install started (install_packages never raises)
        outcome = replace(outcome, ok=False, reason=err.reason)
    except OSError as err:
        outcome = replace(outcome, ok=False, reason=f"UNREACHABLE: {err}")
    if not outcome.ok:
        log.warning("%s: install failed: %s", node.id, outcome.reason)

    try:
        if outcome.unblock_pending and os is not None:
            async with connector.open(installer) as transport:
                await unblock(transport, os, outcome.unblock_pending, request.lock_timeout)
                outcome = replace(outcome, unblock_pending=())
        async with connector.open(installer) as transport:  # the rescan, part of the install
            rescan_os = await collect_os(transport)
            facts = await collect_facts(transport, node.id, node.host, node_sudo=node.sudo,
                                        options=with_source(collect, baseline, rescan_os),
                                        os=rescan_os)
            after = await _installed(transport, facts.os)
        records = judge(facts, baseline, node, options, now)
    except (PatchfleetError, OSError) as err:
        why = err.reason if isinstance(err, NodeError) else f"ERROR: {err}"
        reason = f"{outcome.reason}; rescan failed: {why}" if not outcome.ok else (
            f"installed, but the rescan failed: {why}")
        return InstallNodeResult(failed_result(node, started, reason, baseline_id=baseline.name),
                                 outcome, frozenset())
    if not before:  # the pre-install read never happened: nothing is known to have changed
        before = after
    records, installed = post_install_records(records, request, before, after)
    result = node_result(node, facts, baseline, records, started,
                         failure_reason=None if outcome.ok else outcome.reason)
    return InstallNodeResult(result, outcome, installed)
