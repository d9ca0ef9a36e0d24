"""Gather :class:`NodeFacts` from one node through a transport. No Prefect here.

The sequence for an apt node: os-release, an optional ``apt-get update`` (AWS refreshes too;
a held lock or a failing mirror is recorded, and the scan goes on with the lists the node has),
the reboot state, dpkg's database, apt's releases and version tables, the resolver's plan, and
Priority/Section of every newer version. Scanning never changes the node beyond apt's lists.
dnf and zypper nodes are collected by :mod:`patchfleet.managers.collect_rpm`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from patchfleet.domain.facts import (
    NodeFacts,
    OsInfo,
    PackageCandidates,
    PackageManager,
    PackageVersion,
    RefreshResult,
)
from patchfleet.domain.versions import dpkg_compare
from patchfleet.errors import CommandError, LockError, NodeError, UnsupportedOSError
from patchfleet.managers import probes
from patchfleet.parsers import apt, dpkg, os_release, reboot
from patchfleet.transport.base import Command, CommandResult, Transport

log = logging.getLogger(__name__)

# apt-cache show takes names on the command line; batches keep each command well below ARG_MAX.
SHOW_BATCH = 400


@dataclass(frozen=True, slots=True)
class CollectOptions:
    refresh: bool = True
    """Refresh the package metadata first (apt-get update, dnf makecache, zypper refresh), as
    AWS does. Needs root or sudo on the node."""
    lock_timeout: int = 60
    """Seconds to wait for a held package-manager lock (apt's DPkg::Lock::Timeout; dnf retries
    with backoff; zypper's ZYPP_LOCK_TIMEOUT) before the refresh is given up."""


async def _run(transport: Transport, command: Command) -> CommandResult:
    result = await transport.run(command)
    if not result.ok_for(command):
        raise _command_failure(transport.node_id, command, result)
    return result


def _command_failure(node_id: str, command: Command, result: CommandResult) -> NodeError:
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


async def collect_os(transport: Transport) -> OsInfo:
    result = await _run(transport, probes.OS_RELEASE)
    return os_release.os_info(os_release.parse_os_release(result.stdout))


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


async def refresh_apt(transport: Transport, node_sudo: bool, options: CollectOptions
                      ) -> RefreshResult:
    skipped = refresh_skipped(transport, node_sudo, options, "apt-get update")
    if skipped is not None:
        return skipped
    result = await transport.run(probes.apt_update(options.lock_timeout))
    return apt.parse_update(result.exit_status, result.stdout, result.stderr)


def _newer_versions(c: PackageCandidates) -> list[PackageVersion]:
    if c.installed_version is None:
        return []
    return [v for v in c.versions if dpkg_compare(v.version, c.installed_version) > 0]


async def collect_apt(
    transport: Transport,
    node_id: str,
    host: str,
    os: OsInfo,
    *,
    node_sudo: bool = False,
    options: CollectOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> NodeFacts:
    """All facts an apt node offers, for one scan."""
    options = options or CollectOptions()
    note = progress or (lambda _msg: None)
    note("refreshing package lists")
    refresh = await refresh_apt(transport, node_sudo, options)
    note("reading package state")
    reboot_state = reboot.parse_apt_reboot((await _run(transport, probes.APT_REBOOT)).stdout)
    installed = dpkg.parse_dpkg_query((await _run(transport, probes.DPKG_QUERY)).stdout)
    releases = apt.parse_policy_releases((await _run(transport, probes.APT_POLICY)).stdout)
    tables = apt.parse_policy_packages(
        (await _run(transport, probes.APT_POLICY_INSTALLED)).stdout, releases
    )
    plan = apt.parse_simulate((await _run(transport, probes.APT_SIMULATE)).stdout)

    wanted = sorted({(c.name.split(":")[0], v.version) for c in tables for v in _newer_versions(c)})
    meta: dict[tuple[str, str], tuple[str, str]] = {}
    for i in range(0, len(wanted), SHOW_BATCH):
        batch = wanted[i : i + SHOW_BATCH]
        meta.update(apt.parse_apt_show((await _run(transport, probes.apt_show(batch))).stdout))

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
        collected_at=datetime.now(UTC),
        warnings=tuple(warnings),
    )


def _with_metadata(
    c: PackageCandidates, meta: dict[tuple[str, str], tuple[str, str]]
) -> PackageCandidates:
    name = c.name.split(":")[0]
    versions = []
    for v in c.versions:
        prio, section = meta.get((name, v.version), ("", ""))
        versions.append(
            PackageVersion(
                version=v.version,
                origins=v.origins,
                installed=v.installed,
                priority=prio or v.priority,
                section=section or v.section,
            )
        )
    return PackageCandidates(
        name=c.name,
        installed_version=c.installed_version,
        candidate_version=c.candidate_version,
        versions=tuple(versions),
    )


async def collect_facts(
    transport: Transport,
    node_id: str,
    host: str,
    *,
    node_sudo: bool = False,
    options: CollectOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> NodeFacts:
    """Detect the OS, then gather facts with the matching package manager's probes."""
    os = await collect_os(transport)
    if os.package_manager is PackageManager.APT:
        return await collect_apt(
            transport, node_id, host, os, node_sudo=node_sudo, options=options, progress=progress
        )
    from patchfleet.managers import collect_rpm  # imports this module: import it when first needed

    if os.package_manager is PackageManager.DNF:
        return await collect_rpm.collect_dnf(
            transport, node_id, host, os, node_sudo=node_sudo, options=options, progress=progress
        )
    if os.package_manager is PackageManager.ZYPPER:
        return await collect_rpm.collect_zypper(
            transport, node_id, host, os, node_sudo=node_sudo, options=options, progress=progress
        )
    raise UnsupportedOSError(
        f"{os.pretty_name} uses {os.package_manager.value}, which patchfleet recognises but "
        "does not scan yet (yum: Amazon Linux 2, RHEL/CentOS/Oracle Linux 7)"
    )
