"""What dnf and zypper nodes share: rpm's database, the boot probe, rpm name and EVR checks for
install argv, the updateinfo warnings and the facts record both collectors fill.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from patchfleet.domain import clock
from patchfleet.domain.facts import (
    Advisory,
    AvailableUpdate,
    InstalledPackage,
    NodeFacts,
    OsInfo,
    RebootState,
    RefreshResult,
)
from patchfleet.managers.base import InstalledVersions, Probe, on_stdout
from patchfleet.managers.common import must
from patchfleet.parsers import boot, updateinfo
from patchfleet.parsers.rpm import parse_rpm_query
from patchfleet.transport.base import Command, Transport, script

RPM_QUERY_FORMAT = (
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{INSTALLTIME}\\t%{BUILDTIME}"
    "\\t%{SOURCERPM}\\n"
)
# Every installed package, one tab-separated line each. EPOCHNUM prints 0 for "no epoch";
# times are epoch seconds. gpg-pubkey entries (imported keys) have ARCH and SOURCERPM "(none)".
RPM_QUERY: Probe[tuple[InstalledPackage, ...]] = Probe(
    Command(("rpm", "-qa", "--queryformat", RPM_QUERY_FORMAT), name="rpm-query"),
    on_stdout(parse_rpm_query),
)

# Line 1: boot id. Line 2: /proc/uptime. Line 3: the node's clock (epoch seconds), read in the
# same instant, so that boot time = clock - uptime needs no trust in the controller's clock.
BOOT: Probe[boot.BootInfo] = Probe(
    Command(script("cat /proc/sys/kernel/random/boot_id; cat /proc/uptime; date +%s"),
            name="rpm-boot"),
    on_stdout(boot.parse_boot),
)

# rpm names: letters, digits and . _ + - (no leading dash). EVR: [epoch:]version-release, each
# part of letters, digits and . _ + ~ ^ (rpm's own allowed set).
RPM_NAME_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+\-]*$")
RPM_EVR_RE = re.compile(r"^(?:[0-9]+:)?[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$")


def rpm_name(name: str) -> str:
    if not RPM_NAME_RE.match(name):
        raise ValueError(f"refusing to send package name {name!r}: not an rpm package name")
    return name


def rpm_evr(version: str) -> str:
    if not RPM_EVR_RE.match(version):
        raise ValueError(f"refusing to send version {version!r}: not an rpm [E:]V-R")
    return version


async def read_installed(transport: Transport) -> InstalledVersions:
    pkgs = RPM_QUERY.read(await must(transport, RPM_QUERY.command))
    return {(p.name, p.arch): p.version for p in pkgs}


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
                       "enable_non_security and no CLASSIFICATION/SEVERITY filter other than "
                       "'*')")
        elif state not in ("ok", "none"):
            out.append(f"repository {repo}: updateinfo not read ({state})")
    return out + list(dump.problems)


def rpm_facts(
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
    """The facts of a dnf or zypper scan; a failed refresh comes first among the warnings."""
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
        collected_at=clock.now(),
        warnings=tuple(notes),
        updates=updates,
        advisories=advisories,
        boot_time=boot_time,
    )
