"""The whole scan pipeline (probes -> transport -> parsers -> evaluation -> summary) on the
commands a real test node answered, replayed from tests/golden/apt. The same pipeline runs
over real SSH in tests/integration; this pins the exact states without needing root."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.compliance import summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.errors import ParseError
from patchfleet.managers import apt
from patchfleet.managers.base import CollectOptions
from patchfleet.managers.registry import collect_facts
from patchfleet.transport.replay import Recorded, ReplayTransport, load_replay_dir

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "apt"
REGISTRY = load_baselines(embedded_baselines_dir())
INS, OTH, M, P = (PatchState.INSTALLED, PatchState.INSTALLED_OTHER, PatchState.MISSING,
              PatchState.INSTALLED_PENDING_REBOOT)


def facts_of(case: str, *, refresh: bool = True, **overrides: Recorded) -> NodeFacts:
    responses = dict(load_replay_dir(GOLDEN / case))
    responses.update(overrides)
    transport = ReplayTransport("node", responses)

    async def go() -> NodeFacts:
        async with transport:
            return await collect_facts(transport, "node", "127.0.0.1",
                                       options=CollectOptions(refresh=refresh))

    return asyncio.run(go())


def fake_states(facts: NodeFacts, baseline: str, os_reboot_signals: bool = False
                ) -> dict[str, PatchState]:
    b = REGISTRY.get(baseline).model_copy(update={"os_reboot_signals": os_reboot_signals})
    recs = evaluate(facts, b, datetime.now(UTC))
    return {r.package: r.state for r in recs if "fake" in r.package}


def test_fresh_node_under_the_aws_debian_default() -> None:
    assert fake_states(facts_of("debian12-fresh"), "AWS-DebianDefaultPatchBaseline") == {
        "libfakessl3": M, "fake-sudo": M, "fake-curl": M, "fake-extra": M, "fake-held": M,
        "linux-image-fake": M,
        "fake-coreutils": OTH, "fake-editor": OTH, "fake-tzdata": OTH, "fake-daemon": OTH,
        "fake-stable-only": OTH, "linux-image-1.0-fake": OTH,
    }


def test_fresh_node_with_non_security_enabled() -> None:
    states = fake_states(facts_of("debian12-fresh"), "example-debian-all-updates")
    assert {k for k, v in states.items() if v is M} == {
        "libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "fake-held", "linux-image-fake",
        "fake-coreutils", "fake-editor", "fake-tzdata", "fake-daemon"}


def test_reboot_pending_then_upgraded() -> None:
    reboot_pending = facts_of("debian12-reboot-pending")
    assert reboot_pending.reboot.required
    # AWS: a package patchfleet did not install is never pending a reboot
    aws_default = fake_states(reboot_pending, "AWS-DebianDefaultPatchBaseline")
    assert aws_default["linux-image-1.1-fake"] is not P
    pending = fake_states(reboot_pending, "AWS-DebianDefaultPatchBaseline", os_reboot_signals=True)
    assert pending["linux-image-1.1-fake"] is P and pending["linux-image-fake"] is INS
    upgraded = facts_of("debian12-upgraded")
    states = fake_states(upgraded, "AWS-DebianDefaultPatchBaseline")
    assert [k for k, v in states.items() if v is M] == ["fake-held"]
    summary = summarize(evaluate(upgraded, REGISTRY.get("AWS-DebianDefaultPatchBaseline"),
                                 datetime.now(UTC)))
    assert summary.status is NodeStatus.NON_COMPLIANT
    assert (summary.missing_count, summary.installed_pending_reboot_count) == (1, 0)


def test_rebooted_node_clears_pending_reboot() -> None:
    facts = facts_of("debian12-rebooted")
    assert not facts.reboot.required
    states = fake_states(facts, "AWS-DebianDefaultPatchBaseline")
    assert P not in states.values() and states["linux-image-1.1-fake"] is INS


def test_held_package_is_recorded_as_held() -> None:
    recs = evaluate(facts_of("debian12-fresh"), REGISTRY.get("AWS-DebianDefaultPatchBaseline"),
                    datetime.now(UTC))
    held = [r for r in recs if r.held]
    assert [(r.package, r.state, r.available_version) for r in held] == [
        ("fake-held", M, "1.1")]


def test_refresh_disabled_sends_no_apt_get_update() -> None:
    facts = facts_of("debian12-fresh", refresh=False)
    assert not facts.refresh.attempted


def test_garbage_from_a_probe_fails_the_scan() -> None:
    garbage = Recorded(stdout="Segmentation fault\n", stderr="", exit_status=0)
    with pytest.raises(ParseError):
        facts_of("debian12-fresh", **{apt.DPKG_QUERY.name: garbage})
