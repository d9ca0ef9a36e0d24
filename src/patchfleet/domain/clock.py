"""The time a scan reads: the system clock, unless a test or a what-if sets another.

Approval delays, first-seen dates and staged approval are all about days passing. Tests that
scan a real node on "day 0", "day 6" and "day 7" cannot wait a week, so every place a scan
takes the time (facts' ``collected_at``, the operation's start and end, the evaluation's
``now``) asks :func:`now`, and :func:`frozen_at` pins it for the code inside the ``with``.
Production code never sets it; it reads the system clock in UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["frozen_at", "now", "opt_utc", "utc"]

_PINNED: ContextVar[datetime | None] = ContextVar("patchfleet_clock", default=None)


def now() -> datetime:
    """The current time (aware, UTC), or the pinned time inside :func:`frozen_at`."""
    pinned = _PINNED.get()
    return pinned if pinned is not None else datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """``value`` in UTC. A naive datetime is taken to already be UTC (what pyarrow would do)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def opt_utc(value: datetime | None) -> datetime | None:
    """:func:`utc`, passing None through."""
    return None if value is None else utc(value)


@contextlib.contextmanager
def frozen_at(when: datetime) -> Iterator[datetime]:
    """Pin :func:`now` to ``when`` (naive: taken as UTC) for this context and the asyncio tasks
    it starts."""
    pinned = utc(when)
    token = _PINNED.set(pinned)
    try:
        yield pinned
    finally:
        _PINNED.reset(token)
