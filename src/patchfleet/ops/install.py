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

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from patchfleet.domain.baseline import Baseline
from patchfleet.domain.facts import InstalledPackage, OsInfo, PackageManager
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.records import PatchRecord, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.errors import CommandTimeout, ConnectError, NodeError, PatchfleetError
from patchfleet.managers import probes
from patchfleet.managers.collect import CollectOptions, collect_facts, collect_os
from patchfleet.managers.collect_rpm import DNF_LOCKED_EXIT
from patchfleet.managers.install_commands import (
    APT_SHOWHOLD,
    PackageSpec,
    apt_install,
    apt_mark,
    dnf_upgrade,
    parse_zypper_locks,
    zypper_lock,
    zypper_locks,
    zypper_update,
)
from patchfleet.ops.scan import ScanOptions, failed_result, judge, node_result
from patchfleet.parsers import dpkg, reboot, rpm
from patchfleet.transport.base import Command, CommandResult, Connector, Transport

log = logging.getLogger("patchfleet.ops.install")

TAIL_LINES = 40
CONNECTION_LOST = "connection lost during install; the next scan tells the truth"
HELD = "held"
_sleep = asyncio.sleep  # tests replace it to run lock retries instantly


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """What to install on one node: exact versions, and names the resolver must not touch
    (rejected patches under ``BLOCK``). An InstallPlan converts into this."""

    packages: tuple[PackageSpec, ...]
    block: tuple[str, ...] = ()
    lock_timeout: int = 60
    """Seconds to wait for the package manager's lock (apt DPkg::Lock::Timeout, zypper
    ZYPP_LOCK_TIMEOUT, dnf retries with backoff)."""


@dataclass(frozen=True, slots=True)
class InstallOutcome:
    ok: bool
    reason: str | None = None
    package_errors: dict[str, str] = field(default_factory=dict)
    """name -> why this package was not installed (held, not found...), when known."""
    output_tail: str = ""
    reboot_required: bool = False
    """The OS says a reboot is needed (zypper 102, /var/run/reboot-required, needs-restarting)."""
    unblock_pending: tuple[str, ...] = ()
    """Names patchfleet blocked and could not unblock (connection lost): lift on reconnect."""
    attempted: tuple[PackageSpec, ...] = ()
    duration: float = 0.0


def _tail(result: CommandResult | None) -> str:
    if result is None:
        return ""
    text = (result.stdout + "\n" + result.stderr).replace("\r", "\n")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-TAIL_LINES:])


def _short(result: CommandResult) -> str:
    err = result.stderr.strip() or result.stdout.strip()
    return " | ".join(err.splitlines()[-3:])[:500]


# ---------------------------------------------------------------------------------------------
# failure mapping, per manager
# ---------------------------------------------------------------------------------------------

_APT_LOCK = re.compile(r"Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]*)\))?")
_APT_NO_VERSION = re.compile(r"Version '([^']+)' for '([^']+)' was not found")
_DNF_NO_MATCH = re.compile(r"No match for argument: (\S+)")
_ZYPP_HOLDER = re.compile(r"locked by the application with pid (\d+) \(([^)]*)\)")
DPKG_INTERRUPTED = (
    "dpkg was interrupted on this node; run 'dpkg --configure -a' on it and install again "
    "(patchfleet does not repair dpkg itself)"
)


def apt_failure(result: CommandResult, lock_timeout: int) -> tuple[str, dict[str, str]]:
    text = result.stderr + "\n" + result.stdout
    if m := _APT_LOCK.search(text):
        holder = f"process {m[2]}" + (f" ({m[3]})" if m[3] else "")
        return (f"LOCKED: dpkg lock held by {holder} for more than {lock_timeout} s "
                f"({m[1]})"), {}
    if "dpkg was interrupted" in text:
        return f"DPKG_INTERRUPTED: {DPKG_INTERRUPTED}", {}
    errors = {m[2].split(":")[0]: f"version {m[1]} not found"
              for m in _APT_NO_VERSION.finditer(text)}
    return f"COMMAND_FAILED: apt-get install exited {result.exit_status}: {_short(result)}", errors


def dnf_failure(result: CommandResult) -> tuple[str, dict[str, str]]:
    errors = {m[1]: "no match" for m in _DNF_NO_MATCH.finditer(result.stderr + result.stdout)}
    return f"COMMAND_FAILED: dnf upgrade exited {result.exit_status}: {_short(result)}", errors


def zypper_failure(result: CommandResult, lock_timeout: int) -> str:
    if result.exit_status == 7:
        text = result.stderr + "\n" + result.stdout
        m = _ZYPP_HOLDER.search(text)
        holder = f" by process {m[1]} ({m[2]})" if m else ""
        return f"LOCKED: zypp lock held{holder} for more than {lock_timeout} s"
    return f"COMMAND_FAILED: zypper update exited {result.exit_status}: {_short(result)}"


# ---------------------------------------------------------------------------------------------
# the executor
# ---------------------------------------------------------------------------------------------


async def _held_apt(transport: Transport) -> frozenset[str]:
    result = await transport.run(APT_SHOWHOLD)
    if not result.ok_for(APT_SHOWHOLD):
        raise NodeError(f"apt-mark showhold exited {result.exit_status}: {_short(result)}")
    return frozenset(n.split(":")[0] for n in result.stdout.split())


async def _locked_zypper(transport: Transport, lock_timeout: int) -> frozenset[str]:
    cmd = zypper_locks(lock_timeout)
    result = await transport.run(cmd)
    if not result.ok_for(cmd):
        raise NodeError(zypper_failure(result, lock_timeout))
    return parse_zypper_locks(result.stdout)


async def _must(transport: Transport, command: Command) -> CommandResult:
    result = await transport.run(command)
    if not result.ok_for(command):
        raise NodeError(f"{command.label} exited {result.exit_status}: {_short(result)}")
    return result


async def _unblock(transport: Transport, manager: PackageManager, names: Iterable[str],
                   lock_timeout: int) -> None:
    names = sorted(names)
    if not names:
        return
    if manager is PackageManager.APT:
        await _must(transport, apt_mark("unhold", names))
    elif manager is PackageManager.ZYPPER:
        await _must(transport, zypper_lock("removelock", names, lock_timeout))


async def unblock(transport: Transport, os: OsInfo, names: Iterable[str],
                  lock_timeout: int = 60) -> None:
    """Lift blocks a lost connection left behind (:attr:`InstallOutcome.unblock_pending`)."""
    await _unblock(transport, os.package_manager, names, lock_timeout)


async def install_packages(transport: Transport, os: OsInfo, request: InstallRequest
                           ) -> InstallOutcome:
    """Block, install, always unblock; every node failure becomes a failed outcome."""
    started = time.perf_counter()
    manager = os.package_manager
    if manager not in (PackageManager.APT, PackageManager.DNF, PackageManager.ZYPPER):
        return InstallOutcome(ok=False, reason=f"UNSUPPORTED_OS: patchfleet cannot install "
                              f"with {manager.value}")
    blocked_by_us: list[str] = []
    outcome: InstallOutcome
    try:
        outcome = await _install(transport, manager, request, blocked_by_us)
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
            await _unblock(transport, manager, blocked_by_us, request.lock_timeout)
        except NodeError as err:
            log.warning("%s: could not unblock %s: %s", transport.node_id, blocked_by_us, err)
            pending = tuple(sorted(blocked_by_us))
    return replace(outcome, unblock_pending=pending, duration=time.perf_counter() - started)


async def _install(transport: Transport, manager: PackageManager, request: InstallRequest,
                   blocked_by_us: list[str]) -> InstallOutcome:
    block = sorted(set(request.block))
    timeout = request.lock_timeout
    if manager is PackageManager.DNF:
        return await _install_dnf(transport, request, block)

    # apt and zypper: an existing hold/lock is the operator's; ours are added and removed here.
    if manager is PackageManager.APT:
        already = await _held_apt(transport)
    else:
        already = await _locked_zypper(transport, timeout)
    errors = {s.name: HELD for s in request.packages if s.name in already}
    specs = tuple(s for s in request.packages if s.name not in already)
    ours = [n for n in block if n not in already]
    if ours:
        if manager is PackageManager.APT:
            cmd = apt_mark("hold", ours)
        else:
            cmd = zypper_lock("addlock", ours, timeout)
        blocked_by_us.extend(ours)  # before running: a lost connection may still have held them
        result = await transport.run(cmd)
        if not result.ok_for(cmd):
            reason = (zypper_failure(result, timeout) if manager is PackageManager.ZYPPER
                      else f"COMMAND_FAILED: {cmd.label} exited {result.exit_status}: "
                      f"{_short(result)}")
            return InstallOutcome(ok=False, reason=reason, output_tail=_tail(result))
    if not specs:
        return InstallOutcome(ok=not errors, reason=_held_reason(errors), package_errors=errors)
    if manager is PackageManager.APT:
        return await _install_apt(transport, specs, timeout, errors)
    return await _install_zypper(transport, specs, timeout, errors)


def _held_reason(errors: dict[str, str]) -> str | None:
    held = sorted(n for n, why in errors.items() if why == HELD)
    if not held:
        return None
    return ("HELD: held on the node, not installed (patchfleet never lifts a hold or lock the "
            f"operator set): {', '.join(held)}")


async def _install_apt(transport: Transport, specs: tuple[PackageSpec, ...], lock_timeout: int,
                       errors: dict[str, str]) -> InstallOutcome:
    cmd = apt_install(specs, lock_timeout)
    result = await transport.run(cmd)
    if not result.ok_for(cmd):
        reason, pkg_errors = apt_failure(result, lock_timeout)
        return InstallOutcome(ok=False, reason=reason, package_errors={**errors, **pkg_errors},
                              output_tail=_tail(result), attempted=specs)
    state = reboot.parse_apt_reboot((await _must(transport, probes.APT_REBOOT)).stdout)
    return InstallOutcome(ok=not errors, reason=_held_reason(errors), package_errors=errors,
                          output_tail=_tail(result), reboot_required=state.required,
                          attempted=specs)


async def _install_dnf(transport: Transport, request: InstallRequest, block: list[str]
                       ) -> InstallOutcome:
    cmd = dnf_upgrade(request.packages, block)
    waited, delay = 0.0, 1.0
    while True:
        result = await transport.run(cmd)
        if result.exit_status != DNF_LOCKED_EXIT or waited >= request.lock_timeout:
            break
        pause = min(delay, request.lock_timeout - waited)
        await _sleep(pause)
        waited, delay = waited + pause, delay * 2
    if result.exit_status == DNF_LOCKED_EXIT:
        m = re.search(r"locked by (\d+)", result.stderr + result.stdout)
        holder = f" by process {m[1]}" if m else ""
        return InstallOutcome(ok=False, reason=f"LOCKED: dnf lock held{holder} for more than "
                              f"{request.lock_timeout} s", output_tail=_tail(result),
                              attempted=request.packages)
    if not result.ok_for(cmd):
        reason, errors = dnf_failure(result)
        return InstallOutcome(ok=False, reason=reason, package_errors=errors,
                              output_tail=_tail(result), attempted=request.packages)
    nr = await transport.run(probes.DNF_NEEDS_RESTARTING)
    return InstallOutcome(ok=True, output_tail=_tail(result), reboot_required=nr.exit_status == 1,
                          attempted=request.packages)


async def _install_zypper(transport: Transport, specs: tuple[PackageSpec, ...], lock_timeout: int,
                          errors: dict[str, str]) -> InstallOutcome:
    cmd = zypper_update(specs, lock_timeout)
    result = await transport.run(cmd)
    if result.exit_status == 103:  # zypper updated itself: the same command again, once
        result = await transport.run(cmd)
    if not result.ok_for(cmd) or result.exit_status == 103:
        return InstallOutcome(ok=False, reason=zypper_failure(result, lock_timeout),
                              package_errors=errors, output_tail=_tail(result), attempted=specs)
    reboot_needed = result.exit_status == 102
    if not reboot_needed:
        nr = await transport.run(probes.ZYPPER_NEEDS_REBOOTING)
        reboot_needed = nr.exit_status == 102
    return InstallOutcome(ok=not errors, reason=_held_reason(errors), package_errors=errors,
                          output_tail=_tail(result), reboot_required=reboot_needed,
                          attempted=specs)


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


async def _installed(transport: Transport, os: OsInfo) -> dict[tuple[str, str], str]:
    if os.package_manager is PackageManager.APT:
        pkgs: tuple[InstalledPackage, ...] = dpkg.parse_dpkg_query(
            (await _must(transport, probes.DPKG_QUERY)).stdout)
        pkgs = tuple(p for p in pkgs if p.status == "installed")
    else:
        pkgs = rpm.parse_rpm_query((await _must(transport, probes.RPM_QUERY)).stdout)
    return {(p.name, p.arch): p.version for p in pkgs}


def post_install_records(
    records: Iterable[PatchRecord],
    request: InstallRequest,
    before: dict[tuple[str, str], str],
    after: dict[tuple[str, str], str],
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
    (first-seen dates, pending reboots, snapshot). Never raises for a node problem."""
    started = datetime.now(UTC)
    options = options or ScanOptions(collect=collect or CollectOptions())
    collect = options.collect
    outcome = InstallOutcome(ok=False, reason="not started")
    before: dict[tuple[str, str], str] = {}
    os: OsInfo | None = None
    try:
        async with connector.open(node) as transport:
            os = await collect_os(transport)
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
        async with connector.open(node) as transport:
            if outcome.unblock_pending and os is not None:
                await unblock(transport, os, outcome.unblock_pending, request.lock_timeout)
                outcome = replace(outcome, unblock_pending=())
            facts = await collect_facts(transport, node.id, node.host, node_sudo=node.sudo,
                                        options=collect)
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
