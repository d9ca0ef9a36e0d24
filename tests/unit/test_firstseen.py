"""First-seen dates (patchfleet extension): the pure fold over scan history, and the apt
evaluator staging approvals with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import apt_facts as C

from patchfleet.domain.baseline import parse_baseline
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.firstseen import Sighting, first_seen
from patchfleet.domain.records import PatchState

T0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)


def test_earliest_sighting_across_the_fleet() -> None:
    rows = [
        Sighting("web-1", "openssl", "3.0.11-1", T0 + timedelta(days=3)),
        Sighting("canary", "openssl", "3.0.11-1", T0),
        Sighting("web-2", "openssl", "3.0.11-1", T0 + timedelta(days=1)),
        Sighting("web-1", "openssl", "3.0.12-1", T0 + timedelta(days=5)),
        Sighting("web-1", "bash", None, T0),  # nothing offered
        Sighting("web-1", "bash", "", T0),
    ]
    assert first_seen(rows) == {
        ("openssl", "3.0.11-1"): T0,
        ("openssl", "3.0.12-1"): T0 + timedelta(days=5),
    }


def test_restricted_to_some_nodes() -> None:
    rows = [
        Sighting("canary", "openssl", "3.0.11-1", T0),
        Sighting("web-1", "openssl", "3.0.11-1", T0 + timedelta(days=3)),
    ]
    assert first_seen(rows, nodes={"web-1"}) == {("openssl", "3.0.11-1"): T0 + timedelta(days=3)}
    assert first_seen(rows, nodes=()) == {}


def test_plain_tuples_and_time_zones() -> None:
    cet = timezone(timedelta(hours=1))
    rows = [
        ("n1", "curl", "8.0-1", datetime(2026, 1, 2, 0, 30)),  # naive: UTC
        ("n2", "curl", "8.0-1", datetime(2026, 1, 2, 1, 0, tzinfo=cet)),  # 00:00 UTC
    ]
    seen = first_seen(rows)
    assert seen == {("curl", "8.0-1"): datetime(2026, 1, 2, 0, 0, tzinfo=UTC)}
    assert seen[("curl", "8.0-1")].tzinfo is UTC
    assert first_seen([]) == {}


def test_apt_approval_waits_for_the_fleet_wide_first_sighting() -> None:
    b = parse_baseline(
        {
            "name": "debian-staged",
            "operating_system": "DEBIAN",
            "approval_rules": [
                {
                    "patch_filters": [{"key": "PRIORITY", "values": ["*"]}],
                    "approve_after_days": 7,
                }
            ],
            "staged_approval": True,
        },
        "test",
    )
    version = "3.0.11-1~deb12u2"
    now = C.NOW
    history = [
        Sighting("canary", "openssl", version, now - timedelta(days=7, minutes=1)),
        Sighting("node-1", "openssl", version, now - timedelta(hours=1)),
    ]

    def state(seen: Any) -> PatchState:
        records = evaluate(C.mixed(), b, now, first_seen=seen)
        return next(r for r in records if r.package == "openssl").state

    assert state(first_seen(history)) is PatchState.MISSING
    # This node alone saw it an hour ago; and a version never seen counts as seen now.
    assert state(first_seen(history, nodes={"node-1"})) is PatchState.INSTALLED_OTHER
    assert state(first_seen([])) is PatchState.INSTALLED_OTHER
