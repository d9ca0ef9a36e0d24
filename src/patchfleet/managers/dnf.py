"""dnf 4 (RHEL 8/9 and rebuilds, Amazon Linux 2023, Fedora): everything patchfleet knows about it.

Scan: os-release, an optional ``dnf makecache --refresh`` (a held lock or a failing repository
is recorded as a warning and the scan goes on with the metadata the node has), the boot time and
``needs-restarting -r``, rpm's database, the available upgrades and the advisories
(``updateinfo list`` for dnf's verdicts, each repository's cached updateinfo.xml for the rest).
Only the refresh talks to repositories; every other probe reads dnf's cache (-C), so a scan sees
exactly the metadata the refresh fetched.

Locks: every dnf command that loads metadata takes dnf's metadata lock. With ``exit_on_lock``
it exits 200 at once ("metadata already locked by PID") instead of waiting; patchfleet retries
with backoff (1, 2, 4, ... s) within the lock timeout, then the refresh is a warning and a query
fails the node with :class:`LockError`. dnf 4 takes no lock for reading while another dnf
installs.

Install: ``dnf -y --setopt=exit_on_lock=True --setopt=install_weak_deps=False upgrade
name-E:V-R.arch``; rejected packages under BLOCK are ``--exclude=NAME`` on the same command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

from patchfleet.domain.facts import (
    AvailableUpdate,
    InstalledPackage,
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
)
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
    PACKAGE_WORD,
    PACKAGE_WORDS,
    arch_part,
    check_result,
    nonempty,
    refresh_first,
    refresh_skipped,
    refresh_source,
    run_retrying,
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
from patchfleet.parsers import updateinfo
from patchfleet.parsers.dnf import (
    AdvisoryInfo,
    AdvisoryPackage,
    advisories,
    parse_makecache,
    parse_needs_restarting,
    parse_updateinfo_info,
    parse_updateinfo_list,
    parse_upgrades,
)
from patchfleet.parsers.restarts import RestartState
from patchfleet.transport.base import Command, CommandResult, Transport, script

T = TypeVar("T")

DNF_LOCKED_EXIT = 200
"""dnf's exit status with ``exit_on_lock=True`` when another dnf holds its lock."""


def dnf_locked(result: CommandResult) -> bool:
    return result.exit_status == DNF_LOCKED_EXIT


# ---------------------------------------------------------------------------------------------
# scan probes
# ---------------------------------------------------------------------------------------------

DNF_CACHED: tuple[str, ...] = ("dnf", "-q", "-C", "--setopt=exit_on_lock=True")

# Refresh every enabled repository's metadata, even if dnf thinks it is still fresh.
MAKECACHE: Probe[RefreshResult] = Probe(
    Command(
        ("dnf", "--setopt=exit_on_lock=True", "makecache", "--refresh"),
        privileged=True,
        timeout=600,
        name="dnf-makecache",
    ),
    lambda r, _o: parse_makecache(r.exit_status, r.stdout, r.stderr),
    judges_exit=True,
)

def _upgrades(result: CommandResult, outputs: ProbeOutputs) -> tuple[AvailableUpdate, ...]:
    installed: tuple[InstalledPackage, ...] = outputs.parsed(rpm.RPM_QUERY)
    return parse_upgrades(result.stdout, installed)


# The newest available upgrade of each installed package: name, epoch, version, release, arch,
# repo id, build time ("YYYY-MM-DD HH:MM", UTC). Obsoleting packages are not upgrades (below).
UPGRADES: Probe[tuple[AvailableUpdate, ...]] = Probe(
    Command(
        (*DNF_CACHED, "repoquery", "--upgrades", "--latest-limit=1", "--queryformat",
         "%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}\\t%{repoid}\\t%{buildtime}"),
        name="dnf-repoquery-upgrades",
    ),
    _upgrades,
)

# Packages that `dnf upgrade` would install in place of an installed one (Obsoletes:), under
# an "Obsoleting Packages" heading, each followed by the indented package it replaces. dnf
# evaluates the Obsoletes against the rpmdb, which repoquery cannot do. Empty when none.
# Captured for reference; no scan reads it yet.
OBSOLETES: Probe[None] = Probe(
    Command((*DNF_CACHED, "list", "--obsoletes"), name="dnf-list-obsoletes"),
    None,
    scanned=False,
)

# dnf's own verdict per advisory and package (NEVRA with epoch): "i" in the first column when
# installed, type or severity/Sec. Covers only advisories for installed package names.
UPDATEINFO_LIST: Probe[tuple[AdvisoryPackage, ...]] = Probe(
    Command((*DNF_CACHED, "updateinfo", "list", "--all"), name="dnf-updateinfo-list"),
    on_stdout(parse_updateinfo_list),
)

# dnf's rendering of the same advisories (applicable ones only): title, type, severity, one date
# ("Updated": the later of issued and updated), bugzilla and CVE references, description.
# Captured and parsed for the golden files; the scan reads the XML instead (below).
UPDATEINFO_INFO: Probe[dict[str, AdvisoryInfo]] = Probe(
    Command((*DNF_CACHED, "updateinfo", "info", "--all"), name="dnf-updateinfo-info"),
    on_stdout(parse_updateinfo_info),
    scanned=False,
)

# The advisories themselves: each enabled repository's cached updateinfo.xml, verbatim. dnf's
# text output cannot replace it: it shows one date (the later of issued and updated), drops
# reboot_suggested, epochs in file lists and packages of other names, and hides a malformed
# date. dnf's own Python finds each repository's cache directory (its name hashes the
# configured URL after $releasever/$basearch expansion), so stale caches of old URLs are never
# read. Output per repository: "=== repo ID: PATH" (or ": none" / ": no cache" /
# ": unsupported compression") followed by the XML.
_DNF_UPDATEINFO_PY = r"""
import bz2, gzip, lzma, os, subprocess, sys
import xml.etree.ElementTree as ET
import dnf, dnf.rpm
base = dnf.Base()
conf = base.conf
conf.read()
if os.geteuid() != 0:  # a user reads root's cache, as `dnf -C` does (not a per-user one)
    conf.cachedir = conf.system_cachedir
conf.substitutions["releasever"] = dnf.rpm.detect_releasever(conf.installroot)
try:
    conf.substitutions.update_from_etc(conf.installroot, varsdir=conf.varsdir)
except TypeError:
    conf.substitutions.update_from_etc(conf.installroot)
base.read_all_repos()
out = sys.stdout.buffer
for repo in sorted(base.repos.iter_enabled(), key=lambda r: r.id):
    repodata = os.path.join(repo._repo.getCachedir(), "repodata")
    try:
        root = ET.parse(os.path.join(repodata, "repomd.xml")).getroot()
    except (OSError, ET.ParseError):
        out.write(("=== repo %s: no cache\n" % repo.id).encode())
        continue
    href = None
    for data in root:
        if data.tag.endswith("}data") and data.get("type") == "updateinfo":
            for loc in data:
                if loc.tag.endswith("}location"):
                    href = loc.get("href")
    if not href:
        out.write(("=== repo %s: none\n" % repo.id).encode())
        continue
    path = os.path.join(repodata, os.path.basename(href))
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
        os.path.splitext(path)[1], open if path.endswith(".xml") else None)
    if opener is None and path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], stdout=subprocess.PIPE, check=True).stdout
    elif opener is None:
        out.write(("=== repo %s: unsupported compression %s\n" % (repo.id, path)).encode())
        continue
    else:
        with opener(path, "rb") as f:
            data = f.read()
    out.write(("=== repo %s: %s\n" % (repo.id, path)).encode())
    out.write(data if data.endswith(b"\n") else data + b"\n")
"""
UPDATEINFO_XML: Probe[updateinfo.Dump] = Probe(
    Command(
        # dnf's own interpreter (platform-python on EL8), read from its shebang.
        script('read -r shebang < /usr/bin/dnf && exec ${shebang#"#!"} -c "$1"',
               _DNF_UPDATEINFO_PY),
        name="dnf-updateinfo-xml",
    ),
    lambda r, _o: updateinfo.parse_dump(r.stdout, "dnf-updateinfo-xml"),
)

# The same for a source's directory: dnf's configuration read as usual, then the repositories
# and the cache taken from the two paths after the script.
_DNF_UPDATEINFO_SOURCED_PY = _DNF_UPDATEINFO_PY.replace(
    "conf.read()\n",
    "conf.read()\nconf.reposdir = [sys.argv[1]]\nconf.cachedir = sys.argv[2]\n", 1)
_DNF_PYTHON_SOURCED = 'read -r shebang < /usr/bin/dnf && exec ${shebang#"#!"} -c "$1" "$2" "$3"'

# Whether core packages (kernel, glibc, systemd...) were updated since boot: exit 1 and
# "Reboot is required" when so, 0 otherwise. dnf takes boot time from /proc/1's start.
NEEDS_RESTARTING: Probe[RebootState] = Probe(
    Command((*DNF_CACHED, "needs-restarting", "-r"), ok_exit=frozenset({0, 1}),
            name="dnf-needs-restarting"),
    lambda r, o: parse_needs_restarting(r.exit_status, r.stdout, o.parsed(rpm.BOOT).boot_id),
)

# ---------------------------------------------------------------------------------------------
# a baseline's alternative source
# ---------------------------------------------------------------------------------------------


def dnf_source_options(path: str) -> tuple[str, ...]:
    """dnf options that replace the node's repositories with the .repo file in the source
    directory ``path`` and keep their metadata in its cache folder. The completion-cache
    plugin is off: it would write the source's package names into the node's
    /var/cache/dnf/packages.db."""
    return (f"--setopt=reposdir={path}/repos.d", f"--setopt=cachedir={path}/cache",
            "--disableplugin=generate_completion_cache")


def dnf_sourced(path: str) -> Rewrite:
    """Every dnf command of the operation gets :func:`dnf_source_options`; the updateinfo
    reader reads the same repositories and cache; others are unchanged."""
    options = dnf_source_options(path)

    def rewrite(command: Command) -> Command:
        if command.argv[0] == "dnf":
            return insert_after_program(command, options)
        if command == UPDATEINFO_XML.command:
            return replace(command, argv=script(_DNF_PYTHON_SOURCED, _DNF_UPDATEINFO_SOURCED_PY,
                                                f"{path}/repos.d", f"{path}/cache"))
        return command

    return rewrite


SOURCE_LAYOUT = SourceLayout("repos.d/source.repo", ("repos.d", "cache"), (), dnf_sourced)

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------

INSTALL_TIMEOUT = 3600.0
"""Seconds one install command may run (a large transaction on a slow node)."""


def dnf_nevra(spec: PackageSpec) -> str:
    """``name-E:V-R.arch`` (epoch always written: dnf parses it unambiguously)."""
    evr = rpm.rpm_evr(spec.version)
    if ":" not in evr:
        evr = f"0:{evr}"
    return f"{rpm.rpm_name(spec.name)}-{evr}.{arch_part(spec.arch)}"


DNF_UPGRADE_TAIL = rf"(--exclude={PACKAGE_WORD} )*{PACKAGE_WORDS}"
"""What follows ``upgrade``: the rejected names under BLOCK, then ``--`` and the NEVRAs."""


def dnf_upgrade(specs: Iterable[PackageSpec], exclude: Iterable[str] = ()) -> Command:
    """Upgrade to exactly these NEVRAs (install-only packages such as kernel are installed
    beside the running one). ``exclude`` hides names from the resolver, so anything needing
    a newer excluded package is not upgraded either. With ``exit_on_lock`` dnf exits 200 at
    once on a held lock; the install retries."""
    args = nonempty([dnf_nevra(s) for s in specs], "dnf_upgrade")
    excludes = tuple(f"--exclude={rpm.rpm_name(n)}" for n in sorted(set(exclude)))
    fixed = ("dnf", "-y", "--setopt=exit_on_lock=True", "--setopt=install_weak_deps=False",
             "upgrade")
    return Command(
        (*fixed, *excludes, "--", *args),
        privileged=True,
        variable_from=len(fixed),
        variable_pattern=DNF_UPGRADE_TAIL,
        timeout=INSTALL_TIMEOUT,
        name="dnf-upgrade",
    )


_DNF_NO_MATCH = re.compile(r"No match for argument: (\S+)")


def dnf_failure(result: CommandResult) -> tuple[str, dict[str, str]]:
    errors = {m[1]: "no match" for m in _DNF_NO_MATCH.finditer(result.stderr + result.stdout)}
    return f"COMMAND_FAILED: dnf upgrade exited {result.exit_status}: {short(result)}", errors


# ---------------------------------------------------------------------------------------------
# the manager
# ---------------------------------------------------------------------------------------------


class DnfSupport:
    """:class:`~patchfleet.managers.base.PackageManagerSupport` for dnf."""

    manager = PackageManager.DNF
    probes: tuple[Probe[Any], ...] = (
        OS_RELEASE, MAKECACHE, rpm.BOOT, NEEDS_RESTARTING, rpm.RPM_QUERY, UPGRADES,
        UPDATEINFO_LIST, UPDATEINFO_XML, OBSOLETES, UPDATEINFO_INFO,
    )
    restart_probes: tuple[Probe[RestartState | None], ...] = (RESTART_PROC_MAPS,)
    own_updaters: tuple[str, ...] = ("dnf-automatic", "yum-cron")

    def judge_exit(self, node_id: str, probe: Probe[Any], result: CommandResult, *,
                   waited: float) -> tuple[str, ...]:
        if not probe.judges_exit:
            check_result(node_id, probe.command, result, dnf_locked, waited)
        return ()

    async def refresh(self, transport: Transport, *, node_sudo: bool,
                      options: CollectOptions) -> RefreshResult:
        skipped = refresh_skipped(transport, node_sudo, options, "dnf makecache")
        if skipped is not None:
            return skipped
        return MAKECACHE.read(await run_retrying(transport, MAKECACHE.command, dnf_locked,
                                                 options.lock_timeout))

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
        outputs = ProbeOutputs()

        async def q(probe: Probe[T]) -> T:
            """A read-only query: retried while locked, then LockError."""
            result = await run_retrying(transport, probe.command, dnf_locked,
                                        options.lock_timeout)
            self.judge_exit(transport.node_id, probe, result, waited=options.lock_timeout)
            return outputs.add(probe, result)

        boot = await q(rpm.BOOT)
        reboot_state = await q(NEEDS_RESTARTING)
        installed = await q(rpm.RPM_QUERY)
        updates = await q(UPGRADES)
        listed = await q(UPDATEINFO_LIST)
        dump = await q(UPDATEINFO_XML)
        return rpm.rpm_facts(
            node_id, host, os, refresh, rpm.updateinfo_warnings(dump, updates),
            installed=installed,
            updates=updates,
            advisories=advisories(listed, dump),
            reboot=reboot_state,
            boot_time=boot.boot_time,
        )

    async def installed(self, transport: Transport) -> InstalledVersions:
        return await rpm.read_installed(transport)

    def install_command(self, specs: Iterable[PackageSpec], *, block: Iterable[str] = (),
                        lock_timeout: int = 60) -> Command:
        return dnf_upgrade(specs, block)

    def block_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return None

    def unblock_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        return None

    def classify_failure(self, result: CommandResult, lock_timeout: int
                         ) -> tuple[str, dict[str, str]]:
        if dnf_locked(result):
            m = re.search(r"locked by (\d+)", result.stderr + result.stdout)
            holder = f" by process {m[1]}" if m else ""
            return f"LOCKED: dnf lock held{holder} for more than {lock_timeout} s", {}
        return dnf_failure(result)

    async def reboot_required(self, transport: Transport, result: CommandResult) -> bool:
        return (await transport.run(NEEDS_RESTARTING.command)).exit_status == 1

    async def install(self, transport: Transport, request: InstallRequest,
                      blocked_by_us: list[str]) -> InstallOutcome:
        async with node_source(transport, request.source, SOURCE_LAYOUT) as sourced:
            if request.source is not None:
                await refresh_source(self, sourced, request.source, node_sudo=True,
                                     options=CollectOptions(lock_timeout=request.lock_timeout))
            return await self._install(sourced, request)

    async def _install(self, transport: Transport, request: InstallRequest) -> InstallOutcome:
        cmd = self.install_command(request.packages, block=sorted(set(request.block)),
                                   lock_timeout=request.lock_timeout)
        result = await run_retrying(transport, cmd, dnf_locked, request.lock_timeout)
        if dnf_locked(result) or not result.ok_for(cmd):
            reason, errors = self.classify_failure(result, request.lock_timeout)
            return InstallOutcome(ok=False, reason=reason, package_errors=errors,
                                  output_tail=tail(result), attempted=request.packages)
        return InstallOutcome(ok=True, output_tail=tail(result),
                              reboot_required=await self.reboot_required(transport, result),
                              attempted=request.packages)


SUPPORT = DnfSupport()
