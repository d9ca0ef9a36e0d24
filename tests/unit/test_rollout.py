"""Rate control (spec §6, §7): parsing, the rounding rule on hand-checked tables, patch-now
tiers, the Rollout state machine's stop-after-threshold semantics, and the deadline of a
CANCEL_TASK window (TIMED_OUT instead of NOT_ATTEMPTED)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from patchfleet.domain.rollout import (
    TIMED_OUT_PREFIX,
    NodeRunState,
    Rate,
    Rollout,
    cutoff_reason,
    deadline_passed,
    is_timed_out,
    parse_rate,
    patch_now_defaults,
    seconds_left,
    simulate,
)
from patchfleet.errors import ConfigError

S, F, NA = NodeRunState.SUCCEEDED, NodeRunState.FAILED, NodeRunState.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        ("10", "max_errors", Rate(10)),
        (10, "max_errors", Rate(10)),
        ("0", "max_errors", Rate(0)),
        (0, "max_errors", Rate(0)),
        ("10%", "max_errors", Rate(10, percent=True)),
        ("0%", "max_errors", Rate(0, percent=True)),
        ("100%", "max_errors", Rate(100, percent=True)),
        (" 7 % ", "max_errors", Rate(7, percent=True)),
        ("1", "max_concurrency", Rate(1, minimum=1)),
        ("1%", "max_concurrency", Rate(1, percent=True, minimum=1)),
        ("100%", "max_concurrency", Rate(100, percent=True, minimum=1)),
    ],
)
def test_parse_rate_accepts(value: str | int, field: str, expected: Rate) -> None:
    assert parse_rate(value, field) == expected


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ("0", "max_concurrency", "at least 1"),
        (0, "max_concurrency", "at least 1"),
        ("0%", "max_concurrency", "at least 1%"),
        ("101%", "max_errors", "above 100%"),
        ("101%", "max_concurrency", "above 100%"),
        ("-1", "max_errors", "not valid"),
        (-1, "max_errors", "too low"),
        ("ten", "max_errors", "not valid"),
        ("10%%", "max_errors", "not valid"),
        ("1.5", "max_concurrency", "not valid"),
        ("", "max_errors", "not valid"),
        (True, "max_errors", "expected"),
        (1.5, "max_errors", "expected"),
    ],
)
def test_parse_rate_rejects_naming_field_and_fix(value: object, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rate(value, field)  # type: ignore[arg-type]
    assert err.value.field == field
    assert fragment in str(err.value)
    assert "%" in str(err.value) or "at least" in str(err.value)


# total, percent -> (concurrency, errors); floor(total*p/100), concurrency never below 1.
@pytest.mark.parametrize(
    ("total", "percent", "concurrency", "errors"),
    [
        (0, 10, 1, 0),
        (1, 10, 1, 0),
        (1, 100, 1, 1),
        (5, 10, 1, 0),
        (9, 10, 1, 0),
        (10, 10, 1, 1),
        (19, 10, 1, 1),
        (20, 10, 2, 2),
        (50, 10, 5, 5),  # AWS: 10% of 50 -> stop at the sixth error
        (10, 40, 4, 4),  # AWS Config: 40% of 10 -> stop at the fifth error
        (25, 5, 1, 1),
        (100, 5, 5, 5),
        (101, 8, 8, 8),
        (1000, 8, 80, 80),
        (1001, 10, 100, 100),
        (3, 33, 1, 0),
        (3, 34, 1, 1),
        (7, 100, 7, 7),
        (7, 1, 1, 0),
    ],
)
def test_percentages_round_down(total: int, percent: int, concurrency: int, errors: int) -> None:
    assert parse_rate(f"{percent}%", "max_concurrency").resolve(total) == concurrency
    assert parse_rate(f"{percent}%", "max_errors").resolve(total) == errors


def test_absolute_numbers_ignore_total() -> None:
    assert parse_rate("10", "max_concurrency").resolve(3) == 10
    assert parse_rate("0", "max_errors").resolve(1000) == 0
    assert str(parse_rate("10%", "max_errors")) == "10%"


@pytest.mark.parametrize(
    ("total", "concurrency", "errors"),
    [
        (1, 1, 1),
        (24, 1, 1),
        (25, 1, 5),  # 5% of 25 = 1.25 -> 1
        (40, 2, 5),
        (100, 5, 5),
        (101, 8, 10),
        (1000, 80, 10),
        (1001, 100, 10),
        (5000, 500, 10),
    ],
)
def test_patch_now_install_tiers(total: int, concurrency: int, errors: int) -> None:
    assert patch_now_defaults(total, "Install").resolve(total) == (concurrency, errors)
    assert patch_now_defaults(total, "INSTALL").resolve(total) == (concurrency, errors)


def test_patch_now_scan_only() -> None:
    assert patch_now_defaults(5, "Scan").resolve(5) == (1000, 1000)
    assert patch_now_defaults(50_000, "SCAN").resolve(50_000) == (1000, 1000)
    with pytest.raises(ConfigError, match="Scan or Install"):
        patch_now_defaults(5, "Reboot")


def test_max_errors_3_stops_after_fourth_error() -> None:
    nodes = [f"n{i}" for i in range(10)]
    r = simulate(nodes, 1, 3, failing={"n0", "n1", "n2", "n3", "n4"})
    assert [o.state for o in r.outcomes()] == [F, F, F, F] + [NA] * 6
    assert r.stopped and r.threshold_crossed and r.errors == 4
    assert r.not_attempted() == nodes[4:]


def test_max_errors_0_stops_after_first_error() -> None:
    r = simulate(["a", "b", "c"], 1, 0, failing={"b"})
    assert [o.state for o in r.outcomes()] == [S, F, NA]


def test_errors_at_threshold_do_not_stop() -> None:
    r = simulate(["a", "b", "c", "d"], 1, 2, failing={"a", "b"})
    assert [o.state for o in r.outcomes()] == [F, F, S, S]
    assert not r.stopped and r.done


def test_running_nodes_finish_and_may_add_errors() -> None:
    r = Rollout(["a", "b", "c", "d", "e"], max_concurrency=3, max_errors=0)
    assert r.start_next() == ["a", "b", "c"]
    assert r.next_batch() == []
    r.finish("a", ok=False)
    assert r.stopped and not r.done
    assert r.next_batch() == []
    r.finish("b", ok=False)  # already running: still reported, more errors than the threshold
    r.finish("c", ok=True)
    assert r.done and r.errors == 2
    assert [o.state for o in r.outcomes()] == [F, F, S, NA, NA]


def test_concurrency_window_refills_in_order() -> None:
    r = Rollout(["a", "b", "c", "d"], 2, 10)
    assert r.next_batch() == ["a", "b"]
    assert r.next_batch() == ["a", "b"]  # next_batch changes nothing
    r.start("a")
    assert r.next_batch() == ["b"]
    r.start("b")
    r.finish("b", ok=True)
    assert r.next_batch() == ["c"]
    assert r.state("d") is NodeRunState.PENDING


def test_rates_resolve_against_node_count() -> None:
    nodes = [f"n{i}" for i in range(50)]
    r = Rollout(nodes, parse_rate("10%", "max_concurrency"), parse_rate("10%", "max_errors"))
    assert (r.max_concurrency, r.max_errors) == (5, 5)
    tiny = Rollout(["x"], parse_rate("10%", "max_concurrency"), parse_rate("10%", "max_errors"))
    assert (tiny.max_concurrency, tiny.max_errors) == (1, 0)


def test_empty_rollout_is_done() -> None:
    r = Rollout([], 1, 0)
    assert r.done and r.outcomes() == () and r.next_batch() == []


def test_halt_stops_new_starts_only() -> None:
    r = Rollout(["a", "b", "c"], 1, 5)
    r.start_next()
    r.halt("cutoff")
    assert r.stopped and not r.threshold_crossed and r.next_batch() == []
    r.finish("a", ok=True)
    assert r.done and [o.state for o in r.outcomes()] == [S, NA, NA]


def test_misuse_raises() -> None:
    with pytest.raises(ConfigError, match="twice"):
        Rollout(["a", "a"], 1, 0)
    with pytest.raises(ConfigError):
        Rollout(["a"], 0, 0)
    r = Rollout(["a", "b"], 1, 0)
    with pytest.raises(ValueError, match="not running"):
        r.finish("a", ok=True)
    r.start("a")
    with pytest.raises(ValueError, match="already running"):
        r.start("b")
    with pytest.raises(ValueError, match="not pending"):
        r.start("a")
    r.finish("a", ok=False)
    with pytest.raises(ValueError, match="stopped"):
        r.start("b")


TO = NodeRunState.TIMED_OUT


def test_halt_at_deadline_reports_unstarted_nodes_timed_out() -> None:
    r = Rollout(["a", "b", "c", "d"], 2, 0)
    r.start_next()
    r.halt("cutoff", timed_out=True)
    assert r.stopped and not r.threshold_crossed and r.next_batch() == []
    r.finish("a", ok=True)
    assert r.next_batch() == [] and not r.done
    r.finish("b", ok=False)  # errors after the deadline don't turn TIMED_OUT into NOT_ATTEMPTED
    assert r.done and r.threshold_crossed
    assert [o.state for o in r.outcomes()] == [S, F, TO, TO]
    assert r.timed_out() == ["c", "d"] and r.not_attempted() == []


def test_error_threshold_before_deadline_keeps_not_attempted() -> None:
    r = Rollout(["a", "b", "c"], 1, 0)
    r.start_next()
    r.finish("a", ok=False)
    r.halt("cutoff", timed_out=True)  # too late: the threshold stopped the rollout first
    assert [o.state for o in r.outcomes()] == [F, NA, NA]
    assert r.halted_reason == "cutoff" and r.timed_out() == []


def test_halt_with_nothing_started_times_out_everything() -> None:
    r = Rollout(["a", "b"], 1, 0)
    r.halt("cutoff", timed_out=True)
    assert r.done and r.start_next() == []
    assert [o.state for o in r.outcomes()] == [TO, TO]


def test_deadline_helpers() -> None:
    deadline = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
    assert not deadline_passed(None, deadline)
    assert not deadline_passed(deadline, deadline - timedelta(microseconds=1))
    assert deadline_passed(deadline, deadline)  # the cutoff instant itself is past it
    assert seconds_left(None, deadline) is None
    assert seconds_left(deadline, deadline - timedelta(seconds=2.5)) == 2.5
    assert seconds_left(deadline, deadline + timedelta(hours=1)) == 0.0
    # another offset, same instant
    berlin = deadline.astimezone(timezone(timedelta(hours=1)))
    assert deadline_passed(berlin, deadline) and seconds_left(berlin, deadline) == 0.0
    reason = cutoff_reason(berlin, "before this node started")
    assert reason.startswith(TIMED_OUT_PREFIX) and reason.startswith("TIMED_OUT: ")
    assert "2026-11-03T05:00:00Z before this node started" in reason
    assert reason.endswith("(CutoffBehavior CANCEL_TASK)")
    assert is_timed_out(reason) and is_timed_out(f"HELD: held on the node: x; {reason}")
    assert not is_timed_out(None) and not is_timed_out("")
    assert not is_timed_out("UNREACHABLE: connection refused")
    assert not is_timed_out("NOT_ATTEMPTED: more than 0 node(s) failed (max errors)")
