"""Pending reboots across runs: what patchfleet installed since the node's current boot.

AWS marks patches its own installs put in place as INSTALLED_PENDING_REBOOT until the node
reboots and is scanned again (spec §2.3). patchfleet remembers them in the store: the packages
an INSTALL run left pending, and the boot id the node had then. While the node still runs that
boot, a later scan (any run) reports them pending too; a new boot id clears them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from patchfleet.domain.records import PatchRecord, PatchState


@dataclass(frozen=True, slots=True)
class PendingInstalls:
    """Packages (name, version) an install left pending a reboot while the node ran ``boot_id``."""

    boot_id: str
    packages: frozenset[tuple[str, str]]


def mark_pending(
    records: Iterable[PatchRecord], pending: PendingInstalls | None, boot_id: str | None
) -> tuple[PatchRecord, ...]:
    """INSTALLED / INSTALLED_OTHER records of packages still at the version an earlier install
    put in place, on the same boot, become INSTALLED_PENDING_REBOOT."""
    out = tuple(records)
    if pending is None or not boot_id or boot_id != pending.boot_id:
        return out
    keep = (PatchState.INSTALLED, PatchState.INSTALLED_OTHER)
    return tuple(
        replace(r, state=PatchState.INSTALLED_PENDING_REBOOT)
        if r.state in keep and (r.package, r.installed_version or "") in pending.packages
        else r
        for r in out
    )
