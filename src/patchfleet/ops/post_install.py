"""After an install: which processes and services still run replaced files, and which competing
auto-updaters are active on the node. No Prefect here.

These are reports, not compliance: a probe that fails or prints something unparseable becomes a
warning in :class:`PostInstallState`, never an exception (connection loss excepted, which the
transport raises as for any other collector).

Sources per family (each manager's ``restart_probes``, then the auto-updaters probe): the
portable ``/proc/*/maps`` scan on every family (the only one that sees stale processes on
overlayfs roots, where ``dnf needs-restarting`` prints nothing); ``needrestart -b`` on apt nodes
when installed (services, kernel status); ``zypper ps -s`` on zypper nodes (services).
Auto-updaters of another family (apt-daily timers on a dnf node) are left out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeVar

from patchfleet.domain.facts import OsInfo
from patchfleet.errors import ParseError
from patchfleet.managers.base import Probe
from patchfleet.managers.post_probes import AUTO_UPDATERS
from patchfleet.managers.registry import foreign_updaters, support_for
from patchfleet.parsers import restarts
from patchfleet.parsers.restarts import AutoUpdaters, RestartState
from patchfleet.transport.base import Transport

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PostInstallState:
    restarts: RestartState
    auto_updaters: AutoUpdaters
    warnings: tuple[str, ...] = ()


async def _probe(transport: Transport, probe: Probe[T], warnings: list[str]) -> T | None:
    command = probe.command
    result = await transport.run(command)
    if not result.ok_for(command):
        err = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        warnings.append(f"{command.label} exited {result.exit_status}: {' | '.join(err)[:300]}")
        return None
    try:
        return probe.read(result)
    except ParseError as e:
        warnings.append(f"{command.label}: {e}")
        return None


def _own_family(found: tuple[tuple[str, str], ...], foreign: frozenset[str]) -> tuple[
        tuple[str, str], ...]:
    return tuple(item for item in found if item[0] not in foreign)


async def collect_post_install(transport: Transport, os: OsInfo,
                               installed: Collection[str] | None = None) -> PostInstallState:
    """The restart report and the competing auto-updaters of the node behind ``transport``.
    ``installed`` (package names, when the scan read them) skips probes of tools the node
    does not have (needrestart)."""
    support = support_for(os.package_manager, os.pretty_name)
    warnings: list[str] = []
    states: list[RestartState | None] = []
    for probe in support.restart_probes:
        if probe.needs_package and installed is not None \
                and probe.needs_package not in installed:
            continue
        states.append(await _probe(transport, probe, warnings))
    au = await _probe(transport, AUTO_UPDATERS, warnings) or AutoUpdaters()
    foreign = foreign_updaters(os.package_manager)
    au = AutoUpdaters(_own_family(au.found, foreign), _own_family(au.inactive, foreign),
                      au.systemd)
    return PostInstallState(restarts.merge(*states), au, tuple(warnings))
