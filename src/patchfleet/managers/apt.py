"""apt (Debian, Ubuntu): everything patchfleet knows about it.

Scan: os-release, an optional ``apt-get update`` (AWS refreshes too; a held lock or a failing
mirror is recorded, and the scan goes on with the lists the node has), the reboot state, dpkg's
database, apt's releases and version tables, the resolver's plan, and Priority/Section of every
newer version. Scanning never changes the node beyond apt's lists.

Install: ``apt-get -y -q -o DPkg::Lock::Timeout=N -o Dpkg::Options::=--force-confdef -o
Dpkg::Options::=--force-confold install --only-upgrade --no-install-recommends name:arch=ver``;
rejected packages under BLOCK are ``apt-mark hold``-ed before and ``unhold``-ed after (only the
names patchfleet held itself). A package the operator held is left out and reported ``held``;
patchfleet never lifts it. ``dpkg --configure -a`` is never run for the operator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from patchfleet.domain import clock
from patchfleet.domain.facts import (
    InstalledPackage,
    NodeFacts,
    OsInfo,
    PackageCandidates,
    PackageManager,
    PackageOrigin,
    PackageVersion,
    RebootState,
    RefreshResult,
)
from patchfleet.domain.memo import IdentityMemo
from patchfleet.domain.versions import dpkg_compare
from patchfleet.errors import NodeError
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
    command_failure,
    held_reason,
    install_around_holds,
    must,
    nonempty,
    refresh_first,
    refresh_skipped,
    refresh_source,
    run_checked,
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
from patchfleet.parsers import restarts
from patchfleet.parsers.apt import (
    SimulatedUpgrade,
    parse_apt_show,
    parse_policy_packages,
    parse_policy_releases,
    parse_simulate,
    parse_update,
)
from patchfleet.parsers.dpkg import parse_dpkg_query
from patchfleet.parsers.reboot import parse_apt_reboot
from patchfleet.parsers.restarts import RestartState
from patchfleet.transport.base import Command, CommandResult, Transport, script

T = TypeVar("T")

# Debian policy: package names are lower-case alphanumerics and + - . (at least two chars);
# versions are [epoch:]upstream[-revision] with alphanumerics and . + ~ - : only.
DEB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]+(:[a-z0-9\-]+)?$")
DEB_VERSION_RE = re.compile(r"^[0-9A-Za-z.+~:\-]+$")

SHOW_BATCH = 400
"""apt-cache show takes names on the command line; batches keep each command below ARG_MAX."""

# ---------------------------------------------------------------------------------------------
# scan probes
# ---------------------------------------------------------------------------------------------


def apt_update(lock_timeout: int = 60) -> Command:
    """Refresh the package lists. apt-get waits up to ``lock_timeout`` s for a held lock."""
    return Command(
        ("apt-get", "-q", "-o", f"DPkg::Lock::Timeout={int(lock_timeout)}", "update"),
        privileged=True,
        ok_exit=frozenset({0, 100}),
        name="apt-get-update",
    )


UPDATE: Probe[RefreshResult] = Probe(
    apt_update(),
    lambda r, _o: parse_update(r.exit_status, r.stdout, r.stderr),
    judges_exit=True,
)

# Line 1: boot id. Line 2: whether /var/run/reboot-required exists. Then reboot-required.pkgs.
REBOOT: Probe[RebootState] = Probe(
    Command(
        script(
            "cat /proc/sys/kernel/random/boot_id; "
            "if [ -e /var/run/reboot-required ]; then echo 'reboot-required: yes'; "
            "else echo 'reboot-required: no'; fi; "
            "if [ -r /var/run/reboot-required.pkgs ]; then cat /var/run/reboot-required.pkgs; fi"
        ),
        name="apt-reboot",
    ),
    on_stdout(parse_apt_reboot),
)

DPKG_QUERY_FORMAT = (
    "${Package}\\t${Architecture}\\t${Version}\\t${source:Package}\\t${source:Version}"
    "\\t${db:Status-Want}\\t${db:Status-Status}\\t${Priority}\\t${Section}\\n"
)
DPKG_QUERY: Probe[tuple[InstalledPackage, ...]] = Probe(
    Command(("dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT), name="dpkg-query"),
    on_stdout(parse_dpkg_query),
)

# Releases known to apt: maps each source line to its Release fields (o= l= a= n= c=).
POLICY: Probe[dict[str, PackageOrigin]] = Probe(
    Command(("apt-cache", "policy"), name="apt-cache-policy"),
    on_stdout(parse_policy_releases),
)

# Version tables of every installed package: installed, candidate, and each version's sources.
POLICY_INSTALLED: Probe[tuple[PackageCandidates, ...]] = Probe(
    Command(
        script(
            "dpkg-query -W -f '${db:Status-Status} ${binary:Package}\\n' "
            "| awk '$1 == \"installed\" { print $2 }' | xargs -r apt-cache policy"
        ),
        name="apt-cache-policy-installed",
    ),
    lambda r, o: parse_policy_packages(r.stdout, o.parsed(POLICY)),
)

# The same, with apt options for xargs to pass on (a source's Dir:: settings).
_POLICY_INSTALLED_WITH = (
    "dpkg-query -W -f '${db:Status-Status} ${binary:Package}\\n' "
    "| awk '$1 == \"installed\" { print $2 }' | xargs -r apt-cache \"$@\" policy"
)

# What a full upgrade would do (new dependencies included), without taking the dpkg lock.
SIMULATE: Probe[SimulatedUpgrade] = Probe(
    Command(("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"),
            name="apt-get-simulate"),
    on_stdout(parse_simulate),
)


def apt_show(versions: Iterable[tuple[str, str]]) -> Command:
    """Priority and Section of specific versions: ``apt-cache show name=version ...``."""
    args: list[str] = []
    for name, version in versions:
        if not DEB_NAME_RE.match(name):
            raise ValueError(f"refusing to send package name {name!r}: not a Debian name")
        if not DEB_VERSION_RE.match(version):
            raise ValueError(f"refusing to send version {version!r}: not a Debian version")
        args.append(f"{name}={version}")
    return Command(("apt-cache", "show", *args), name="apt-cache-show")


def _show_words(words: Sequence[str]) -> Command:
    pairs = []
    for word in words:
        name, _, version = word.partition("=")
        pairs.append((name, version))
    return apt_show(pairs)


SHOW: Probe[dict[tuple[str, str], tuple[str, str]]] = Probe(
    apt_show(()),
    on_stdout(parse_apt_show),
    build=_show_words,
)

# needrestart's batch mode (post-install): NEEDRESTART-SVC (services to restart), -KSTA (kernel
# status 0 unknown, 1 current, 2 ABI-compatible upgrade, 3 version upgrade) ... The global
# NEEDRESTART_SUSPEND=1 only silences needrestart's apt hook; it is left out for this call. Run
# as itself (sudoers names it): when it is not installed, env exits 127 and sudo says "command
# not found" (exit 1), which the parser reads as absent.
NEEDRESTART_BATCH: Probe[RestartState | None] = Probe(
    Command(
        ("needrestart", "-b", "-r", "l"),
        privileged=True,
        ok_exit=frozenset({0, 1, 127}),
        drop_env=frozenset({"NEEDRESTART_SUSPEND"}),
        name="needrestart-batch",
    ),
    lambda r, _o: restarts.parse_needrestart_result(r.exit_status, r.stdout, r.stderr),
    judges_exit=True,
    needs_package="needrestart",
)

# ---------------------------------------------------------------------------------------------
# a baseline's alternative source
# ---------------------------------------------------------------------------------------------


def apt_source_options(path: str) -> tuple[str, ...]:
    """apt options that replace the node's sources with those in the source directory
    ``path``: its sources.list, an empty parts dir, its own lists, no on-disk package cache
    (``pkgcache.bin`` would otherwise be rebuilt from the source's lists) and its own archives
    folder (downloaded .debs go away with the directory)."""
    return ("-o", f"Dir::Etc::SourceList={path}/sources.list",
            "-o", f"Dir::Etc::SourceParts={path}/parts",
            "-o", f"Dir::State::Lists={path}/lists",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "-o", f"Dir::Cache::archives={path}/archives")


# Read through APT_CONFIG by what apt runs itself (dpkg-preconfigure's apt-extracttemplates
# would rebuild the node's pkgcache.bin otherwise).
APT_SOURCE_CONF = 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";'


def apt_sourced(path: str) -> Rewrite:
    """Every apt-get, apt-cache and apt-mark command of the operation gets
    :func:`apt_source_options` (apt-mark too: it would rebuild pkgcache.bin) and
    ``APT_CONFIG`` for the tools apt runs; the probe that runs apt-cache through xargs passes
    the options on; other commands are unchanged."""
    options = apt_source_options(path)
    env = (("APT_CONFIG", f"{path}/apt.conf"),)

    def rewrite(command: Command) -> Command:
        if command.argv[0] in ("apt-get", "apt-cache", "apt-mark"):
            return replace(insert_after_program(command, options), env=(*command.env, *env))
        if command == POLICY_INSTALLED.command:
            return replace(command, argv=script(_POLICY_INSTALLED_WITH, *options))
        return command

    return rewrite


SOURCE_LAYOUT = SourceLayout("sources.list", ("parts", "lists", "archives"),
                             (("apt.conf", APT_SOURCE_CONF),), apt_sourced)

# ---------------------------------------------------------------------------------------------
# install commands
# ---------------------------------------------------------------------------------------------

INSTALL_TIMEOUT = 3600.0
"""Seconds one install command may run (a large transaction on a slow node)."""


def _deb_name(name: str) -> str:
    if not DEB_NAME_RE.match(name) or ":" in name:
        raise ValueError(f"refusing to send package name {name!r}: not a Debian package name")
    return name


def apt_spec(spec: PackageSpec) -> str:
    """``name:arch=version`` (``name=version`` when the arch is unknown)."""
    name = _deb_name(spec.name)
    if not DEB_VERSION_RE.match(spec.version):
        raise ValueError(f"refusing to send version {spec.version!r}: not a Debian version")
    arch = f":{arch_part(spec.arch)}" if spec.arch else ""
    return f"{name}{arch}={spec.version}"


def apt_install(specs: Iterable[PackageSpec], lock_timeout: int) -> Command:
    """Upgrade exactly these versions; apt may add new packages they depend on, keeps the
    node's changed config files (confold) and waits ``lock_timeout`` s for dpkg's lock.

    A held package is refused by apt ("Held packages were changed"), so callers leave held
    packages out (:meth:`AptSupport.install`)."""
    args = nonempty([apt_spec(s) for s in specs], "apt_install")
    fixed = ("apt-get", "-y", "-q", "-o", f"DPkg::Lock::Timeout={int(lock_timeout)}",
             "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
             "install", "--only-upgrade", "--no-install-recommends", "--")
    return Command(
        (*fixed, *args),
        privileged=True,
        timeout=INSTALL_TIMEOUT + lock_timeout,
        name="apt-get-install",
        variable_from=len(fixed) - 1,
        variable_pattern=PACKAGE_WORDS,
    )


APT_SHOWHOLD = Command(("apt-mark", "showhold"), name="apt-mark-showhold")


def apt_mark(action: str, names: Iterable[str]) -> Command:
    """``apt-mark hold|unhold NAME...``."""
    if action not in ("hold", "unhold"):
        raise ValueError(f"apt-mark action {action!r}")
    args = nonempty([_deb_name(n) for n in names], f"apt_mark {action}")
    fixed = ("apt-mark", action, "--")
    return Command((*fixed, *args), privileged=True, name=f"apt-mark-{action}",
                   variable_from=len(fixed) - 1, variable_pattern=PACKAGE_WORDS)


# ---------------------------------------------------------------------------------------------
# install failures
# ---------------------------------------------------------------------------------------------

_APT_LOCK = re.compile(r"Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]*)\))?")
_APT_NO_VERSION = re.compile(r"Version '([^']+)' for '([^']+)' was not found")
DPKG_INTERRUPTED = (
    "dpkg was interrupted on this node; run 'dpkg --configure -a' on it and install again "
    "(patchfleet does not repair dpkg itself)"
)


def apt_failure(result: CommandResult, lock_timeout: int) -> tuple[str, dict[str, str]]:
    """Why ``apt-get install`` failed, and the packages it named as not found."""
    text = result.stderr + "\n" + result.stdout
    if m := _APT_LOCK.search(text):
        holder = f"process {m[2]}" + (f" ({m[3]})" if m[3] else "")
        return (f"LOCKED: dpkg lock held by {holder} for more than {lock_timeout} s "
                f"({m[1]})"), {}
    if "dpkg was interrupted" in text:
        return f"DPKG_INTERRUPTED: {DPKG_INTERRUPTED}", {}
    errors = {m[2].split(":")[0]: f"version {m[1]} not found"
              for m in _APT_NO_VERSION.finditer(text)}
    return f"COMMAND_FAILED: apt-get install exited {result.exit_status}: {short(result)}", errors


async def held_apt(transport: Transport) -> frozenset[str]:
    """Names the operator put on hold (``apt-mark showhold``)."""
    result = await transport.run(APT_SHOWHOLD)
    if not result.ok_for(APT_SHOWHOLD):
        raise NodeError(f"apt-mark showhold exited {result.exit_status}: {short(result)}")
    return frozenset(n.split(":")[0] for n in result.stdout.split())


# ---------------------------------------------------------------------------------------------
# the collector
# ---------------------------------------------------------------------------------------------


_NO_META = ("", "")


def _newer_versions(c: PackageCandidates) -> list[PackageVersion]:
    if c.installed_version is None:
        return []
    return [v for v in c.versions if dpkg_compare(v.version, c.installed_version) > 0]


_WITH_METADATA: IdentityMemo[PackageCandidates] = IdentityMemo()


def _with_metadata(
    c: PackageCandidates, meta: dict[tuple[str, str], tuple[str, str]]
) -> PackageCandidates:
    """``c`` with each version's Priority and Section from ``apt-cache show``; the same object
    for the same table and metadata on every node (see domain.memo)."""
    name = c.name.split(":")[0]
    found = tuple(meta.get((name, v.version), _NO_META) for v in c.versions)
    if all(m is _NO_META for m in found):
        return c
    done = _WITH_METADATA.lookup(found, (c,))
    if done is not None:
        return done
    versions = tuple(
        PackageVersion(
            version=v.version,
            origins=v.origins,
            installed=v.installed,
            priority=prio or v.priority,
            section=section or v.section,
        )
        for v, (prio, section) in zip(c.versions, found, strict=True)
    )
    return _WITH_METADATA.store(found, (c,), PackageCandidates(
        name=c.name,
        installed_version=c.installed_version,
        candidate_version=c.candidate_version,
        versions=versions,
    ))


class AptSupport:
    """:class:`~patchfleet.managers.base.PackageManagerSupport` for apt."""

    manager = PackageManager.APT
    probes: tuple[Probe[Any], ...] = (
        OS_RELEASE, UPDATE, REBOOT, DPKG_QUERY, POLICY, POLICY_INSTALLED, SIMULATE, SHOW,
    )
    restart_probes: tuple[Probe[RestartState | None], ...] = (
        RESTART_PROC_MAPS, NEEDRESTART_BATCH,
    )
    own_updaters: tuple[str, ...] = (
        "unattended-upgrades", "apt-daily.timer", "apt-daily-upgrade.timer",
    )

    def judge_exit(self, node_id: str, probe: Probe[Any], result: CommandResult, *,
                   waited: float) -> tuple[str, ...]:
        if not probe.judges_exit and not result.ok_for(probe.command):
            raise command_failure(node_id, probe.command, result)
        return ()

    async def refresh(self, transport: Transport, *, node_sudo: bool,
                      options: CollectOptions) -> RefreshResult:
        skipped = refresh_skipped(transport, node_sudo, options, "apt-get update")
        if skipped is not None:
            return skipped
        return UPDATE.read(await transport.run(apt_update(options.lock_timeout)))

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
                                               options=options, progress=progress,
                                               what="package lists")
        outputs = ProbeOutputs()

        async def run(probe: Probe[T]) -> T:
            return outputs.add(probe, await run_checked(transport, probe.command))

        reboot_state = await run(REBOOT)
        installed = await run(DPKG_QUERY)
        await run(POLICY)
        tables = await run(POLICY_INSTALLED)
        plan = await run(SIMULATE)

        wanted = sorted({(c.name.split(":")[0], v.version)
                         for c in tables for v in _newer_versions(c)})
        meta: dict[tuple[str, str], tuple[str, str]] = {}
        for i in range(0, len(wanted), SHOW_BATCH):
            batch = wanted[i : i + SHOW_BATCH]
            meta.update(SHOW.read(await run_checked(transport, apt_show(batch)), outputs))

        candidates = tuple(_with_metadata(c, meta) for c in tables)
        warnings = []
        if refresh.message and not refresh.ok:
            warnings.append(refresh.message)
        return NodeFacts(
            node_id=node_id,
            host=host,
            os=os,
            installed=installed,
            candidates=candidates,
            planned=plan.changes,
            reboot=reboot_state,
            refresh=refresh,
            collected_at=clock.now(),
            warnings=tuple(warnings),
        )

    async def installed(self, transport: Transport) -> InstalledVersions:
        pkgs = DPKG_QUERY.read(await must(transport, DPKG_QUERY.command))
        return {(p.name, p.arch): p.version for p in pkgs if p.status == "installed"}

    def install_command(self, specs: Iterable[PackageSpec], *, block: Iterable[str] = (),
                        lock_timeout: int = 60) -> Command:
        return apt_install(specs, lock_timeout)

    def block_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return apt_mark("hold", names)

    def unblock_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return apt_mark("unhold", names)

    def classify_failure(self, result: CommandResult, lock_timeout: int
                         ) -> tuple[str, dict[str, str]]:
        return apt_failure(result, lock_timeout)

    async def reboot_required(self, transport: Transport, result: CommandResult) -> bool:
        return REBOOT.read(await must(transport, REBOOT.command)).required

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

        def block_failure(cmd: Command, result: CommandResult) -> str:
            return f"COMMAND_FAILED: {cmd.label} exited {result.exit_status}: {short(result)}"

        async def upgrade(specs: tuple[PackageSpec, ...], errors: dict[str, str]
                          ) -> InstallOutcome:
            cmd = self.install_command(specs, lock_timeout=timeout)
            result = await transport.run(cmd)
            if not result.ok_for(cmd):
                reason, pkg_errors = self.classify_failure(result, timeout)
                return InstallOutcome(ok=False, reason=reason,
                                      package_errors={**errors, **pkg_errors},
                                      output_tail=tail(result), attempted=specs)
            return InstallOutcome(ok=not errors, reason=held_reason(errors),
                                  package_errors=errors, output_tail=tail(result),
                                  reboot_required=await self.reboot_required(transport, result),
                                  attempted=specs)

        return await install_around_holds(
            transport, request, blocked_by_us, held=await held_apt(transport),
            block=lambda names: apt_mark("hold", names), block_failure=block_failure,
            install=upgrade)


SUPPORT = AptSupport()
