"""zypper (SLES 15, openSUSE Leap 15): everything patchfleet knows about it.

Scan: os-release, an optional ``zypper refresh`` (a held lock or a failing repository is a
warning and the scan goes on with the metadata the node has), the boot time and
``needs-rebooting``, rpm's database, the package updates, every patch with its status, each
repository's raw updateinfo, and ``zypper info -t patch`` only for patches that updateinfo does
not describe. XML output (--xmlout) wherever zypper has it; only the refresh talks to
repositories (--no-refresh elsewhere).

Locks: zypper waits ``ZYPP_LOCK_TIMEOUT`` s for the zypp lock itself, then exits 7 ("System
management is locked by the application with pid N"), which is final: a refresh that stays
locked is a warning, a query that does fails the node with :class:`LockError`.

Install: ``zypper -n --no-refresh update --no-recommends name.arch=E:V-R`` with
``ZYPP_LOCK_TIMEOUT=N``; rejected packages under BLOCK get ``zypper addlock`` before and
``removelock`` after. An existing lock is the operator's: that package is left out, ``held``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from patchfleet.domain.facts import (
    AvailableUpdate,
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
    RpmRef,
)
from patchfleet.errors import NodeError
from patchfleet.managers import rpm
from patchfleet.managers.base import (
    CollectOptions,
    InstalledVersions,
    InstallOutcome,
    InstallRequest,
    PackageSpec,
    Probe,
    ProbeOutputs,
    Progress,
    on_stdout,
)
from patchfleet.managers.common import (
    OS_RELEASE,
    PACKAGE_WORDS,
    arch_part,
    check_result,
    held_reason,
    install_around_holds,
    never_locked,
    nonempty,
    refresh_first,
    refresh_skipped,
    refresh_source,
    short,
    tail,
)
from patchfleet.managers.post_probes import RESTART_PROC_MAPS
from patchfleet.managers.sources import (
    Rewrite,
    SourceLayout,
    insert_after_program,
    node_source,
)
from patchfleet.parsers import restarts, updateinfo
from patchfleet.parsers.restarts import RestartState
from patchfleet.parsers.zypper import (
    PatchEntry,
    check_exit,
    parse_list_patches,
    parse_list_updates,
    parse_needs_rebooting,
    parse_patch_info,
    parse_refresh,
    patches,
    undescribed,
)
from patchfleet.transport.base import Command, CommandResult, Transport, script

T = TypeVar("T")

PATCH_INFO_BATCH = 200
"""``zypper info -t patch`` takes patch names on the command line; batches bound each command."""

# ---------------------------------------------------------------------------------------------
# scan probes
# ---------------------------------------------------------------------------------------------

ZYPPER_LOCK_TIMEOUT = 60
ZYPPER_ENV: tuple[tuple[str, str], ...] = (("ZYPP_LOCK_TIMEOUT", str(ZYPPER_LOCK_TIMEOUT)),)
ZYPPER_CACHED: tuple[str, ...] = ("zypper", "--xmlout", "--non-interactive", "--no-refresh")

REFRESH: Probe[RefreshResult] = Probe(
    Command(
        ("zypper", "--xmlout", "--non-interactive", "refresh"),
        privileged=True,
        timeout=600,
        env=ZYPPER_ENV,
        name="zypper-refresh",
    ),
    lambda r, _o: parse_refresh(r.exit_status, r.stdout, r.stderr),
    judges_exit=True,
)

# Package updates `zypper update` would install: <update kind="package" name edition
# edition-old arch> with the source repository alias.
LIST_UPDATES: Probe[tuple[AvailableUpdate, ...]] = Probe(
    Command((*ZYPPER_CACHED, "list-updates"), env=ZYPPER_ENV, name="zypper-list-updates"),
    on_stdout(parse_list_updates),
)

# Every patch of every enabled repository, with status (needed, applied, not-needed, optional),
# category, severity, interactive/reboot/pkgmanager flags, issue date and CVE/bugzilla refs.
# Without --all, needed patches hide behind a pending update-stack patch (blocked-update-list).
LIST_PATCHES: Probe[tuple[PatchEntry, ...]] = Probe(
    Command((*ZYPPER_CACHED, "list-patches", "--all"), env=ZYPPER_ENV,
            name="zypper-list-patches"),
    on_stdout(parse_list_patches),
)

# SUSE patch ids: SUSE-SLE-Module-Basesystem-15-SP6-2025-1234, openSUSE-SLE-15.6-2025-1234.
ZYPPER_PATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:-]*$")


def _patch_info_command(args: Sequence[str]) -> Command:
    return Command((*ZYPPER_CACHED, "info", "-t", "patch", *args), env=ZYPPER_ENV,
                   name="zypper-patch-info")


def zypper_patch_info(names: Iterable[str]) -> Command:
    """Which packages each named patch updates (its ``Conflicts: name.arch < evr`` lines),
    category, severity and date, as ``zypper info -t patch`` text inside XML messages."""
    args = []
    for name in names:
        if not ZYPPER_PATCH_RE.match(name):
            raise ValueError(f"refusing to send patch name {name!r}: not a SUSE patch id")
        args.append(name)
    if not args:
        raise ValueError("zypper_patch_info needs at least one patch name")
    return _patch_info_command(args)


PATCH_INFO: Probe[dict[str, tuple[RpmRef, ...]]] = Probe(
    _patch_info_command(()),
    on_stdout(parse_patch_info),
    build=zypper_patch_info,
)

# The same mapping for every patch at once, straight from the repositories. Each repository's raw
# updateinfo as zypper downloaded it (/var/cache/zypp/raw/ALIAS/repodata), verbatim, as
# "=== repo ALIAS: PATH" followed by the XML ("=== repo ALIAS: none" without updateinfo).
# Raw caches of removed or disabled repositories may be printed too: list-patches is the
# authority on which patches exist.
UPDATEINFO: Probe[updateinfo.Dump] = Probe(
    Command(
        script(
            'for dir in /var/cache/zypp/raw/*/repodata; do\n'
            '  [ -d "$dir" ] || continue\n'
            '  alias=${dir%/repodata}; alias=${alias##*/}\n'
            '  found=\n'
            '  for f in "$dir"/*updateinfo.xml*; do\n'
            '    [ -f "$f" ] || continue\n'
            '    found=1\n'
            '    echo "=== repo $alias: $f"\n'
            '    case "$f" in\n'
            '      *.gz) gzip -dc "$f" ;;\n'
            '      *.xz) xz -dc "$f" ;;\n'
            '      *.bz2) bzip2 -dc "$f" ;;\n'
            '      *.zst) zstd -dc "$f" ;;\n'
            '      *) cat "$f" ;;\n'
            '    esac || exit 1\n'
            '  done\n'
            '  [ -n "$found" ] || echo "=== repo $alias: none"\n'
            'done'
        ),
        name="zypper-updateinfo",
    ),
    lambda r, _o: updateinfo.parse_dump(r.stdout, "zypper-updateinfo"),
)

# The same for a source's cache folder ($1).
_UPDATEINFO_SOURCED = UPDATEINFO.command.argv[2].replace(
    "/var/cache/zypp/raw/*/repodata", '"$1"/raw/*/repodata', 1)

# Exit 102 and "Reboot is required" when a package listed in /etc/zypp/needreboot was updated
# since boot (libzypp touched /run/reboot-needed); exit 0 otherwise.
NEEDS_REBOOTING: Probe[RebootState] = Probe(
    Command(("zypper", "--non-interactive", "needs-rebooting"), ok_exit=frozenset({0, 102}),
            env=ZYPPER_ENV, name="zypper-needs-rebooting"),
    lambda r, o: parse_needs_rebooting(r.exit_status, r.stdout, o.parsed(rpm.BOOT).boot_id),
)

# Post-install, zypper's view (lsof): table "PID | PPID | UID | User | Command | Service" or
# "No processes using deleted files found."
PS: Probe[RestartState | None] = Probe(
    Command(("zypper", "--non-interactive", "ps", "-s"), privileged=True, env=ZYPPER_ENV,
            name="zypper-ps"),
    on_stdout(restarts.parse_zypper_ps),
)


def _judge(node_id: str, command: Command, result: CommandResult, waited: float
           ) -> tuple[str, ...]:
    """zypper's own exit codes for zypper commands (7 locked, 106 repositories skipped...);
    the command's accepted statuses for the others (rpm, shell)."""
    if command.argv[0] == "zypper":
        return check_exit(command.label, result.exit_status, result.stdout, result.stderr,
                          node_id)[1]
    check_result(node_id, command, result, never_locked, waited)
    return ()


# ---------------------------------------------------------------------------------------------
# a baseline's alternative source
# ---------------------------------------------------------------------------------------------


def zypper_source_options(path: str) -> tuple[str, ...]:
    """zypper's global options that replace the node's repositories with the .repo file in the
    source directory ``path`` and keep every cache (raw, solv, packages) in its cache folder.
    (``--plus-repo`` would add to the node's repositories, not replace them.)"""
    return ("--reposd-dir", f"{path}/repos.d", "--cache-dir", f"{path}/cache")


def zypper_sourced(path: str) -> Rewrite:
    """Every zypper command of the operation gets :func:`zypper_source_options`; the raw
    updateinfo reader reads the source's cache; others are unchanged."""
    options = zypper_source_options(path)

    def rewrite(command: Command) -> Command:
        if command.argv[0] == "zypper":
            return insert_after_program(command, options)
        if command == UPDATEINFO.command:
            return replace(command, argv=script(_UPDATEINFO_SOURCED, f"{path}/cache"))
        return command

    return rewrite


SOURCE_LAYOUT = SourceLayout("repos.d/source.repo", ("repos.d", "cache"), (), zypper_sourced)

# ---------------------------------------------------------------------------------------------
# install commands and failures
# ---------------------------------------------------------------------------------------------

INSTALL_TIMEOUT = 3600.0
"""Seconds one install command may run (a large transaction on a slow node)."""
ZYPPER_OK_EXIT = frozenset({0, 102, 103})
"""0 done; 102 done, reboot needed; 103 zypper updated itself: run the same command again."""


def _zypper_env(lock_timeout: int) -> tuple[tuple[str, str], ...]:
    return (("ZYPP_LOCK_TIMEOUT", str(int(lock_timeout))),)


def zypper_spec(spec: PackageSpec) -> str:
    """``name.arch=E:V-R`` (zypper reads ``.arch`` when it is a known architecture)."""
    arch = f".{arch_part(spec.arch)}" if spec.arch else ""
    return f"{rpm.rpm_name(spec.name)}{arch}={rpm.rpm_evr(spec.version)}"


def zypper_update(specs: Iterable[PackageSpec], lock_timeout: int) -> Command:
    """Update installed packages to exactly these versions (``update`` skips names that are
    not installed; multiversion packages such as the kernel are installed beside)."""
    args = nonempty([zypper_spec(s) for s in specs], "zypper_update")
    fixed = ("zypper", "--non-interactive", "--no-refresh", "update", "--no-recommends",
             "--auto-agree-with-licenses", "--")
    return Command(
        (*fixed, *args),
        privileged=True,
        ok_exit=ZYPPER_OK_EXIT,
        timeout=INSTALL_TIMEOUT + lock_timeout,
        env=_zypper_env(lock_timeout),
        name="zypper-update",
        variable_from=len(fixed) - 1,
        variable_pattern=PACKAGE_WORDS,
    )


def zypper_locks(lock_timeout: int) -> Command:
    return Command(("zypper", "--non-interactive", "locks"), env=_zypper_env(lock_timeout),
                   name="zypper-locks")


def zypper_lock(action: str, names: Iterable[str], lock_timeout: int) -> Command:
    """``zypper addlock|removelock NAME...``."""
    if action not in ("addlock", "removelock"):
        raise ValueError(f"zypper lock action {action!r}")
    args = nonempty([rpm.rpm_name(n) for n in names], f"zypper {action}")
    fixed = ("zypper", "--non-interactive", action, "--")
    return Command((*fixed, *args), privileged=True, env=_zypper_env(lock_timeout),
                   name=f"zypper-{action}", variable_from=len(fixed) - 1,
                   variable_pattern=PACKAGE_WORDS)


_LOCK_ROW = re.compile(r"^\s*\d+\s*\|\s*(?P<name>\S+)\s*\|\s*(?P<type>\S+)\s*\|")


def parse_zypper_locks(text: str) -> frozenset[str]:
    """Names of the package locks in ``zypper locks`` output."""
    return frozenset(m["name"] for line in text.splitlines()
                     if (m := _LOCK_ROW.match(line)) and m["type"] == "package")


_ZYPP_HOLDER = re.compile(r"locked by the application with pid (\d+) \(([^)]*)\)")


def zypper_failure(result: CommandResult, lock_timeout: int) -> str:
    """Why a zypper install step failed: the zypp lock (exit 7, with its holder) or the exit."""
    if result.exit_status == 7:
        text = result.stderr + "\n" + result.stdout
        m = _ZYPP_HOLDER.search(text)
        holder = f" by process {m[1]} ({m[2]})" if m else ""
        return f"LOCKED: zypp lock held{holder} for more than {lock_timeout} s"
    return f"COMMAND_FAILED: zypper update exited {result.exit_status}: {short(result)}"


async def locked_zypper(transport: Transport, lock_timeout: int) -> frozenset[str]:
    """Names under a zypper lock the operator set (``zypper locks``)."""
    cmd = zypper_locks(lock_timeout)
    result = await transport.run(cmd)
    if not result.ok_for(cmd):
        raise NodeError(zypper_failure(result, lock_timeout))
    return parse_zypper_locks(result.stdout)


# ---------------------------------------------------------------------------------------------
# the manager
# ---------------------------------------------------------------------------------------------


class ZypperSupport:
    """:class:`~patchfleet.managers.base.PackageManagerSupport` for zypper."""

    manager = PackageManager.ZYPPER
    probes: tuple[Probe[Any], ...] = (
        OS_RELEASE, REFRESH, rpm.BOOT, NEEDS_REBOOTING, rpm.RPM_QUERY, LIST_UPDATES,
        LIST_PATCHES, UPDATEINFO, PATCH_INFO,
    )
    restart_probes: tuple[Probe[RestartState | None], ...] = (RESTART_PROC_MAPS, PS)
    own_updaters: tuple[str, ...] = ("suse-automatic-online-update", "os-update")

    def judge_exit(self, node_id: str, probe: Probe[Any], result: CommandResult, *,
                   waited: float) -> tuple[str, ...]:
        return () if probe.judges_exit else _judge(node_id, probe.command, result, waited)

    async def refresh(self, transport: Transport, *, node_sudo: bool,
                      options: CollectOptions) -> RefreshResult:
        skipped = refresh_skipped(transport, node_sudo, options, "zypper refresh")
        if skipped is not None:
            return skipped
        return REFRESH.read(await transport.run(REFRESH.command))

    async def collect(self, transport: Transport, node_id: str, host: str, os: OsInfo, *,
                      node_sudo: bool = False, options: CollectOptions | None = None,
                      progress: Progress | None = None) -> NodeFacts:
        source = options.source if options is not None else None
        async with node_source(transport, source, SOURCE_LAYOUT) as sourced:
            return await self._collect(sourced, node_id, host, os, node_sudo=node_sudo,
                                       options=options, progress=progress)

    async def _collect(self, transport: Transport, node_id: str, host: str, os: OsInfo, *,
                       node_sudo: bool, options: CollectOptions | None,
                       progress: Progress | None) -> NodeFacts:
        options, refresh = await refresh_first(self, transport, node_sudo=node_sudo,
                                               options=options, progress=progress)
        warnings: list[str] = []
        outputs = ProbeOutputs()

        async def run(command: Command) -> CommandResult:
            # zypper itself waits ZYPP_LOCK_TIMEOUT s for a held lock (ZYPPER_ENV), so exit 7
            # is final: no retries of patchfleet's own.
            result = await transport.run(command)
            found = _judge(transport.node_id, command, result, options.lock_timeout)
            warnings.extend(w for w in found if w not in warnings)
            return result

        async def q(probe: Probe[T]) -> T:
            return outputs.add(probe, await run(probe.command))

        boot = await q(rpm.BOOT)
        reboot_state = await q(NEEDS_REBOOTING)
        installed = await q(rpm.RPM_QUERY)
        updates = await q(LIST_UPDATES)
        entries = await q(LIST_PATCHES)
        dump = await q(UPDATEINFO)
        warnings.extend(rpm.updateinfo_warnings(dump, updates))
        names = undescribed(entries, dump)
        details: dict[str, tuple[RpmRef, ...]] = {}
        for i in range(0, len(names), PATCH_INFO_BATCH):
            batch = names[i : i + PATCH_INFO_BATCH]
            details.update(PATCH_INFO.read(await run(zypper_patch_info(batch)), outputs))
        return rpm.rpm_facts(
            node_id, host, os, refresh, warnings,
            installed=installed,
            updates=updates,
            advisories=patches(entries, dump, details),
            reboot=reboot_state,
            boot_time=boot.boot_time,
        )

    async def installed(self, transport: Transport) -> InstalledVersions:
        return await rpm.read_installed(transport)

    def install_command(self, specs: Iterable[PackageSpec], *, block: Iterable[str] = (),
                        lock_timeout: int = 60) -> Command:
        return zypper_update(specs, lock_timeout)

    def block_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return zypper_lock("addlock", names, lock_timeout)

    def unblock_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return zypper_lock("removelock", names, lock_timeout)

    def classify_failure(self, result: CommandResult, lock_timeout: int
                         ) -> tuple[str, dict[str, str]]:
        return zypper_failure(result, lock_timeout), {}

    async def reboot_required(self, transport: Transport, result: CommandResult) -> bool:
        if result.exit_status == 102:
            return True
        return (await transport.run(NEEDS_REBOOTING.command)).exit_status == 102

    async def install(self, transport: Transport, request: InstallRequest,
                      blocked_by_us: list[str]) -> InstallOutcome:
        async with node_source(transport, request.source, SOURCE_LAYOUT) as sourced:
            if request.source is not None:
                await refresh_source(self, sourced, request.source, node_sudo=True,
                                     options=CollectOptions(lock_timeout=request.lock_timeout))
            return await self._install(sourced, request, blocked_by_us)

    async def _install(self, transport: Transport, request: InstallRequest,
                       blocked_by_us: list[str]) -> InstallOutcome:
        timeout = request.lock_timeout

        async def update(specs: tuple[PackageSpec, ...], errors: dict[str, str]
                         ) -> InstallOutcome:
            cmd = self.install_command(specs, lock_timeout=timeout)
            result = await transport.run(cmd)
            if result.exit_status == 103:  # zypper updated itself: the same command again, once
                result = await transport.run(cmd)
            if not result.ok_for(cmd) or result.exit_status == 103:
                reason, _ = self.classify_failure(result, timeout)
                return InstallOutcome(ok=False, reason=reason, package_errors=errors,
                                      output_tail=tail(result), attempted=specs)
            return InstallOutcome(ok=not errors, reason=held_reason(errors),
                                  package_errors=errors, output_tail=tail(result),
                                  reboot_required=await self.reboot_required(transport, result),
                                  attempted=specs)

        return await install_around_holds(
            transport, request, blocked_by_us, held=await locked_zypper(transport, timeout),
            block=lambda names: zypper_lock("addlock", names, timeout),
            block_failure=lambda _cmd, result: zypper_failure(result, timeout),
            install=update)


SUPPORT = ZypperSupport()
