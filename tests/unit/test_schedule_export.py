"""AWS window/policy schedules as Prefect schedules, checked against Prefect's own evaluator.

Prefect's server computes a deployment's run times with ``prefect.server.schemas.schedules``;
these tests feed it the translated schedule and compare its next three years of run times with
patchfleet's window arithmetic (:func:`patchfleet.domain.windows.next_runs`).
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from patchfleet.domain.policies import parse_deployments
from patchfleet.domain.schedule_export import DeploySchedule, policy_schedule, window_schedule
from patchfleet.domain.windows import MaintenanceWindow, next_runs
from patchfleet.errors import ConfigError
from patchfleet.ops.deploy_plan import build_specs

START = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=1100)  # through 2028, a leap year


def _prefect_dates(s: DeploySchedule, n: int) -> list[datetime]:
    from prefect.server.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    sched: Any
    if s.cron is not None:
        sched = CronSchedule(cron=s.cron, timezone=s.timezone)
    elif s.interval is not None:
        sched = IntervalSchedule(interval=s.interval, anchor_date=s.anchor, timezone=s.timezone)
    else:
        sched = RRuleSchedule(rrule=s.rrule, timezone=s.timezone)
    got = sched.get_dates(n=n, start=START, end=START + HORIZON)
    if inspect.isawaitable(got):
        got = asyncio.run(got)
    return [datetime.fromisoformat(d.isoformat()).astimezone(UTC) for d in got]


def _window(schedule: str, tz: str = "UTC", **kw: Any) -> MaintenanceWindow:
    return MaintenanceWindow(name="w-test", schedule=schedule, schedule_timezone=tz,
                             duration_hours=2, **kw)


EXACT = [
    ("cron(0 2 ? * TUE#2 *)", "UTC", "0 2 * * 2#2"),
    ("cron(30 23 ? * MON-FRI *)", "America/New_York", "30 23 * * 1,2,3,4,5"),
    ("cron(0 2 L * ? *)", "Europe/Berlin", "0 2 L * *"),
    ("cron(30 2 * * ? *)", "America/New_York", "30 2 * * *"),     # DST gap every March
    ("cron(30 1 * * ? *)", "America/New_York", "30 1 * * *"),     # DST fold every November
    ("cron(0 0/6 1,15 * ? *)", "Asia/Tokyo", "0 0,6,12,18 1,15 * *"),
    ("cron(15 3 ? JAN,JUL SUN *)", "Australia/Sydney", "15 3 * 1,7 0"),
    ("cron(0 4 ? * SAT#5 *)", "UTC", "0 4 * * 6#5"),               # months without a 5th Sat
    ("cron(45 9 29 FEB ? *)", "Europe/London", "45 9 29 2 *"),     # leap days only
    ("cron(0 12 ? * 1 *)", "Pacific/Auckland", "0 12 * * 0"),
]


@pytest.mark.parametrize(("expr", "tz", "cron"), EXACT)
def test_exact_crons_fire_when_patchfleet_says(expr: str, tz: str, cron: str) -> None:
    w = _window(expr, tz)
    ds = window_schedule(w)
    assert (ds.cron, ds.timezone, ds.exact) == (cron, tz, True)
    # Prefect returns at most 1000 dates per call: compare the first 900 (daily crons)
    ours = [t for t in next_runs(w, START - timedelta(seconds=1), 900)
            if t < START + HORIZON]
    assert ours, expr
    theirs = _prefect_dates(ds, 1000)[: len(ours)]
    assert len(theirs) == len(ours)
    for a, b in zip(ours, theirs, strict=True):
        if a == b:
            continue
        # Only in a spring-forward gap: Prefect shifts the nominal time by the gap (02:30 ->
        # 03:30), patchfleet takes the first instant after it (03:00). Same occurrence for the
        # window flow, which measures the window from patchfleet's start.
        local = a.astimezone(w.tz)
        day_before = (local - timedelta(days=1)).utcoffset()
        assert local.utcoffset() != day_before, (expr, a, b)
        assert timedelta(0) < b - a < timedelta(hours=1), (expr, a, b)


@pytest.mark.parametrize(("expr", "kw"), [
    ("cron(0 2 ? * TUE#2 *)", {"schedule_offset": 3}),
    ("cron(0 3 LW * ? *)", {}),
    ("cron(0 3 15W * ? *)", {}),
    ("cron(30 1 ? * 6L *)", {}),
    ("cron(0 2 ? * MON#1,MON#3 *)", {}),
    ("cron(0 2 1 * ? 2026-2027)", {}),
])
def test_inexact_crons_fire_daily_on_a_superset(expr: str, kw: dict[str, Any]) -> None:
    w = _window(expr, "America/New_York", **kw)
    ds = window_schedule(w)
    assert not ds.exact and ds.cron is not None and ds.cron.endswith(" * * *")
    assert "skips days without an occurrence" in ds.note
    theirs = _prefect_dates(ds, 1000)  # daily: the first 1000 days
    ours = [t for t in next_runs(w, START - timedelta(seconds=1), 50) if t <= theirs[-1]]
    assert ours and set(ours) <= set(theirs)


def test_rate_is_an_interval_from_start_date() -> None:
    w = _window("rate(5 hours)", start_date=datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    ds = window_schedule(w)
    assert ds.interval == timedelta(hours=5) and ds.anchor == w.start_date
    ours = next_runs(w, START - timedelta(seconds=1), 40)
    assert _prefect_dates(ds, 40) == ours


@pytest.mark.parametrize(("when", "tz", "utc"), [
    ("2026-06-01T12:00:00", "Europe/Berlin", datetime(2026, 6, 1, 10, 0, tzinfo=UTC)),
    # 02:30 doesn't exist in New York that day: both fire at 03:00 EDT
    ("2026-03-08T02:30:00", "America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
])
def test_at_fires_once_at_the_instant_patchfleet_resolves(when: str, tz: str,
                                                           utc: datetime) -> None:
    w = _window(f"at({when})", tz)
    ds = window_schedule(w)
    assert next_runs(w, START, 5) == [utc]
    assert _prefect_dates(ds, 5) == [utc]


def test_policy_schedules_must_be_exact() -> None:
    assert policy_schedule("cron(0 2 ? * SUN *)", "UTC", "f").cron == "0 2 * * 0"
    with pytest.raises(ConfigError, match="maintenance window") as exc:
        policy_schedule("cron(0 2 LW * ? *)", "UTC", "policies[0].scan_schedule")
    assert exc.value.field == "policies[0].scan_schedule"
    with pytest.raises(ConfigError, match="is a cron"):
        policy_schedule("rate(1 day)", "UTC", "f")


def test_build_specs_names_tags_parameters_and_next_interval() -> None:
    dep = parse_deployments({
        "policies": [
            {"name": "pol-a", "operation": "ScanAndInstall"},
            {"name": "pol-b", "scan_next_interval": True, "install_next_interval": False},
        ],
        "windows": [{"name": "win-a", "schedule": "cron(0 2 ? * TUE#2 *)", "duration_hours": 3,
                     "enabled": False, "tasks": [{"name": "scan"}]}],
    }, "p.yaml")
    specs = {s.full_name: s for s in build_specs(dep, "deployments/p.yaml", START)}
    assert list(specs) == ["patch-policy/pol-a-scan", "patch-policy/pol-a-install",
                           "patch-policy/pol-b-scan", "maintenance-window/win-a"]
    a_scan, a_inst = specs["patch-policy/pol-a-scan"], specs["patch-policy/pol-a-install"]
    assert a_scan.parameters == {"policy": "pol-a", "operation": "Scan",
                                 "file": "deployments/p.yaml"}
    assert a_inst.parameters["operation"] == "Install"
    assert (a_scan.schedule.cron, a_inst.schedule.cron) == ("0 1 * * *", "0 2 * * 0")
    # AWS defaults: scan at once on first deploy, the install waits for its first tick
    assert (a_scan.run_now, a_inst.run_now) == (True, False)
    # pol-b only scans, so install_next_interval has nothing to start
    assert specs["patch-policy/pol-b-scan"].run_now is False
    assert a_scan.upcoming[0] == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    win = specs["maintenance-window/win-a"]
    assert win.tags == ("patchfleet", "patchfleet-generated", "window/win-a")
    assert win.active is False and win.upcoming == ()
    assert win.parameters == {"window": "win-a", "file": "deployments/p.yaml"}
