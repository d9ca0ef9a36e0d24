"""First-seen dates: when patchfleet first saw a package version offered (patchfleet extension).

AWS approves Debian and Ubuntu updates immediately because apt metadata has no release dates
(spec §1.8). patchfleet can stage them anyway: a version's "release date" is the first time a
scan saw it offered, and ``approve_after_days`` / ``approve_until_date`` count from there. The
evaluators take the result as ``first_seen`` (apt: the release date; rpm: the last fallback
after the notice's dates and the build time). A version missing from the mapping counts as seen
now, so a rule with a delay never approves a version on the scan that first meets it.

The dates are fleet-wide by default: the earliest sighting on any node. That is what staged
approval needs. A version's clock starts once, wherever it first appeared (a canary group
scanned daily starts it for everyone), so every node approves the same version on the same day,
as AWS's release dates and patch snapshots behave; a node added or rebuilt later does not restart
the clock and wait another N days for an update the fleet already accepted; and one offline
node does not delay itself. Per-node or per-group clocks are available by passing ``nodes``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = ["Sighting", "first_seen"]


class Sighting(NamedTuple):
    """One scan's record of a version offered to a node: ``node_id, package,
    available_version, scanned_at`` of a ``patch_states`` row, in that column order."""

    node_id: str
    package: str
    version: str | None
    scanned_at: datetime


def first_seen(
    sightings: Iterable[tuple[str, str, str | None, datetime]],
    nodes: Collection[str] | None = None,
) -> dict[tuple[str, str], datetime]:
    """(package, version) -> the earliest ``scanned_at`` among ``sightings`` (UTC).

    ``sightings`` are :class:`Sighting` tuples, or plain tuples in the same order (rows of
    ``SELECT node_id, package, available_version, scanned_at FROM patch_states``). Rows
    without a version are skipped; times are converted to UTC (naive ones taken as UTC).
    ``nodes`` keeps only the sightings of those nodes (a patch group, or one node); None keeps
    all (fleet-wide).
    """
    earliest: dict[tuple[str, str], datetime] = {}
    for node_id, package, version, scanned_at in sightings:
        if not version or (nodes is not None and node_id not in nodes):
            continue
        when = scanned_at.astimezone(UTC) if scanned_at.tzinfo else scanned_at.replace(tzinfo=UTC)
        key = (package, version)
        seen = earliest.get(key)
        if seen is None or when < seen:
            earliest[key] = when
    return earliest
