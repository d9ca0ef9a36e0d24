"""Gather :class:`NodeFacts` from a dnf or zypper node through a transport. No Prefect here.

The sequence mirrors the apt collector: an optional metadata refresh (AWS refreshes too; a held
lock or a failing repository is recorded as a warning and the scan goes on with the metadata the
node has), then the boot time and the OS's reboot verdict, rpm's database, the available
upgrades and the advisories (dnf updateinfo notices, zypper patches with their packages).
Scanning never changes the node beyond the package manager's metadata cache.

Locks: dnf probes exit 200 at once on a held lock (``exit_on_lock``); the collector retries them
with backoff (1, 2, 4, ... s) within ``lock_timeout``. zypper waits for its lock itself
(``ZYPP_LOCK_TIMEOUT``, set by the probes) and then exits 7, which is final. Either way a refresh
that stays locked is a warning, as apt's is, and a query that stays locked fails the node with
:class:`LockError`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from patchfleet.domain.facts import (
    Advisory,
    AvailableUpdate,
    InstalledPackage,
    NodeFacts,
    OsInfo,
    RebootState,
    RefreshResult,
    RpmRef,
)
from patchfleet.errors import CommandError, LockError
from patchfleet.managers import probes
from patchfleet.managers.collect import CollectOptions, _command_failure, refresh_skipped
from patchfleet.parsers import dnf, rpm, updateinfo, zypper
from patchfleet.transport.base import Command, CommandResult, Transport

log = logging.getLogger(__name__)

DNF_LOCKED_EXIT = 200
"""dnf's exit status with ``exit_on_lock=True`` when another dnf holds its lock."""
PATCH_INFO_BATCH = 200
"""``zypper info -t patch`` takes patch names on the command line; batches bound each command."""
_FIRST_BACKOFF = 1.0

_sleep = asyncio.sleep  # tests replace it to run lock retries instantly


def dnf_locked(result: CommandResult) -> bool:
    return result.exit_status == DNF_LOCKED_EXIT


def _never_locked(result: CommandResult) -> bool:
    return False


async def _run_retrying(
    transport: Transport,
    command: Command,
    locked: Callable[[CommandResult], bool],
    lock_timeout: float,
) -> CommandResult:
    """Run ``command``; while ``locked(result)``, wait 1, 2, 4, ... s up to ``lock_timeout`` s
    in total and run it again. Returns the last result, locked or not."""
    waited = 0.0
    delay = _FIRST_BACKOFF
    while True:
        result = await transport.run(command)
        if not locked(result) or waited >= lock_timeout:
            return result
        pause = min(delay, lock_timeout - waited)
        log.debug("%s: %s is locked; retrying in %.0f s", transport.node_id, command.label, pause)
        await _sleep(pause)
        waited += pause
        delay *= 2


def check_result(node_id: str, command: Command, result: CommandResult,
                 locked: Callable[[CommandResult], bool], waited: float) -> None:
    """Raise LockError when ``result`` is still locked after ``waited`` s of retries, and the
    apt collector's errors for other unaccepted exit statuses."""
    if locked(result):
        raise LockError(
            f"{command.label}: the package manager stayed locked{_holder(result)} for "
            f"{waited:.0f} s; another package manager run is in progress on the node",
            node_id,
        )
    if not result.ok_for(command):
        if m := _NO_CACHE.search(result.stderr):
            raise CommandError(
                f"{command.label}: the node has no metadata for repository {m[1]!r} (its "
                "refresh failed, see the refresh warning); fix or disable the repository",
                node_id,
            )
        raise _command_failure(node_id, command, result)


_NO_CACHE = re.compile(r"Cache-only enabled but no cache for '([^']+)'")
_HOLDERS = (
    re.compile(r"locked by (?P<pid>\d+)[\s\S]*?The application with PID \d+ is: (?P<app>\S+)"),
    re.compile(r"locked by the application with pid (?P<pid>\d+) \((?P<app>[^)]*)\)"),
    re.compile(r"locked by (?P<pid>\d+)"),
)


def _holder(result: CommandResult) -> str:
    text = result.stderr + "\n" + result.stdout
    for pattern in _HOLDERS:
        if m := pattern.search(text):
            app = m.groupdict().get("app")
            return f" by {app} (pid {m['pid']})" if app else f" by pid {m['pid']}"
    return ""


async def _query(
    transport: Transport,
    command: Command,
    locked: Callable[[CommandResult], bool],
    options: CollectOptions,
) -> CommandResult:
    """A read-only query: retried while locked, then LockError; other failures as apt's."""
    result = await _run_retrying(transport, command, locked, options.lock_timeout)
    check_result(transport.node_id, command, result, locked, options.lock_timeout)
    return result


def _facts(
    node_id: str,
    host: str,
    os: OsInfo,
    refresh: RefreshResult,
    warnings: list[str],
    *,
    installed: tuple[InstalledPackage, ...],
    updates: tuple[AvailableUpdate, ...],
    advisories: tuple[Advisory, ...],
    reboot: RebootState,
    boot_time: datetime,
) -> NodeFacts:
    notes = [refresh.message] if refresh.message and not refresh.ok else []
    notes += [w for w in warnings if w not in notes]
    return NodeFacts(
        node_id=node_id,
        host=host,
        os=os,
        installed=installed,
        candidates=(),
        planned=(),
        reboot=reboot,
        refresh=refresh,
        collected_at=datetime.now(UTC),
        warnings=tuple(notes),
        updates=updates,
        advisories=advisories,
        boot_time=boot_time,
    )


# ---------------------------------------------------------------------------------------------
# dnf
# ---------------------------------------------------------------------------------------------


async def refresh_dnf(transport: Transport, node_sudo: bool, options: CollectOptions
                      ) -> RefreshResult:
    skipped = refresh_skipped(transport, node_sudo, options, "dnf makecache")
    if skipped is not None:
        return skipped
    result = await _run_retrying(transport, probes.DNF_MAKECACHE, dnf_locked,
                                 options.lock_timeout)
    return dnf.parse_makecache(result.exit_status, result.stdout, result.stderr)


async def collect_dnf(
    transport: Transport,
    node_id: str,
    host: str,
    os: OsInfo,
    *,
    node_sudo: bool = False,
    options: CollectOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> NodeFacts:
    """All facts a dnf node offers, for one scan."""
    options = options or CollectOptions()
    note = progress or (lambda _msg: None)
    note("refreshing repository metadata")
    refresh = await refresh_dnf(transport, node_sudo, options)
    note("reading package state")

    async def q(command: Command) -> CommandResult:
        return await _query(transport, command, dnf_locked, options)

    boot = dnf.parse_boot((await q(probes.BOOT)).stdout)
    nr = await q(probes.DNF_NEEDS_RESTARTING)
    reboot_state = dnf.parse_needs_restarting(nr.exit_status, nr.stdout, boot.boot_id)
    installed = rpm.parse_rpm_query((await q(probes.RPM_QUERY)).stdout)
    updates = dnf.parse_upgrades((await q(probes.DNF_UPGRADES)).stdout, installed)
    listed = dnf.parse_updateinfo_list((await q(probes.DNF_UPDATEINFO_LIST)).stdout)
    dump = updateinfo.parse_dump((await q(probes.DNF_UPDATEINFO_XML)).stdout,
                                 probes.DNF_UPDATEINFO_XML.label)
    return _facts(
        node_id, host, os, refresh, updateinfo_warnings(dump, updates),
        installed=installed,
        updates=updates,
        advisories=dnf.advisories(listed, dump),
        reboot=reboot_state,
        boot_time=boot.boot_time,
    )


def updateinfo_warnings(dump: updateinfo.Dump, updates: Iterable[AvailableUpdate]
                        ) -> list[str]:
    """Updates from repositories without advisories (their packages are in no notice: only
    rules with ``enable_non_security`` approve them, spec 1.4), repositories whose updateinfo
    could not be read, and notices with unreadable dates."""
    pending: dict[str, int] = {}
    for u in updates:
        pending[u.repository] = pending.get(u.repository, 0) + 1
    out = []
    for repo, state in sorted(dump.repos.items()):
        if state == "none" and pending.get(repo):
            out.append(f"repository {repo} has no updateinfo: its {pending[repo]} update(s) "
                       "carry no classification or severity (approved only by rules with "
                       "enable_non_security)")
        elif state not in ("ok", "none"):
            out.append(f"repository {repo}: updateinfo not read ({state})")
    return out + list(dump.problems)


# ---------------------------------------------------------------------------------------------
# zypper
# ---------------------------------------------------------------------------------------------


async def refresh_zypper(transport: Transport, node_sudo: bool, options: CollectOptions
                         ) -> RefreshResult:
    skipped = refresh_skipped(transport, node_sudo, options, "zypper refresh")
    if skipped is not None:
        return skipped
    result = await transport.run(probes.ZYPPER_REFRESH)
    return zypper.parse_refresh(result.exit_status, result.stdout, result.stderr)


async def collect_zypper(
    transport: Transport,
    node_id: str,
    host: str,
    os: OsInfo,
    *,
    node_sudo: bool = False,
    options: CollectOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> NodeFacts:
    """All facts a zypper node offers, for one scan."""
    options = options or CollectOptions()
    note = progress or (lambda _msg: None)
    note("refreshing repository metadata")
    refresh = await refresh_zypper(transport, node_sudo, options)
    note("reading package state")
    warnings: list[str] = []

    async def zq(command: Command) -> CommandResult:
        # zypper itself waits ZYPP_LOCK_TIMEOUT s for a held lock (probes.ZYPPER_ENV), so exit
        # 7 is final: check_exit raises LockError.
        result = await transport.run(command)
        _, found = zypper.check_exit(command.label, result.exit_status, result.stdout,
                                     result.stderr, transport.node_id)
        warnings.extend(w for w in found if w not in warnings)
        return result

    async def q(command: Command) -> str:
        return (await _query(transport, command, _never_locked, options)).stdout

    boot = dnf.parse_boot(await q(probes.BOOT))
    nr = await zq(probes.ZYPPER_NEEDS_REBOOTING)
    reboot_state = zypper.parse_needs_rebooting(nr.exit_status, nr.stdout, boot.boot_id)
    installed = rpm.parse_rpm_query(await q(probes.RPM_QUERY))
    updates = zypper.parse_list_updates((await zq(probes.ZYPPER_LIST_UPDATES)).stdout)
    entries = zypper.parse_list_patches((await zq(probes.ZYPPER_LIST_PATCHES)).stdout)
    dump = updateinfo.parse_dump(await q(probes.ZYPPER_UPDATEINFO), probes.ZYPPER_UPDATEINFO.label)
    warnings.extend(updateinfo_warnings(dump, updates))
    names = zypper.undescribed(entries, dump)
    details: dict[str, tuple[RpmRef, ...]] = {}
    for i in range(0, len(names), PATCH_INFO_BATCH):
        batch = names[i : i + PATCH_INFO_BATCH]
        details.update(zypper.parse_patch_info(
            (await zq(probes.zypper_patch_info(batch))).stdout))
    return _facts(
        node_id, host, os, refresh, warnings,
        installed=installed,
        updates=updates,
        advisories=zypper.patches(entries, dump, details),
        reboot=reboot_state,
        boot_time=boot.boot_time,
    )
