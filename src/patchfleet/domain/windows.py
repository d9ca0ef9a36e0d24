"""Maintenance windows: schedules, occurrences and phases (spec §6, AWS Systems Manager semantics).

Pure: stdlib ``datetime``/``zoneinfo`` and pydantic only; the cron evaluator is our own.

Schedules (:func:`parse_schedule`):

- ``cron(min hour dom month dow year)``: AWS's 6-field cron. A 7-field form with a leading
  seconds field (``cron(0 30 23 ? * TUE#3 *)``, as older SSM examples write it) is accepted when
  the seconds field is ``0``. Exactly one of day-of-month / day-of-week is ``?``. Day-of-week is
  ``1-7`` (1 = SUN) or ``SUN``-``SAT``; months ``1-12`` or ``JAN``-``DEC``; years 1970-2199.
  ``*``, ``,`` lists, ``a-b`` ranges and ``/`` steps everywhere; day-of-month also ``L`` (last
  day), ``LW`` (last weekday) and ``nW`` (weekday nearest day n, within the month); day-of-week
  also ``dL`` (last d of the month, ``6L`` = last Friday), ``L`` alone (= 7, Saturday) and
  ``d#n`` (nth d, ``TUE#2`` = Patch Tuesday).
- ``rate(N minute|minutes|hour|hours|day|days)``: singular unit for 1, plural otherwise (as AWS).
- ``at(YYYY-MM-DDTHH:MM:SS)``: once, in the window's timezone.

Decisions (:func:`next_runs`):

- cron and at() are wall-clock times in ``schedule_timezone``. A local time that doesn't exist
  (the spring-forward gap) fires at the first valid instant after the gap (03:00 local for a
  02:30 tick in New York / Berlin), like Vixie cron; several ticks in one gap fire once. A local
  time that occurs twice (autumn fall-back) fires once, at its first occurrence (the
  daylight-time instant, ``fold=0``).
- ``schedule_offset`` adds N calendar days to the cron date, keeping the local wall time, and
  the result is resolved against DST afterwards.
- rate() is a fixed interval of elapsed time (UTC), independent of the timezone. It counts from
  its anchor: ``max(start_date, activated_at)`` of those given (AWS: "a StartDate in the past
  becomes now; the rate counts from the activation moment"). The anchor itself is the first run.
  With neither, :func:`next_runs` raises ConfigError: a rate needs an anchor.
- ``start_date`` / ``end_date`` bound the actual start times (after the offset), both inclusive;
  they never shift a cron schedule.
- A disabled window has no runs and no current occurrence.

Phases (:func:`window_phase`), for an occurrence starting at ``start``::

    [start, start + duration - cutoff)          OPEN     new node work may start
    [start + duration - cutoff, start + duration) CUTOFF no new node work
    [start + duration, ...)                     CLOSED
    before start                                NOT_STARTED
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from itertools import islice
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patchfleet.domain.model_errors import unknown_key_message
from patchfleet.errors import ConfigError

__all__ = [
    "AtSchedule",
    "CronSchedule",
    "CutoffBehavior",
    "MaintenanceWindow",
    "RateSchedule",
    "Schedule",
    "WindowPhase",
    "check_name",
    "check_timezone",
    "current_window_start",
    "load_window",
    "next_runs",
    "parse_schedule",
    "resolve_local",
    "window_phase",
]

NAME_RE = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
MIN_YEAR, MAX_YEAR = 1970, 2199

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DOWS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_CRON_HELP = (
    "write cron(minutes hours day-of-month month day-of-week year), "
    "e.g. cron(0 2 ? * TUE#2 *)"
)


# --------------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class CronSchedule:
    """A parsed AWS cron expression. Day-of-week values here are Python weekdays (0 = Monday)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    dom_any: bool = False
    dom_days: frozenset[int] = frozenset()
    dom_last: bool = False
    dom_last_weekday: bool = False
    dom_nearest_weekday: frozenset[int] = frozenset()
    dow_any: bool = False
    dow_days: frozenset[int] = frozenset()
    dow_last: frozenset[int] = frozenset()
    dow_nth: frozenset[tuple[int, int]] = frozenset()

    def matches(self, d: date) -> bool:
        """Whether the date ``d`` is a firing day (year, month and day fields)."""
        if d.year not in self.years or d.month not in self.months:
            return False
        last = calendar.monthrange(d.year, d.month)[1]
        if not self.dom_any:
            return (
                d.day in self.dom_days
                or (self.dom_last and d.day == last)
                or (self.dom_last_weekday and d.day == _last_weekday(d.year, d.month))
                or any(d.day == _nearest_weekday(d.year, d.month, n)
                       for n in self.dom_nearest_weekday)
            )
        wd = d.weekday()
        return (
            wd in self.dow_days
            or (wd in self.dow_last and d.day + 7 > last)
            or (wd, (d.day - 1) // 7 + 1) in self.dow_nth
        )


@dataclass(frozen=True)
class RateSchedule:
    """``rate(N unit)``: a fixed interval of elapsed time."""

    expression: str
    interval: timedelta


@dataclass(frozen=True)
class AtSchedule:
    """``at(...)``: one local wall-clock time."""

    expression: str
    when: datetime
    """Naive; interpreted in the window's timezone."""


Schedule = CronSchedule | RateSchedule | AtSchedule


def _last_weekday(year: int, month: int) -> int:
    day = calendar.monthrange(year, month)[1]
    while date(year, month, day).weekday() >= 5:
        day -= 1
    return day


def _nearest_weekday(year: int, month: int, n: int) -> int | None:
    """Quartz ``nW``: the weekday nearest day n, never leaving the month."""
    last = calendar.monthrange(year, month)[1]
    if n > last:
        return None
    wd = date(year, month, n).weekday()
    if wd == 5:  # Saturday -> Friday, or Monday when Friday is in the previous month
        return n - 1 if n > 1 else n + 2
    if wd == 6:  # Sunday -> Monday, or Friday when Monday is in the next month
        return n + 1 if n < last else n - 2
    return n


def _aws_dow_to_py(v: int) -> int:
    return (v - 2) % 7


class _FieldError(ValueError):
    pass


def _value(tok: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    up = tok.upper()
    if up in names:
        return names[up]
    if not tok.isdigit():
        extra = f" or {min(names, key=names.__getitem__)}-{max(names, key=names.__getitem__)}" \
            if names else ""
        raise _FieldError(f"{what} value {tok!r} is not a number {lo}-{hi}{extra}")
    v = int(tok)
    if not lo <= v <= hi:
        raise _FieldError(f"{what} value {v} is out of range {lo}-{hi}")
    return v


def _values(item: str, lo: int, hi: int, names: dict[str, int], what: str) -> set[int]:
    """One list item: ``*``, ``n``, ``a-b``, with an optional ``/step``."""
    base, _, step_s = item.partition("/")
    if "/" in item and (not step_s.isdigit() or int(step_s) < 1):
        raise _FieldError(f"{what} step {step_s!r} must be a positive number")
    step = int(step_s) if step_s else 1
    if base == "*":
        start, end = lo, hi
    elif "-" in base:
        a, _, b = base.partition("-")
        start, end = _value(a, lo, hi, names, what), _value(b, lo, hi, names, what)
        if start > end:
            raise _FieldError(f"{what} range {base!r} runs backwards; write it low-high")
    else:
        start = _value(base, lo, hi, names, what)
        end = hi if step_s else start
    return set(range(start, end + 1, step))


def _simple_field(text: str, lo: int, hi: int, what: str,
                  names: dict[str, int] | None = None) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _FieldError(f"{what} has an empty list item")
        out |= _values(item, lo, hi, names or {}, what)
    return out


def _parse_cron(expr: str, body: str) -> CronSchedule:
    parts = body.split()
    if len(parts) == 7:
        if parts[0] != "0":
            raise _FieldError(
                f"the 7-field form's leading seconds field must be 0 (got {parts[0]!r}); "
                "or drop it and " + _CRON_HELP
            )
        parts = parts[1:]
    if len(parts) != 6:
        raise _FieldError(f"cron has {len(parts)} fields, needs 6; {_CRON_HELP}")
    mi, ho, dom, mo, dow, yr = parts
    if (dom == "?") == (dow == "?"):
        raise _FieldError(
            "exactly one of day-of-month and day-of-week must be '?' "
            "(e.g. cron(0 2 ? * TUE#2 *) or cron(0 2 L * ? *))"
        )
    kw: dict[str, Any] = {
        "minutes": tuple(sorted(_simple_field(mi, 0, 59, "minutes"))),
        "hours": tuple(sorted(_simple_field(ho, 0, 23, "hours"))),
        "months": frozenset(_simple_field(mo, 1, 12, "month", _MONTHS)),
        "years": frozenset(_simple_field(yr, MIN_YEAR, MAX_YEAR, "year")),
    }
    if dom == "?":
        kw["dom_any"] = True
        days: set[int] = set()
        last: set[int] = set()
        nth: set[tuple[int, int]] = set()
        for item in dow.split(","):
            up = item.upper()
            if up == "L":
                last.add(_aws_dow_to_py(7))
            elif up.endswith("L") and "/" not in up and "-" not in up:
                last.add(_aws_dow_to_py(_value(item[:-1], 1, 7, _DOWS, "day-of-week")))
            elif "#" in up:
                d, _, n = item.partition("#")
                if not n.isdigit() or not 1 <= int(n) <= 5:
                    raise _FieldError(
                        f"day-of-week {item!r}: the number after # must be 1-5 "
                        "(TUE#2 is the second Tuesday)"
                    )
                nth.add((_aws_dow_to_py(_value(d, 1, 7, _DOWS, "day-of-week")), int(n)))
            elif item:
                days |= {_aws_dow_to_py(v) for v in _values(item, 1, 7, _DOWS, "day-of-week")}
            else:
                raise _FieldError("day-of-week has an empty list item")
        kw.update(dow_days=frozenset(days), dow_last=frozenset(last), dow_nth=frozenset(nth))
    else:
        kw["dow_any"] = True
        ddays: set[int] = set()
        near: set[int] = set()
        for item in dom.split(","):
            up = item.upper()
            if up == "L":
                kw["dom_last"] = True
            elif up == "LW":
                kw["dom_last_weekday"] = True
            elif up.endswith("W"):
                near.add(_value(item[:-1], 1, 31, {}, "day-of-month"))
            elif item:
                ddays |= _values(item, 1, 31, {}, "day-of-month")
            else:
                raise _FieldError("day-of-month has an empty list item")
        kw.update(dom_days=frozenset(ddays), dom_nearest_weekday=frozenset(near))
    return CronSchedule(expression=expr, **kw)


_RATE_RE = re.compile(r"^\s*(\d+)\s+([a-z]+)\s*$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE_MAX_SECONDS = 3650 * 86400
"""Ten years: longer intervals are a typo (and past ~10**13 days Python's timedelta overflows)."""


def _parse_rate(expr: str, body: str) -> RateSchedule:
    m = _RATE_RE.match(body)
    fix = "write rate(N unit) with unit minute(s), hour(s) or day(s), e.g. rate(7 days)"
    if not m:
        raise _FieldError(fix)
    n, unit = int(m.group(1)), m.group(2)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise _FieldError(f"unknown unit {unit!r}; {fix}")
    if n < 1:
        raise _FieldError(f"the rate must be at least 1; {fix}")
    if n * _RATE_UNITS[singular] > _RATE_MAX_SECONDS:
        raise _FieldError(f"the rate is longer than {_RATE_MAX_SECONDS // 86400} days; write a "
                          "shorter interval, or at(...) for a one-time window")
    want = singular if n == 1 else singular + "s"
    if unit != want:
        raise _FieldError(f"write rate({n} {want})")
    return RateSchedule(expression=expr, interval=timedelta(seconds=n * _RATE_UNITS[singular]))


def _parse_at(expr: str, body: str) -> AtSchedule:
    body = body.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", body):
        raise _FieldError("write at(YYYY-MM-DDTHH:MM:SS), e.g. at(2026-07-07T15:55:00)")
    try:
        when = datetime.fromisoformat(body)
    except ValueError:
        raise _FieldError(f"{body!r} is not a real date and time") from None
    return AtSchedule(expression=expr, when=when)


def parse_schedule(expr: str, field: str = "schedule") -> Schedule:
    """Parse ``cron(...)``, ``rate(...)`` or ``at(...)``.

    Errors are ConfigError naming ``field`` and saying how to fix the expression.
    """
    m = re.fullmatch(r"\s*(cron|rate|at)\((.*)\)\s*", expr)
    try:
        if not m:
            raise _FieldError(
                "must be cron(...), rate(...) or at(...), "
                "e.g. cron(0 2 ? * TUE#2 *), rate(7 days) or at(2026-07-07T15:55:00)"
            )
        kind, body = m.group(1), m.group(2)
        if kind == "cron":
            return _parse_cron(expr, body)
        if kind == "rate":
            return _parse_rate(expr, body)
        return _parse_at(expr, body)
    except _FieldError as err:
        raise ConfigError(f"{expr!r}: {err}", field=field) from None


# ------------------------------------------------------------------------------------ model


class CutoffBehavior(StrEnum):
    CONTINUE_TASK = "CONTINUE_TASK"
    """Running work continues at the cutoff (AWS default)."""
    CANCEL_TASK = "CANCEL_TASK"
    """Running work is cancelled at the cutoff where possible."""


def check_name(v: str) -> str:
    """A window, policy or task name as AWS allows it (pydantic validator: ValueError)."""
    if not NAME_RE.match(v):
        raise ValueError(f"{v!r} is not a valid name: use 3-128 letters, digits, '_', '-', '.'")
    return v


def check_timezone(v: str) -> str:
    """An IANA timezone name (pydantic validator: ValueError with the fix)."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {v!r}; use an IANA name such as UTC, America/New_York "
            "or Europe/Berlin"
        ) from None
    return v


def _aware(value: Any, name: str) -> Any:
    fix = f"write {name} as ISO-8601 with an offset, e.g. 2026-01-01T00:00:00+00:00"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time; {fix}") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset; {fix}")
    return value


class MaintenanceWindow(BaseModel):
    """An AWS-style maintenance window (``CreateMaintenanceWindow``), validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    schedule: str
    schedule_timezone: str = "UTC"
    schedule_offset: Annotated[int, Field(strict=True)] | None = None
    duration_hours: Annotated[int, Field(strict=True)]
    cutoff_hours: Annotated[int, Field(strict=True)] = 0
    start_date: datetime | None = None
    end_date: datetime | None = None
    cutoff_behavior: CutoffBehavior = CutoffBehavior.CONTINUE_TASK
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        try:
            parse_schedule(v)
        except ConfigError as err:
            raise ValueError(err.message) from None
        return v

    @field_validator("schedule_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("schedule_offset")
    @classmethod
    def _offset(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 6:
            raise ValueError(f"{v} is out of range: schedule_offset is 1-6 days (or leave it out)")
        return v

    @field_validator("duration_hours")
    @classmethod
    def _duration(cls, v: int) -> int:
        if not 1 <= v <= 24:
            raise ValueError(f"{v} is out of range: duration_hours is 1-24")
        return v

    @field_validator("cutoff_hours")
    @classmethod
    def _cutoff(cls, v: int) -> int:
        if not 0 <= v <= 23:
            raise ValueError(f"{v} is out of range: cutoff_hours is 0-23")
        return v

    @field_validator("start_date", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        return v if v is None else _aware(v, "start_date")

    @field_validator("end_date", mode="before")
    @classmethod
    def _end(cls, v: Any) -> Any:
        return v if v is None else _aware(v, "end_date")

    @model_validator(mode="after")
    def _consistent(self) -> MaintenanceWindow:
        if self.cutoff_hours >= self.duration_hours:
            raise ValueError(
                f"cutoff_hours ({self.cutoff_hours}) must be less than duration_hours "
                f"({self.duration_hours}); lower the cutoff or lengthen the window"
            )
        if self.schedule_offset is not None and not isinstance(self.parsed, CronSchedule):
            raise ValueError(
                "schedule_offset only applies to cron(...) schedules; remove it or use a cron"
            )
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date; fix one of them")
        return self

    @property
    def parsed(self) -> Schedule:
        return parse_schedule(self.schedule)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.schedule_timezone)

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.duration_hours)

    @property
    def cutoff(self) -> timedelta:
        return timedelta(hours=self.cutoff_hours)


_CONSISTENCY_FIELDS = (
    ("cutoff_hours", "cutoff_hours"),
    ("schedule_offset", "schedule_offset"),
    ("end_date", "end_date"),
)


def load_window(data: Any, source: str, also_allowed: Sequence[str] = ()) -> MaintenanceWindow:
    """Validate one window mapping; errors become a ConfigError naming ``source`` and field.
    ``also_allowed``: keys the caller took out of ``data`` (listed when a key is unknown)."""
    if not isinstance(data, dict):
        raise ConfigError("a maintenance window must be a mapping", source=source)
    try:
        return MaintenanceWindow.model_validate(data)
    except ValidationError as err:
        lines: list[tuple[str | None, str]] = []
        for e in err.errors():
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = unknown_key_message(MaintenanceWindow, e["loc"], also_allowed)
            loc = ".".join(str(p) for p in e["loc"]) or None
            if loc is None:  # model-level: name the field the message is about
                loc = next((f for key, f in _CONSISTENCY_FIELDS if msg.startswith(key)), None)
            lines.append((loc, msg))
        if len(lines) == 1:
            raise ConfigError(lines[0][1], source=source, field=lines[0][0]) from None
        raise ConfigError(
            "; ".join(f"{f or '(window)'}: {m}" for f, m in lines), source=source
        ) from None


# ------------------------------------------------------------------------------ occurrences


def _require_aware(dt: datetime, name: str) -> None:
    if dt.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def resolve_local(naive: datetime, tz: ZoneInfo) -> datetime:
    """Local wall time -> UTC. Gap: the first instant after it. Overlap: the first occurrence."""
    first = naive.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # Nonexistent: fold=0 used the pre-transition offset, so ``utc`` lies after the
    # transition and fold=1 lies before it. Binary-search the transition instant.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = utc
    after_offset = hi.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return hi


def _cron_runs(w: MaintenanceWindow, cron: CronSchedule, after: datetime) -> Iterator[datetime]:
    tz = w.tz
    offset = timedelta(days=w.schedule_offset or 0)
    day = (after.astimezone(tz) - offset).date() - timedelta(days=1)
    last_year = max(cron.years)
    last: datetime | None = None
    while day.year <= last_year:
        if cron.matches(day):
            for h in cron.hours:
                for m in cron.minutes:
                    t = resolve_local(datetime(day.year, day.month, day.day, h, m) + offset, tz)
                    if t <= after or (last is not None and t <= last):
                        continue
                    last = t
                    yield t
        day += timedelta(days=1)


def _anchor(w: MaintenanceWindow, activated_at: datetime | None) -> datetime:
    given = [d for d in (w.start_date, activated_at) if d is not None]
    if not given:
        raise ConfigError(
            f"{w.schedule} counts from an anchor: set start_date, or pass activated_at "
            "(when the window was first enabled)",
            field="start_date",
        )
    return max(given).astimezone(UTC)


def _all_runs(w: MaintenanceWindow, after: datetime,
              activated_at: datetime | None) -> Iterator[datetime]:
    """Every run strictly after ``after``, in order, in UTC, within start/end bounds."""
    if not w.enabled:
        return
    sched = w.parsed
    if isinstance(sched, CronSchedule):
        gen: Iterator[datetime] = _cron_runs(w, sched, after)
    elif isinstance(sched, RateSchedule):
        anchor = _anchor(w, activated_at)

        def _rate() -> Iterator[datetime]:
            k = 0 if after < anchor else (after - anchor) // sched.interval + 1
            while True:
                yield anchor + k * sched.interval
                k += 1

        gen = _rate()
    else:
        t = resolve_local(sched.when, w.tz)
        gen = iter([t] if t > after else [])
    for t in gen:
        if w.start_date is not None and t < w.start_date:
            continue
        if w.end_date is not None and t > w.end_date:
            return
        yield t


def next_runs(window: MaintenanceWindow, after: datetime, count: int,
              activated_at: datetime | None = None) -> list[datetime]:
    """The next ``count`` window starts strictly after ``after``, in UTC.

    ``activated_at`` anchors a rate() schedule (see the module docstring); cron and at() ignore it.
    """
    _require_aware(after, "after")
    return list(islice(_all_runs(window, after.astimezone(UTC), activated_at), count))


class WindowPhase(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    OPEN = "OPEN"
    """New node work may start."""
    CUTOFF = "CUTOFF"
    """Past start + duration - cutoff: no new node work; running work per cutoff_behavior."""
    CLOSED = "CLOSED"


def window_phase(window: MaintenanceWindow, start: datetime,
                 now: datetime) -> tuple[WindowPhase, str]:
    """Where ``now`` falls in the occurrence starting at ``start``, with a one-line reason."""
    _require_aware(start, "start")
    _require_aware(now, "now")
    cutoff_at = start + window.duration - window.cutoff
    end = start + window.duration
    name = window.name
    if now < start:
        return WindowPhase.NOT_STARTED, f"window {name} opens at {start.astimezone(UTC):%FT%TZ}"
    if now < cutoff_at:
        return WindowPhase.OPEN, (
            f"window {name} is open until {cutoff_at.astimezone(UTC):%FT%TZ}"
            + (f" (cutoff {window.cutoff_hours}h before its end)" if window.cutoff_hours else "")
        )
    if now < end:
        return WindowPhase.CUTOFF, (
            f"window {name} passed its cutoff at {cutoff_at.astimezone(UTC):%FT%TZ}: no new "
            f"node work starts; running work: {window.cutoff_behavior.value}"
        )
    return WindowPhase.CLOSED, f"window {name} closed at {end.astimezone(UTC):%FT%TZ}"


def current_window_start(window: MaintenanceWindow, now: datetime,
                         activated_at: datetime | None = None) -> datetime | None:
    """The start of the latest occurrence with ``start <= now < start + duration``, or None.

    For "a run that starts outside its window does nothing and says so, unless forced".
    """
    _require_aware(now, "now")
    now = now.astimezone(UTC)
    found: datetime | None = None
    # Occurrences after now - duration - 1s; the first one past ``now`` ends the search.
    for t in _all_runs(window, now - window.duration, activated_at):
        if t > now:
            break
        found = t
    return found
