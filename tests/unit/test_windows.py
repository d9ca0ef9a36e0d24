"""Maintenance windows: AWS cron/rate/at schedules, DST, bounds, phases, validation.

Every expected instant below was worked out by hand from a calendar (2026-01-01 is a Thursday;
US DST 2026: 8 Mar / 1 Nov; EU DST 2026: 29 Mar / 25 Oct).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from patchfleet.domain.windows import (
    AtSchedule,
    CronSchedule,
    CutoffBehavior,
    MaintenanceWindow,
    RateSchedule,
    WindowPhase,
    current_window_start,
    load_window,
    next_runs,
    parse_schedule,
    window_phase,
)
from patchfleet.errors import ConfigError


def u(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


def win(schedule: str, **kw: Any) -> MaintenanceWindow:
    kw.setdefault("duration_hours", 4)
    return MaintenanceWindow(name="test-window", schedule=schedule, **kw)


# ------------------------------------------------------------------------------- cron tables


def test_patch_tuesday_plus_three_days() -> None:
    w = win("cron(0 2 ? * TUE#2 *)", schedule_offset=3)
    assert next_runs(w, u(2026, 1, 1), 5) == [
        u(2026, 1, 16, 2),  # 2nd Tue 13 Jan + 3
        u(2026, 2, 13, 2),  # 2nd Tue 10 Feb + 3
        u(2026, 3, 13, 2),  # 2nd Tue 10 Mar + 3
        u(2026, 4, 17, 2),  # 2nd Tue 14 Apr + 3
        u(2026, 5, 15, 2),  # 2nd Tue 12 May + 3
    ]


def test_patch_tuesday_without_offset_and_numeric_dow() -> None:
    assert next_runs(win("cron(0 2 ? * 3#2 *)"), u(2026, 1, 1), 3) == [
        u(2026, 1, 13, 2), u(2026, 2, 10, 2), u(2026, 3, 10, 2),
    ]


def test_offset_crosses_month_end() -> None:
    # last Tuesday-ish: 4th Tue 27 Jan 2026 + 6 days = 2 Feb
    assert next_runs(win("cron(0 2 ? * TUE#4 *)", schedule_offset=6), u(2026, 1, 1), 1) == [
        u(2026, 2, 2, 2)
    ]


def test_seven_field_form_with_seconds() -> None:
    w = win("cron(0 30 23 ? * TUE#3 *)", schedule_timezone="America/New_York")
    assert next_runs(w, u(2026, 10, 31), 2) == [u(2026, 11, 18, 4, 30), u(2026, 12, 16, 4, 30)]


def test_last_day_of_month() -> None:
    assert next_runs(win("cron(0 22 L * ? *)"), u(2027, 12, 1), 4) == [
        u(2027, 12, 31, 22), u(2028, 1, 31, 22), u(2028, 2, 29, 22), u(2028, 3, 31, 22),
    ]


def test_last_friday_and_last_weekday() -> None:
    assert next_runs(win("cron(0 1 ? * 6L *)"), u(2026, 1, 1), 2) == [
        u(2026, 1, 30, 1), u(2026, 2, 27, 1),
    ]
    # LW: last weekday; 31 Jan 2026 is a Saturday -> Fri 30; 31 May 2026 is a Sunday -> Fri 29
    assert next_runs(win("cron(0 1 LW 1,5 ? 2026)"), u(2026, 1, 1), 3) == [
        u(2026, 1, 30, 1), u(2026, 5, 29, 1),
    ]


def test_nearest_weekday() -> None:
    # 15W: 15 Feb 2026 is a Sunday -> Mon 16; 1W: 1 Mar 2026 is a Sunday -> Mon 2
    assert next_runs(win("cron(0 0 15W 2 ? 2026)"), u(2026, 1, 1), 1) == [u(2026, 2, 16)]
    assert next_runs(win("cron(0 0 1W 3 ? 2026)"), u(2026, 1, 1), 1) == [u(2026, 3, 2)]


def test_lists_ranges_steps_and_names() -> None:
    w = win("cron(0/20 8-9 ? JAN MON-FRI 2026)")
    assert next_runs(w, u(2026, 1, 1, 9, 30), 4) == [
        u(2026, 1, 1, 9, 40), u(2026, 1, 2, 8), u(2026, 1, 2, 8, 20), u(2026, 1, 2, 8, 40),
    ]
    assert next_runs(win("cron(15,45 */12 1,15 * ? *)"), u(2026, 1, 1), 3) == [
        u(2026, 1, 1, 0, 15), u(2026, 1, 1, 0, 45), u(2026, 1, 1, 12, 15),
    ]
    # weekend via names and via numbers (1 = SUN, 7 = SAT)
    weekend = [u(2026, 1, 3, 3), u(2026, 1, 4, 3)]
    assert next_runs(win("cron(0 3 ? * SAT,SUN *)"), u(2026, 1, 1), 2) == weekend
    assert next_runs(win("cron(0 3 ? * 1,7 *)"), u(2026, 1, 1), 2) == weekend


def test_strictly_after_and_year_field_ends() -> None:
    w = win("cron(0 2 1 1 ? 2026-2027)")
    assert next_runs(w, u(2026, 1, 1, 2), 5) == [u(2027, 1, 1, 2)]
    assert next_runs(w, u(2026, 1, 1, 1, 59), 1) == [u(2026, 1, 1, 2)]


# ---------------------------------------------------------------------------------------- DST


def test_new_york_spring_gap_fires_at_first_valid_instant() -> None:
    w = win("cron(30 2 * * ? *)", schedule_timezone="America/New_York")
    assert next_runs(w, u(2026, 3, 7), 3) == [
        u(2026, 3, 7, 7, 30),  # 02:30 EST
        u(2026, 3, 8, 7, 0),   # 02:30 doesn't exist -> 03:00 EDT
        u(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_spring_gap_ticks_collapse_to_one_run() -> None:
    w = win("cron(0,30 2-3 8 3 ? 2026)", schedule_timezone="America/New_York")
    # 02:00 and 02:30 don't exist -> one run at 03:00 EDT; then 03:30 EDT
    assert next_runs(w, u(2026, 3, 1), 5) == [u(2026, 3, 8, 7), u(2026, 3, 8, 7, 30)]


def test_new_york_autumn_overlap_fires_once() -> None:
    w = win("cron(30 1 * * ? *)", schedule_timezone="America/New_York")
    assert next_runs(w, u(2026, 10, 31), 3) == [
        u(2026, 10, 31, 5, 30),  # 01:30 EDT
        u(2026, 11, 1, 5, 30),   # 01:30 happens twice; first (EDT) only
        u(2026, 11, 2, 6, 30),   # 01:30 EST
    ]


def test_berlin_spring_and_autumn() -> None:
    w = win("cron(30 2 * * ? *)", schedule_timezone="Europe/Berlin")
    assert next_runs(w, u(2026, 3, 28), 3) == [
        u(2026, 3, 28, 1, 30),  # 02:30 CET
        u(2026, 3, 29, 1, 0),   # gap -> 03:00 CEST
        u(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    assert next_runs(w, u(2026, 10, 24), 3) == [
        u(2026, 10, 24, 0, 30),  # CEST
        u(2026, 10, 25, 0, 30),  # ambiguous: first occurrence (CEST) only
        u(2026, 10, 26, 1, 30),  # CET
    ]


def test_offset_applies_to_local_date_across_dst() -> None:
    # 1st Thu of March 2026 is the 5th; +3 days = Sun 8 Mar, 02:30 is in the NY gap
    w = win("cron(30 2 ? * THU#1 *)", schedule_timezone="America/New_York", schedule_offset=3)
    assert next_runs(w, u(2026, 3, 1), 1) == [u(2026, 3, 8, 7)]


# ------------------------------------------------------------------------------ rate and at()


def test_rate_counts_from_start_date() -> None:
    w = win("rate(7 days)", start_date="2026-01-05T10:00:00+01:00")
    assert next_runs(w, u(2026, 1, 1), 3) == [
        u(2026, 1, 5, 9), u(2026, 1, 12, 9), u(2026, 1, 19, 9),
    ]
    assert next_runs(w, u(2026, 1, 12, 9), 1) == [u(2026, 1, 19, 9)]


def test_rate_past_start_date_counts_from_activation() -> None:
    w = win("rate(6 hours)", start_date="2025-01-01T00:00:00Z")
    act = u(2026, 2, 1, 13, 15)
    assert next_runs(w, u(2026, 2, 1, 14), 2, activated_at=act) == [
        u(2026, 2, 1, 19, 15), u(2026, 2, 2, 1, 15),
    ]


def test_rate_is_elapsed_time_across_dst() -> None:
    w = win("rate(1 day)", schedule_timezone="America/New_York",
            start_date="2026-03-07T02:30:00-05:00")
    assert next_runs(w, u(2026, 3, 1), 3) == [
        u(2026, 3, 7, 7, 30), u(2026, 3, 8, 7, 30), u(2026, 3, 9, 7, 30),
    ]


def test_rate_without_anchor_is_an_error() -> None:
    with pytest.raises(ConfigError, match="start_date"):
        next_runs(win("rate(30 minutes)"), u(2026, 1, 1), 1)


def test_at_fires_once_in_its_timezone() -> None:
    w = win("at(2026-07-07T15:55:00)", schedule_timezone="America/Los_Angeles")
    assert next_runs(w, u(2026, 1, 1), 5) == [u(2026, 7, 7, 22, 55)]
    assert next_runs(w, u(2026, 7, 7, 22, 55), 5) == []


# ------------------------------------------------------------------------------ bounds, enabled


def test_start_and_end_bound_without_shifting() -> None:
    w = win("cron(0 2 ? * TUE#2 *)", start_date="2026-02-10T02:00:00Z",
            end_date="2026-04-14T02:00:00+00:00")
    # both bounds inclusive; the schedule stays on Patch Tuesday
    assert next_runs(w, u(2026, 1, 1), 10) == [
        u(2026, 2, 10, 2), u(2026, 3, 10, 2), u(2026, 4, 14, 2),
    ]
    w2 = win("cron(0 2 ? * TUE#2 *)", start_date="2026-02-10T02:00:01Z")
    assert next_runs(w2, u(2026, 1, 1), 1) == [u(2026, 3, 10, 2)]


def test_disabled_window_has_no_runs() -> None:
    w = win("cron(0 2 * * ? *)", enabled=False)
    assert next_runs(w, u(2026, 1, 1), 3) == []
    assert current_window_start(w, u(2026, 1, 1, 3)) is None


# ------------------------------------------------------------------------------------ phases


def test_phase_boundaries_exact() -> None:
    w = win("cron(0 2 * * ? *)", duration_hours=4, cutoff_hours=1,
            cutoff_behavior="CANCEL_TASK")
    s = u(2026, 1, 1, 2)
    sec = timedelta(seconds=1)
    table = [
        (s - sec, WindowPhase.NOT_STARTED),
        (s, WindowPhase.OPEN),
        (u(2026, 1, 1, 5) - sec, WindowPhase.OPEN),
        (u(2026, 1, 1, 5), WindowPhase.CUTOFF),
        (u(2026, 1, 1, 6) - sec, WindowPhase.CUTOFF),
        (u(2026, 1, 1, 6), WindowPhase.CLOSED),
    ]
    for now, want in table:
        assert window_phase(w, s, now)[0] is want, now
    assert "CANCEL_TASK" in window_phase(w, s, u(2026, 1, 1, 5))[1]
    assert "2026-01-01T05:00:00Z" in window_phase(w, s, s)[1]


def test_zero_cutoff_has_no_cutoff_phase() -> None:
    w = win("cron(0 2 * * ? *)", duration_hours=1)
    s = u(2026, 1, 1, 2)
    assert window_phase(w, s, u(2026, 1, 1, 2, 59, 59))[0] is WindowPhase.OPEN
    assert window_phase(w, s, u(2026, 1, 1, 3))[0] is WindowPhase.CLOSED


def test_current_window_start() -> None:
    w = win("cron(0 2 * * ? *)", duration_hours=4, cutoff_hours=1)
    assert current_window_start(w, u(2026, 1, 1, 1, 59)) is None
    assert current_window_start(w, u(2026, 1, 1, 2)) == u(2026, 1, 1, 2)
    assert current_window_start(w, u(2026, 1, 1, 5, 30)) == u(2026, 1, 1, 2)  # in cutoff
    assert current_window_start(w, u(2026, 1, 1, 6)) is None


def test_current_window_start_overlapping_picks_latest() -> None:
    w = win("rate(1 hour)", duration_hours=3, start_date="2026-01-01T00:00:00Z")
    assert current_window_start(w, u(2026, 1, 1, 5, 30)) == u(2026, 1, 1, 5)


def test_naive_datetimes_rejected() -> None:
    w = win("cron(0 2 * * ? *)")
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs(w, datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        window_phase(w, u(2026, 1, 1), datetime(2026, 1, 1))


# -------------------------------------------------------------------------- parse_schedule


def test_parse_kinds() -> None:
    assert isinstance(parse_schedule("cron(0 2 ? * TUE#2 *)", "x"), CronSchedule)
    r = parse_schedule("rate(90 minutes)", "x")
    assert isinstance(r, RateSchedule) and r.interval == timedelta(minutes=90)
    a = parse_schedule("at(2026-07-07T15:55:00)", "x")
    assert isinstance(a, AtSchedule) and a.when == datetime(2026, 7, 7, 15, 55)


@pytest.mark.parametrize(
    ("expr", "fix"),
    [
        ("weekly", "must be cron"),
        ("cron(0 2 * * *)", "needs 6"),
        ("cron(5 0 2 * * ? *)", "seconds field must be 0"),
        ("cron(0 2 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * ? *)", "exactly one of"),
        ("cron(60 2 * * ? *)", "minutes value 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours value 24"),
        ("cron(0 2 32 * ? *)", "day-of-month value 32"),
        ("cron(0 2 ? 13 MON *)", "month value 13"),
        ("cron(0 2 ? FOO MON *)", "not a number 1-12 or JAN-DEC"),
        ("cron(0 2 ? * 8 *)", "day-of-week value 8"),
        ("cron(0 2 ? * TUE#6 *)", "after # must be 1-5"),
        ("cron(0 2 ? * FRI-MON *)", "runs backwards"),
        ("cron(0/0 2 * * ? *)", "step '0' must be a positive number"),
        ("cron(0 2 * * ? 1969)", "year value 1969"),
        ("cron(0,,5 2 * * ? *)", "empty list item"),
        ("rate(1 minutes)", "write rate(1 minute)"),
        ("rate(5 hour)", "write rate(5 hours)"),
        ("rate(0 days)", "at least 1"),
        ("rate(2 weeks)", "unknown unit 'weeks'"),
        ("rate(days)", "rate(N unit)"),
        ("at(2026-07-07 15:55)", "at(YYYY-MM-DDTHH:MM:SS)"),
        ("at(2026-02-30T00:00:00)", "not a real date"),
    ],
)
def test_parse_errors_name_field_and_fix(expr: str, fix: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_schedule(expr, "windows.0.schedule")
    assert ei.value.field == "windows.0.schedule"
    assert fix in ei.value.message


# ----------------------------------------------------------------------------- model errors


GOOD: dict[str, Any] = {
    "name": "patch-tuesday.prod_1",
    "schedule": "cron(0 2 ? * TUE#2 *)",
    "duration_hours": 4,
}


def test_model_defaults() -> None:
    w = load_window(dict(GOOD), "windows.yaml")
    assert w.schedule_timezone == "UTC" and w.cutoff_hours == 0 and w.enabled
    assert w.cutoff_behavior is CutoffBehavior.CONTINUE_TASK and w.schedule_offset is None


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        ({"name": "ab"}, "name", "3-128 letters"),
        ({"name": "bad name!"}, "name", "3-128 letters"),
        ({"schedule": "cron(0 2 * * MON *)"}, "schedule", "exactly one of"),
        ({"schedule_timezone": "Mars/Olympus"}, "schedule_timezone", "IANA name"),
        ({"schedule_offset": 7}, "schedule_offset", "1-6 days"),
        ({"schedule_offset": 0}, "schedule_offset", "1-6 days"),
        ({"schedule": "rate(7 days)", "schedule_offset": 2}, "schedule_offset", "cron"),
        ({"schedule": "at(2026-07-07T15:55:00)", "schedule_offset": 1}, "schedule_offset",
         "cron"),
        ({"duration_hours": 0}, "duration_hours", "1-24"),
        ({"duration_hours": 25}, "duration_hours", "1-24"),
        ({"cutoff_hours": 24}, "cutoff_hours", "0-23"),
        ({"cutoff_hours": 4}, "cutoff_hours", "must be less than duration_hours"),
        ({"cutoff_hours": 5}, "cutoff_hours", "lower the cutoff"),
        ({"start_date": "2026-01-01T00:00:00"}, "start_date", "no UTC offset"),
        ({"end_date": "next week"}, "end_date", "ISO-8601 with an offset"),
        ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
         "end_date", "after start_date"),
        ({"cutoff_behavior": "STOP"}, "cutoff_behavior", "CANCEL_TASK"),
        ({"color": "red"}, "color", "unknown key 'color'"),
    ],
)
def test_model_errors_name_field_and_fix(change: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_window({**GOOD, **change}, "windows.yaml")
    err = ei.value
    assert err.source == "windows.yaml"
    assert err.field == field, str(err)
    assert fix in err.message, str(err)


def test_cutoff_just_below_duration_is_valid() -> None:
    w = load_window({**GOOD, "duration_hours": 24, "cutoff_hours": 23}, "w")
    s = u(2026, 1, 13, 2)
    assert window_phase(w, s, s + timedelta(hours=1))[0] is WindowPhase.CUTOFF
    assert window_phase(w, s, s + timedelta(minutes=59))[0] is WindowPhase.OPEN


def test_load_window_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_window(["x"], "w")


def test_never_matching_cron_ends() -> None:
    # 30 February never exists; the search stops at the year limit (2199)
    assert next_runs(win("cron(0 0 30 2 ? *)"), u(2026, 1, 1), 1) == []


def test_at_in_spring_gap_fires_after_it() -> None:
    w = win("at(2026-03-08T02:15:00)", schedule_timezone="America/New_York")
    assert next_runs(w, u(2026, 1, 1), 2) == [u(2026, 3, 8, 7)]


def test_current_window_start_with_offset_and_timezone() -> None:
    # Patch Tuesday Feb 2026 is the 10th; +3 days -> Fri 13 Feb 02:00 Berlin (CET) = 01:00 UTC
    w = win("cron(0 2 ? * TUE#2 *)", schedule_offset=3, schedule_timezone="Europe/Berlin",
            duration_hours=6, cutoff_hours=2)
    assert current_window_start(w, u(2026, 2, 13, 0, 59)) is None
    s = current_window_start(w, u(2026, 2, 13, 5, 30))
    assert s is not None and s == u(2026, 2, 13, 1)
    assert window_phase(w, s, u(2026, 2, 13, 5, 30))[0] is WindowPhase.CUTOFF
    assert current_window_start(w, u(2026, 2, 13, 7)) is None


@pytest.mark.parametrize("expr", ["rate(99999999999999999999 minutes)", "rate(3651 days)",
                                  "rate(87625 hours)"])
def test_a_rate_longer_than_ten_years_is_refused_not_overflowed(expr: str) -> None:
    with pytest.raises(ConfigError, match="longer than 3650 days"):
        parse_schedule(expr, "schedule")
    assert parse_schedule("rate(3650 days)", "schedule")
