"""The package managers patchfleet supports, keyed by :class:`PackageManager`, and the scan's
entry point: detect the OS, then let its manager collect the facts.

yum (Amazon Linux 2, RHEL/CentOS/Oracle Linux 7) is recognised by the OS detection but has no
support module yet: asking for it raises :class:`UnsupportedOSError`.
"""

from __future__ import annotations

from patchfleet.domain.facts import NodeFacts, OsInfo, PackageManager
from patchfleet.errors import UnsupportedOSError
from patchfleet.managers import apt, dnf, zypper
from patchfleet.managers.base import CollectOptions, PackageManagerSupport, Progress
from patchfleet.managers.common import collect_os
from patchfleet.transport.base import Transport

_SUPPORTS: dict[PackageManager, PackageManagerSupport] = {
    s.manager: s for s in (apt.SUPPORT, dnf.SUPPORT, zypper.SUPPORT)
}


def supports() -> tuple[PackageManagerSupport, ...]:
    """Every supported package manager."""
    return tuple(_SUPPORTS.values())


def find(pm: PackageManager) -> PackageManagerSupport | None:
    """``pm``'s support, or None when patchfleet does not drive it."""
    return _SUPPORTS.get(pm)


def support_for(pm: PackageManager, os_name: str | None = None) -> PackageManagerSupport:
    """``pm``'s support; :class:`UnsupportedOSError` names the node's OS (``os_name``, its
    PRETTY_NAME) when patchfleet recognises ``pm`` but does not drive it."""
    support = _SUPPORTS.get(pm)
    if support is None:
        who = "the node" if os_name is None else os_name
        raise UnsupportedOSError(
            f"{who} uses {pm.value}, which patchfleet recognises but does not scan yet "
            "(yum: Amazon Linux 2, RHEL/CentOS/Oracle Linux 7)"
        )
    return support


def foreign_updaters(pm: PackageManager) -> frozenset[str]:
    """Auto-updaters of the other families: left out of ``pm``'s post-install reports (the
    test nodes, for one, carry Debian's apt-daily timers on their rpm-family roots)."""
    own = set(support_for(pm).own_updaters)
    return frozenset(n for s in supports() for n in s.own_updaters if n not in own)


async def collect_facts(
    transport: Transport,
    node_id: str,
    host: str,
    *,
    node_sudo: bool = False,
    options: CollectOptions | None = None,
    progress: Progress | None = None,
    os: OsInfo | None = None,
) -> NodeFacts:
    """Detect the OS (unless the caller did: ``os``), then gather facts with the matching
    package manager's probes."""
    os = os or await collect_os(transport)
    support = support_for(os.package_manager, os.pretty_name)
    return await support.collect(transport, node_id, host, os, node_sudo=node_sudo,
                                 options=options, progress=progress)
