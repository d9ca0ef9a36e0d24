"""Pieces every package manager shares: the OS probe, how a failed probe becomes a NodeError,
the refresh precondition, the lock-retry loop, argv validation and the hold-aware install
skeleton. No package-manager names here beyond the messages that quote them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from patchfleet.domain.baseline import PatchSource
from patchfleet.domain.facts import OsInfo, RefreshResult
from patchfleet.errors import CommandError, LockError, NodeError, SourceError
from patchfleet.managers.base import (
    CollectOptions,
    InstallOutcome,
    InstallRequest,
    PackageManagerSupport,
    PackageSpec,
    Probe,
    ProbeOutputs,
    Progress,
    on_stdout,
)
from patchfleet.parsers import os_release
from patchfleet.transport.base import Command, CommandResult, Transport, script

log = logging.getLogger(__name__)

_sleep = asyncio.sleep  # tests replace it to run lock retries instantly
_FIRST_BACKOFF = 1.0
TAIL_LINES = 40
HELD = "held"

OS_RELEASE: Probe[OsInfo] = Probe(
    Command(script("cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"),
            name="os-release"),
    on_stdout(lambda text: os_release.os_info(os_release.parse_os_release(text))),
)


def command_failure(node_id: str, command: Command, result: CommandResult) -> NodeError:
    """The NodeError of a probe that exited with a status its command does not accept."""
    err = result.stderr.strip() or result.stdout.strip()
    tail = " | ".join(err.splitlines()[-3:])[:500]
    if "dpkg was interrupted" in err:
        return CommandError(
            f"{command.label}: dpkg was interrupted on this node; run 'dpkg --configure -a' "
            "on it (patchfleet does not repair it during a scan)",
            node_id,
        )
    if "Could not get lock" in err:
        return LockError(f"{command.label}: {tail}", node_id)
    return CommandError(f"{command.label} exited {result.exit_status}: {tail}", node_id)


async def run_checked(transport: Transport, command: Command) -> CommandResult:
    """Run ``command``; an unaccepted exit status raises :func:`command_failure`'s error."""
    result = await transport.run(command)
    if not result.ok_for(command):
        raise command_failure(transport.node_id, command, result)
    return result


async def collect_os(transport: Transport) -> OsInfo:
    """What /etc/os-release says, and so which package manager the node uses."""
    return ProbeOutputs().add(OS_RELEASE, await run_checked(transport, OS_RELEASE.command))


def refresh_skipped(
    transport: Transport, node_sudo: bool, options: CollectOptions, what: str
) -> RefreshResult | None:
    """Why a metadata refresh is not attempted (disabled, or no root and no sudo), or None."""
    if not options.refresh:
        return RefreshResult(attempted=False, ok=True, message="refresh disabled")
    if not transport.is_root and not node_sudo:
        return RefreshResult(
            attempted=False,
            ok=False,
            message=f"repository metadata not refreshed: {what} needs root; connect as root or "
            "set sudo: true for this node (scanned with the metadata already on the node)",
        )
    return None


async def refresh_first(support: PackageManagerSupport, transport: Transport, *,
                        node_sudo: bool, options: CollectOptions | None,
                        progress: Progress | None, what: str = "repository metadata"
                        ) -> tuple[CollectOptions, RefreshResult]:
    """How every collector starts: the refresh (announced as ``refreshing {what}``), then the
    announcement of the read-only probes. Returns the options in effect and the refresh."""
    options = options or CollectOptions()
    note = progress or (lambda _msg: None)
    note(f"refreshing {what}")
    if options.source is not None:
        refresh = await refresh_source(support, transport, options.source,
                                       node_sudo=node_sudo, options=options)
    else:
        refresh = await support.refresh(transport, node_sudo=node_sudo, options=options)
    note("reading package state")
    return options, refresh


async def refresh_source(support: PackageManagerSupport, transport: Transport,
                         source: PatchSource, *, node_sudo: bool, options: CollectOptions
                         ) -> RefreshResult:
    """Refresh ``source`` (``transport`` already points the manager at it), whatever
    ``options.refresh`` says: its metadata starts empty. Anything short of a complete refresh
    raises :class:`SourceError`, since a scan or install without the source's metadata would
    judge or patch the node against nothing."""
    refresh = await support.refresh(transport, node_sudo=node_sudo,
                                    options=replace(options, refresh=True))
    if not (refresh.attempted and refresh.ok):
        why = _STALE_NOTE.sub("", refresh.message)  # there is no earlier metadata to fall back on
        raise SourceError(f"source {source.name!r} could not be refreshed: {why}",
                          transport.node_id)
    return refresh


_STALE_NOTE = re.compile(r"; scanned with the \w+ already on the node$")


# ---------------------------------------------------------------------------------------------
# held locks: retry with backoff, then name the holder
# ---------------------------------------------------------------------------------------------

Locked = Callable[[CommandResult], bool]


def never_locked(result: CommandResult) -> bool:
    return False


async def run_retrying(transport: Transport, command: Command, locked: Locked,
                       lock_timeout: float) -> CommandResult:
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


def check_result(node_id: str, command: Command, result: CommandResult, locked: Locked,
                 waited: float) -> None:
    """Raise LockError when ``result`` is still locked after ``waited`` s of retries, and
    :func:`command_failure`'s errors for other unaccepted exit statuses."""
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
        raise command_failure(node_id, command, result)


# ---------------------------------------------------------------------------------------------
# argv parts: checked before they reach a node's shell
# ---------------------------------------------------------------------------------------------

ARCH_RE = re.compile(r"^[a-z0-9_]+$")


def arch_part(arch: str) -> str:
    if not ARCH_RE.match(arch):
        raise ValueError(f"refusing to send architecture {arch!r}")
    return arch


PACKAGE_WORD = r"[A-Za-z0-9_+][A-Za-z0-9._+~^:=-]*"
"""One package word as the install builders write it (a Debian ``name:arch=version``, an rpm
NEVRA, a zypper ``name.arch=E:V-R``, a bare name): never an option, never a path."""
PACKAGE_WORDS = rf"--( {PACKAGE_WORD})+"
"""The variable tail of an install command: ``--`` (the end of the package manager's options)
and one or more package words. The sudoers rules match it with this regular expression."""


def nonempty(parts: Sequence[str], what: str) -> Sequence[str]:
    if not parts:
        raise ValueError(f"{what} needs at least one package")
    return parts


# ---------------------------------------------------------------------------------------------
# installs
# ---------------------------------------------------------------------------------------------


def tail(result: CommandResult | None) -> str:
    """The last lines an install printed, for the node's record."""
    if result is None:
        return ""
    text = (result.stdout + "\n" + result.stderr).replace("\r", "\n")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-TAIL_LINES:])


def short(result: CommandResult) -> str:
    err = result.stderr.strip() or result.stdout.strip()
    return " | ".join(err.splitlines()[-3:])[:500]


async def must(transport: Transport, command: Command) -> CommandResult:
    """Run ``command``; an unaccepted exit status is a NodeError naming the command."""
    result = await transport.run(command)
    if not result.ok_for(command):
        raise NodeError(f"{command.label} exited {result.exit_status}: {short(result)}")
    return result


def held_reason(errors: dict[str, str]) -> str | None:
    held = sorted(n for n, why in errors.items() if why == HELD)
    if not held:
        return None
    return ("HELD: held on the node, not installed (patchfleet never lifts a hold or lock the "
            f"operator set): {', '.join(held)}")


async def install_around_holds(
    transport: Transport,
    request: InstallRequest,
    blocked_by_us: list[str],
    *,
    held: frozenset[str],
    block: Callable[[list[str]], Command],
    block_failure: Callable[[Command, CommandResult], str],
    install: Callable[[tuple[PackageSpec, ...], dict[str, str]], Awaitable[InstallOutcome]],
) -> InstallOutcome:
    """The install of managers whose holds or locks live on the node (apt-mark hold, zypper
    locks): packages the operator ``held`` are left out and reported; rejected names are
    blocked here (``block``) and recorded in ``blocked_by_us`` before the block runs, since a
    lost connection may still have applied it; then ``install`` runs the rest."""
    names = sorted(set(request.block))
    errors = {s.name: HELD for s in request.packages if s.name in held}
    specs = tuple(s for s in request.packages if s.name not in held)
    ours = [n for n in names if n not in held]
    if ours:
        cmd = block(ours)
        blocked_by_us.extend(ours)
        result = await transport.run(cmd)
        if not result.ok_for(cmd):
            return InstallOutcome(ok=False, reason=block_failure(cmd, result),
                                  output_tail=tail(result))
    if not specs:
        return InstallOutcome(ok=not errors, reason=held_reason(errors), package_errors=errors)
    return await install(specs, errors)
