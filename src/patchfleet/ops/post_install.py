"""After an install: which processes and services still run replaced files, and which competing
auto-updaters are active on the node. No Prefect here.

These are reports, not compliance: a probe that fails or prints something unparseable becomes a
warning in :class:`PostInstallState`, never an exception (connection loss excepted, which the
transport raises as for any other collector).

Sources per family (``probes.POST_PROBES``): the portable ``/proc/*/maps`` scan on every family
(the only one that sees stale processes on overlayfs roots, where ``dnf needs-restarting`` prints
nothing); ``needrestart -b`` on apt nodes when installed (services, kernel status); ``zypper ps
-s`` on zypper nodes (services). Auto-updaters of another family (apt-daily timers on a dnf node)
are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from patchfleet.domain.facts import OsInfo, PackageManager
from patchfleet.errors import ParseError
from patchfleet.managers import probes
from patchfleet.parsers import restarts
from patchfleet.parsers.restarts import AutoUpdaters, RestartState
from patchfleet.transport.base import Command, Transport

T = TypeVar("T")

_FAMILY_UPDATERS = {
    "apt": ("unattended-upgrades", "apt-daily.timer", "apt-daily-upgrade.timer"),
    "rpm": ("dnf-automatic", "yum-cron"),
    "zypper": ("suse-automatic-online-update", "os-update"),
}
_OWN_UPDATERS = {
    PackageManager.APT: ("apt",),
    PackageManager.DNF: ("rpm",),
    PackageManager.YUM: ("rpm",),
    PackageManager.ZYPPER: ("zypper",),
}


@dataclass(frozen=True, slots=True)
class PostInstallState:
    restarts: RestartState
    auto_updaters: AutoUpdaters
    warnings: tuple[str, ...] = ()


def family(os: OsInfo) -> str:
    pm = os.package_manager
    if pm is PackageManager.APT:
        return "apt"
    if pm is PackageManager.ZYPPER:
        return "zypper"
    return "dnf"


async def _probe(transport: Transport, command: Command, parse: Callable[[str], T],
                 warnings: list[str]) -> T | None:
    result = await transport.run(command)
    if not result.ok_for(command):
        err = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        warnings.append(f"{command.label} exited {result.exit_status}: {' | '.join(err)[:300]}")
        return None
    try:
        return parse(result.stdout)
    except ParseError as e:
        warnings.append(f"{command.label}: {e}")
        return None


def _own_family(found: tuple[tuple[str, str], ...], pm: PackageManager) -> tuple[
        tuple[str, str], ...]:
    foreign = {name for fam, names in _FAMILY_UPDATERS.items()
               if fam not in _OWN_UPDATERS.get(pm, ()) for name in names}
    return tuple(item for item in found if item[0] not in foreign)


async def collect_post_install(transport: Transport, os: OsInfo) -> PostInstallState:
    warnings: list[str] = []
    fam = family(os)
    states: list[RestartState | None] = []
    updaters: AutoUpdaters | None = None
    for command in probes.POST_PROBES[fam]:
        if command is probes.RESTART_PROC_MAPS:
            states.append(await _probe(transport, command, restarts.parse_proc_maps, warnings))
        elif command is probes.NEEDRESTART_BATCH:
            states.append(await _probe(transport, command, restarts.parse_needrestart, warnings))
        elif command is probes.ZYPPER_PS:
            states.append(await _probe(transport, command, restarts.parse_zypper_ps, warnings))
        elif command is probes.AUTO_UPDATERS:
            updaters = await _probe(transport, command, restarts.parse_auto_updaters, warnings)
    au = updaters or AutoUpdaters()
    au = AutoUpdaters(_own_family(au.found, os.package_manager),
                      _own_family(au.inactive, os.package_manager), au.systemd)
    return PostInstallState(restarts.merge(*states), au, tuple(warnings))
