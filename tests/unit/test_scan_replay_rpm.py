"""The scan pipeline for dnf and zypper nodes (probes -> transport -> parsers -> collect ->
evaluation -> summary) on what the real test nodes answered, replayed from tests/golden/dnf and
tests/golden/zypper. Locks, broken repositories and missing updateinfo are real captures too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.compliance import summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.errors import CommandError, LockError, ParseError, UnsupportedOSError
from patchfleet.managers import common, dnf, zypper
from patchfleet.managers.base import CollectOptions
from patchfleet.managers.registry import collect_facts
from patchfleet.transport.replay import Recorded, ReplayTransport, load_replay_dir

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = Path(__file__).resolve().parents[1] / "cases" / "os-release"
REGISTRY = load_baselines(embedded_baselines_dir())
NOW = datetime(2025, 7, 15, tzinfo=UTC)  # every test notice is more than 7 days old
INS, OTH, M, P = (PatchState.INSTALLED, PatchState.INSTALLED_OTHER, PatchState.MISSING,
                  PatchState.INSTALLED_PENDING_REBOOT)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Lock retries sleep for real in a scan; here they only record how long they would."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(common, "_sleep", sleep)
    yield slept


def replay(family: str, case: str, **overrides: Recorded) -> ReplayTransport:
    responses = dict(load_replay_dir(GOLDEN / family / case))
    responses.update(overrides)
    return ReplayTransport("node", responses)


def collect(transport: ReplayTransport, **options: object) -> NodeFacts:
    async def go() -> NodeFacts:
        async with transport:
            return await collect_facts(transport, "node", "127.0.0.1",
                                       options=CollectOptions(**options))  # type: ignore[arg-type]

    return asyncio.run(go())


def facts_of(family: str, case: str, **overrides: Recorded) -> NodeFacts:
    return collect(replay(family, case, **overrides))


def states(facts: NodeFacts, baseline: str, os_reboot_signals: bool = False
           ) -> dict[str, PatchState]:
    b = REGISTRY.get(baseline).model_copy(update={"os_reboot_signals": os_reboot_signals})
    return {r.package: r.state for r in evaluate(facts, b, NOW)}


def missing(facts: NodeFacts, baseline: str) -> set[str]:
    return {k for k, v in states(facts, baseline).items() if v is M}


ROCKY = "AWS-RockyLinuxDefaultPatchBaseline"
SUSE = "AWS-SuseDefaultPatchBaseline"
# Critical/Important security notices plus every bugfix notice (the kernel's is Moderate).
ROCKY_MISSING = {"fake-openssl-libs", "fake-curl", "fake-libcurl", "fake-sudo", "fake-coreutils",
                 "fake-tzdata", "fake-daemon", "fake-libzypp"}


def test_rocky_fresh_facts() -> None:
    facts = facts_of("dnf", "rocky9-fresh")
    assert facts.os.product == "RockyLinux9.5"
    assert (len(facts.installed), len(facts.updates), len(facts.advisories)) == (14, 11, 8)
    assert facts.boot_time is not None and not facts.reboot.required
    assert facts.refresh.ok and facts.warnings == ()


def test_rocky_fresh_under_the_aws_default() -> None:
    s = states(facts_of("dnf", "rocky9-fresh"), ROCKY)
    assert {k for k, v in s.items() if v is M} == ROCKY_MISSING
    assert s["kernel"] is OTH and s["fake-noadvisory"] is OTH and s["fake-editor"] is OTH


def test_amazon_linux_2023_under_its_default() -> None:
    facts = facts_of("dnf", "al2023-fresh")
    assert (facts.os.operating_system, facts.os.product) == ("AMAZON_LINUX_2023",
                                                             "AmazonLinux2023")
    assert missing(facts, "AWS-AmazonLinux2023DefaultPatchBaseline") == ROCKY_MISSING


def test_rocky_upgraded_then_rebooted() -> None:
    upgraded = facts_of("dnf", "rocky9-upgraded")
    assert upgraded.reboot.required and upgraded.reboot.packages == ("kernel",)
    s = states(upgraded, ROCKY)  # AWS: what patchfleet did not install is never pending
    assert s["kernel"] is not P and M not in s.values() and s["fake-curl"] is INS
    assert states(upgraded, ROCKY, os_reboot_signals=True)["kernel"] is P
    rebooted = facts_of("dnf", "rocky9-rebooted")
    after = states(rebooted, ROCKY)
    assert after["kernel"] is OTH and P not in after.values()
    summary = summarize(evaluate(rebooted, REGISTRY.get(ROCKY), NOW))
    assert summary.status is NodeStatus.COMPLIANT


def test_no_updateinfo_means_no_security_patch_and_a_warning() -> None:
    facts = facts_of("dnf", "rocky9-noupdateinfo")
    assert facts.advisories == ()
    assert facts.warnings == (
        "repository fake-updates has no updateinfo: its 11 update(s) carry no classification "
        "or severity (approved only by rules with enable_non_security and no "
        "CLASSIFICATION/SEVERITY filter other than '*')",)
    assert missing(facts, ROCKY) == set()


def test_malformed_date_is_a_warning_and_no_notice() -> None:
    facts = facts_of("dnf", "rocky9-badinfo")
    assert "issued date 'not-a-date' is not a date" in facts.warnings[0]
    s = states(facts, ROCKY)
    assert s["fake-curl"] is OTH  # its only notice is malformed: as if in no notice
    assert s["fake-openssl-libs"] is M


def test_dnf_lock_retries_with_backoff_then_fails_the_node(no_waiting: list[float]) -> None:
    transport = replay("dnf", "rocky9-locked")
    with pytest.raises(LockError, match=r"locked by dnf \(pid 66\) for 10 s"):
        collect(transport, lock_timeout=10)
    assert no_waiting == [1, 2, 4, 3, 1, 2, 4, 3]  # the refresh, then the first query
    names = [c.name for c in transport.calls]
    assert names.count("dnf-makecache") == 5 and names.count("rpm-boot") == 1


def test_dnf_lock_during_refresh_only_is_a_warning() -> None:
    locked = load_replay_dir(GOLDEN / "dnf" / "rocky9-locked")
    facts = facts_of("dnf", "rocky9-fresh", **{"dnf-makecache": locked["dnf-makecache"]})
    assert not facts.refresh.ok
    assert facts.warnings[0].startswith(
        "repository metadata not refreshed: the package manager is locked by process 66")
    assert len(facts.updates) == 11


def test_broken_repository_without_a_cache_fails_with_the_reason() -> None:
    with pytest.raises(CommandError, match="no metadata for repository 'fake-updates'"):
        facts_of("dnf", "rocky9-brokenrepo")


def test_sles_fresh_patched_rebooted() -> None:
    fresh = facts_of("zypper", "sles15-fresh")
    assert fresh.os.product == "Suse15.6" and fresh.warnings == ()
    assert {a.id[-2:] for a in fresh.advisories} == {"-1", "-2", "-3", "-4", "-5", "-6", "-8",
                                                    "-9"}
    assert missing(fresh, SUSE) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}
    patched = facts_of("zypper", "sles15-patched")
    assert patched.reboot.required and patched.reboot.packages == ()
    s = states(patched, SUSE)
    assert s["kernel"] is not P and M not in s.values() and s["fake-curl"] is INS
    assert states(patched, SUSE, os_reboot_signals=True)["kernel"] is P
    after = states(facts_of("zypper", "sles15-rebooted"), SUSE)
    assert after["kernel"] is OTH and P not in after.values()


def test_leap_is_scanned_as_suse() -> None:
    facts = facts_of("zypper", "leap15-fresh")
    assert (facts.os.id, facts.os.operating_system) == ("opensuse-leap", "SUSE")
    assert missing(facts, SUSE) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}


def test_zypper_lock_is_final_after_zyppers_own_wait(no_waiting: list[float]) -> None:
    """zypper waited ZYPP_LOCK_TIMEOUT s before exit 7: the refresh becomes a warning and the
    first zypper query fails the node, without retries of patchfleet's own."""
    transport = replay("zypper", "sles15-locked")
    with pytest.raises(LockError, match=r"locked by zypper \(pid 42\)"):
        collect(transport)
    assert no_waiting == []
    assert [c.name for c in transport.calls] == [
        "os-release", "zypper-refresh", "rpm-boot", "zypper-needs-rebooting"]
    assert dict(zypper.NEEDS_REBOOTING.command.env)["ZYPP_LOCK_TIMEOUT"] == "60"


def test_zypper_broken_repository_is_a_refresh_warning() -> None:
    facts = facts_of("zypper", "sles15-brokenrepo")
    assert not facts.refresh.ok and "'fake-updates'" in facts.warnings[0]
    assert len(facts.updates) == 11


def test_repos_skipped_exit_106_is_a_warning() -> None:
    lu = load_replay_dir(GOLDEN / "zypper" / "sles15-fresh")["zypper-list-updates"]
    skipped = Recorded(stdout=lu.stdout, stderr=lu.stderr, exit_status=106)
    facts = facts_of("zypper", "sles15-fresh", **{"zypper-list-updates": skipped})
    assert facts.warnings[0].startswith("zypper-list-updates: some repositories were skipped")


def test_patch_info_is_asked_only_when_updateinfo_is_missing() -> None:
    transport = replay("zypper", "sles15-fresh")
    collect(transport)
    assert "zypper-patch-info" not in [c.name for c in transport.calls]
    none = Recorded(stdout="=== repo fake-baseos: none\n=== repo fake-updates: none\n")
    transport = replay("zypper", "sles15-fresh", **{"zypper-updateinfo": none})
    facts = collect(transport)
    asked = [c for c in transport.calls if c.name == "zypper-patch-info"]
    assert len(asked) == 1 and asked[0].argv[-1] == "FAKE-SLE-15-SP6-2025-9"
    assert missing(facts, SUSE) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}


def test_refresh_disabled_or_without_root() -> None:
    transport = replay("dnf", "rocky9-fresh")
    assert not collect(transport, refresh=False).refresh.attempted
    assert "dnf-makecache" not in [c.name for c in transport.calls]
    unprivileged = ReplayTransport("node", load_replay_dir(GOLDEN / "dnf" / "rocky9-fresh"),
                                   is_root=False, user="scan")
    facts = collect(unprivileged)
    assert not facts.refresh.attempted and "needs root" in facts.warnings[0]


def test_garbage_from_a_probe_fails_the_scan() -> None:
    garbage = Recorded(stdout="Segmentation fault\n")
    with pytest.raises(ParseError):
        facts_of("dnf", "rocky9-fresh", **{dnf.UPDATEINFO_LIST.name: garbage})
    with pytest.raises(ParseError):
        facts_of("zypper", "sles15-fresh", **{zypper.LIST_PATCHES.name: garbage})


def test_yum_nodes_are_recognised_but_not_scanned() -> None:
    amzn2 = Recorded(stdout=(CASES / "amzn2").read_text())
    with pytest.raises(UnsupportedOSError, match="Amazon Linux 2 uses yum"):
        facts_of("dnf", "rocky9-fresh", **{common.OS_RELEASE.name: amzn2})
