"""AWS schedules (cron/rate/at of windows and policies) as Prefect deployment schedules.

Pure: the result is plain data (:class:`DeploySchedule`); ``patchfleet.cli.deploy`` turns it into
Prefect schedule objects. Prefect evaluates 5-field cron (minute hour day-of-month month
day-of-week, Sunday = 0, with ``L`` for the last day of the month and ``d#n`` for the nth
weekday), intervals with an anchor, and RFC 5545 rrules, each in a timezone.

- A cron whose every field has a Prefect equivalent becomes that cron, ``exact=True``:
  ``cron(0 2 ? * TUE#2 *)`` -> ``0 2 * * 2#2``.
- A window cron that has none (``W``, ``LW``, ``dL``, several ``#`` terms, a year list, or a
  ``schedule_offset``) becomes a *daily* cron at the window's times, ``exact=False``: the
  maintenance-window flow finds the real occurrence at run time and a run on a day without one
  ends at once, marked skipped. Patch policies must use exact crons (:func:`policy_schedule`
  raises) because their flow has no occurrence check.
- ``rate(N unit)`` becomes an interval anchored at the window's ``start_date`` (the flow counts
  occurrences from the same anchor), ``exact=True``.
- ``at(...)`` becomes an rrule with ``COUNT=1`` at that instant (in UTC), ``exact=True``.

``start_date`` / ``end_date`` are not encoded in the Prefect schedule: the flow skips runs outside
them. A cron time inside a spring-forward gap (02:30 on the day New York skips 02:00-03:00) is
the one difference: Prefect fires at the nominal time shifted by the gap (03:30), patchfleet's
occurrence starts at the first instant after the gap (03:00, like Vixie cron); the window flow
measures duration and cutoff from patchfleet's start, so the run still lands in its occurrence.
Folds (the repeated autumn hour) agree: both fire once, at the first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from patchfleet.domain.windows import (
    MAX_YEAR,
    MIN_YEAR,
    AtSchedule,
    CronSchedule,
    MaintenanceWindow,
    RateSchedule,
    parse_schedule,
    resolve_local,
)
from patchfleet.errors import ConfigError

__all__ = ["DeploySchedule", "cron_to_prefect", "policy_schedule", "window_schedule"]

_ALL_MINUTES = tuple(range(60))
_ALL_HOURS = tuple(range(24))
_ALL_MONTHS = frozenset(range(1, 13))
_ALL_DAYS = frozenset(range(1, 32))
_ALL_YEARS = frozenset(range(MIN_YEAR, MAX_YEAR + 1))


@dataclass(frozen=True)
class DeploySchedule:
    """One Prefect schedule: exactly one of ``cron``, ``interval`` or ``rrule`` is set."""

    timezone: str
    cron: str | None = None
    interval: timedelta | None = None
    anchor: datetime | None = None
    """For ``interval``: the first run; later runs are anchor + k * interval."""
    rrule: str | None = None
    exact: bool = True
    """False: Prefect fires on a superset of the occurrences; the window flow skips the rest."""
    note: str = ""

    def describe(self) -> str:
        if self.cron is not None:
            what = f"cron '{self.cron}'"
        elif self.interval is not None:
            what = f"every {self.interval} from {self.anchor:%FT%TZ}"
        else:
            what = f"rrule {self.rrule!r}"
        return f"{what} ({self.timezone})" + (f"; {self.note}" if self.note else "")


def _list(values: tuple[int, ...] | frozenset[int], full: tuple[int, ...] | frozenset[int]
          ) -> str:
    if set(values) == set(full):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _py_to_cron_dow(weekday: int) -> int:
    """Python weekday (0 = Monday) -> cron day of week (0 = Sunday)."""
    return (weekday + 1) % 7


def cron_to_prefect(cron: CronSchedule) -> str | None:
    """The 5-field Prefect cron firing exactly when ``cron`` does, or None if there is none."""
    if cron.years != _ALL_YEARS:
        return None
    minutes = _list(cron.minutes, _ALL_MINUTES)
    hours = _list(cron.hours, _ALL_HOURS)
    months = _list(cron.months, _ALL_MONTHS)
    dom = "*"
    if not cron.dom_any:
        if cron.dom_last_weekday or cron.dom_nearest_weekday:
            return None
        if cron.dom_last:
            if cron.dom_days:
                return None
            dom = "L"
        else:
            dom = _list(cron.dom_days, _ALL_DAYS)
    dow = "*"
    if not cron.dow_any:
        if cron.dow_last:
            return None
        if cron.dow_nth:
            if len(cron.dow_nth) > 1 or cron.dow_days:
                return None
            ((day, nth),) = cron.dow_nth
            dow = f"{_py_to_cron_dow(day)}#{nth}"
        elif len(cron.dow_days) == 7:
            dow = "*"
        else:
            dow = ",".join(str(d) for d in sorted(_py_to_cron_dow(w) for w in cron.dow_days))
    if dom != "*" and dow != "*":  # AWS forbids both; cron would OR them
        return None
    return f"{minutes} {hours} {dom} {months} {dow}"


def _daily_superset(cron: CronSchedule) -> str:
    return f"{_list(cron.minutes, _ALL_MINUTES)} {_list(cron.hours, _ALL_HOURS)} * * *"


def window_schedule(window: MaintenanceWindow) -> DeploySchedule:
    """The Prefect schedule that starts the window flow for every occurrence of ``window``."""
    sched = window.parsed
    tz = window.schedule_timezone
    if isinstance(sched, RateSchedule):
        if window.start_date is None:
            raise ConfigError(f"{window.schedule} counts from its start: set start_date",
                              field="start_date")
        return DeploySchedule(timezone=tz, interval=sched.interval,
                              anchor=window.start_date.astimezone(UTC))
    if isinstance(sched, AtSchedule):
        # the instant patchfleet resolves (DST gap/fold rules), written in UTC
        when = resolve_local(sched.when, window.tz).astimezone(UTC)
        return DeploySchedule(timezone="UTC", rrule=(
            f"DTSTART:{when:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;COUNT=1"))
    exact = None if window.schedule_offset else cron_to_prefect(sched)
    if exact is not None:
        return DeploySchedule(timezone=tz, cron=exact)
    why = (f"offset of {window.schedule_offset} day(s)" if window.schedule_offset
           else "a cron Prefect can't express")
    return DeploySchedule(timezone=tz, cron=_daily_superset(sched), exact=False,
                          note=f"{why}: runs daily at the window's times and skips days "
                               "without an occurrence")


def policy_schedule(expression: str, timezone: str, field: str) -> DeploySchedule:
    """A patch policy's scan or install cron as an exact Prefect cron; ConfigError if none."""
    sched = parse_schedule(expression, field)
    if not isinstance(sched, CronSchedule):
        raise ConfigError(f"{expression!r}: a patch policy schedule is a cron(...)", field=field)
    exact = cron_to_prefect(sched)
    if exact is None:
        raise ConfigError(
            f"{expression!r} uses W, LW, dL, several # terms or a year list, which a "
            "policy schedule can't express; use plain values, ranges, lists, L or d#n, or "
            "schedule this work as a maintenance window", field=field)
    return DeploySchedule(timezone=timezone, cron=exact)
