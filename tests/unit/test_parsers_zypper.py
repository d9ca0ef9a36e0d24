"""zypper parsers on real captures (tests/golden/zypper: SLES 15 SP6 and Leap 15.6 test nodes),
and on damaged copies of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.domain.facts import Advisory, RefreshResult, RpmRef
from patchfleet.errors import CommandError, LockError, ParseError
from patchfleet.parsers import os_release, updateinfo, zypper

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "zypper"
SLE = "FAKE-SLE-15-SP6-2025-"


def read(case: str, probe: str, part: str = "stdout") -> str:
    return (GOLDEN / case / f"{probe}.{part}").read_text()


def exit_of(case: str, probe: str) -> int:
    return int(read(case, probe, "exit"))


def entries(case: str) -> dict[str, zypper.PatchEntry]:
    return {e.name: e for e in zypper.parse_list_patches(read(case, "zypper-list-patches"))}


def dump(case: str) -> updateinfo.Dump:
    return updateinfo.parse_dump(read(case, "zypper-updateinfo"), "zypper-updateinfo")


def patches(case: str) -> dict[str, Advisory]:
    listed = zypper.parse_list_patches(read(case, "zypper-list-patches"))
    return {a.id: a for a in zypper.patches(listed, dump(case))}


@pytest.mark.parametrize(
    ("case", "product"), [("sles15-fresh", "Suse15.6"), ("leap15-fresh", "Suse15.6")]
)
def test_os_release_of_the_nodes(case: str, product: str) -> None:
    info = os_release.os_info(os_release.parse_os_release(read(case, "os-release")))
    assert (info.operating_system, info.product, info.package_manager.value) == (
        "SUSE", product, "zypper")


def test_list_updates_versions_and_repository() -> None:
    ups = {u.package.name: u for u in zypper.parse_list_updates(
        read("sles15-fresh", "zypper-list-updates"))}
    assert len(ups) == 11
    ssl = ups["fake-openssl-libs"]
    assert ssl.package == RpmRef("fake-openssl-libs", 1, "1.1", "1", "x86_64")
    assert (ssl.installed_evr, ssl.repository) == ("1:1.0-1", "fake-updates")
    assert ups["fake-sudo"].package.evr == "1.2-1"
    assert ups["fake-tzdata"].package.arch == "noarch"
    assert "kernel" in ups
    left = zypper.parse_list_updates(read("sles15-patched", "zypper-list-updates"))
    assert sorted(u.package.name for u in left) == ["fake-editor", "fake-noadvisory"]


def test_list_patches_status_category_severity_and_flags() -> None:
    fresh = entries("sles15-fresh")
    assert {n: e.status for n, e in fresh.items() if e.status != "needed"} == {
        SLE + "6": "optional", SLE + "7": "not-needed", SLE + "10": "not-needed"}
    kernel = fresh[SLE + "3"].advisory
    assert (kernel.type, kernel.severity, kernel.interactive, kernel.reboot_suggested) == (
        "security", "moderate", True, True)
    curl = fresh[SLE + "2"].advisory
    assert curl.cves == ("CVE-2025-10002", "CVE-2025-10003")
    assert curl.bugzillas == ("1230002",)
    assert curl.updated == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert fresh[SLE + "5"].advisory.type == "recommended"
    patched = entries("sles15-patched")
    assert {e.status for n, e in patched.items() if n not in (SLE + "6", SLE + "7", SLE + "10")
            } == {"applied"}
    assert patched[SLE + "1"].advisory.installed and not patched[SLE + "6"].advisory.installed


def test_patches_take_packages_and_dates_from_updateinfo_and_drop_not_needed() -> None:
    fresh = patches("sles15-fresh")
    assert SLE + "7" not in fresh and SLE + "10" not in fresh
    curl = fresh[SLE + "2"]
    assert [p.nvra for p in curl.packages] == ["fake-curl-1.1-1.x86_64",
                                              "fake-libcurl-1.1-1.x86_64"]
    assert curl.cves == ("CVE-2025-10002", "CVE-2025-10003")
    assert curl.issued == datetime(2025, 6, 1, 10, 0, tzinfo=UTC) and curl.updated is None
    assert fresh[SLE + "3"].reboot_suggested and fresh[SLE + "3"].interactive
    assert all(a.installed for n, a in patches("sles15-patched").items() if n != SLE + "6")


def test_patch_info_agrees_with_updateinfo() -> None:
    """``zypper info -t patch`` (Conflicts, noarch twins dropped) names the same packages as
    the repository's updateinfo.xml."""
    info = zypper.parse_patch_info(read("sles15-fresh", "zypper-patch-info"))
    xml = dump("sles15-fresh").advisories
    assert set(info) == set(patches("sles15-fresh"))
    for name, refs in info.items():
        assert set(refs) == set(xml[name].packages), name
    assert RpmRef("fake-tzdata", 0, "1.1", "1", "noarch") in info[SLE + "5"]


def test_patch_info_stands_in_for_a_missing_updateinfo() -> None:
    listed = zypper.parse_list_patches(read("sles15-fresh", "zypper-list-patches"))
    empty = updateinfo.Dump({}, {"fake-updates": "none"}, {}, ())
    assert zypper.undescribed(listed, empty) == sorted(patches("sles15-fresh"))
    details = zypper.parse_patch_info(read("sles15-fresh", "zypper-patch-info"))
    via_info = {a.id: a for a in zypper.patches(listed, empty, details)}
    assert via_info[SLE + "2"].updated == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ParseError, match="no details from zypper info"):
        zypper.patches(listed, empty)


def test_needs_rebooting() -> None:
    patched = zypper.parse_needs_rebooting(exit_of("sles15-patched", "zypper-needs-rebooting"),
                                           read("sles15-patched", "zypper-needs-rebooting"), "b")
    assert patched.required and patched.packages == ()
    assert not zypper.parse_needs_rebooting(0, read("sles15-rebooted", "zypper-needs-rebooting"),
                                            "b").required
    with pytest.raises(ParseError, match="contradicts"):
        zypper.parse_needs_rebooting(0, read("sles15-patched", "zypper-needs-rebooting"), "b")


def _refresh(case: str) -> RefreshResult:
    return zypper.parse_refresh(exit_of(case, "zypper-refresh"), read(case, "zypper-refresh"),
                                read(case, "zypper-refresh", "stderr"))


def test_refresh_ok_locked_and_broken_repository() -> None:
    assert _refresh("sles15-fresh").ok
    locked = _refresh("sles15-locked")
    assert not locked.ok and "zypper is locked by zypper (pid 42)" in locked.message
    broken = _refresh("sles15-brokenrepo")
    assert not broken.ok and "'fake-updates'" in broken.message and "exit 4" in broken.message


def test_exit_7_is_a_lock_error_naming_the_holder() -> None:
    with pytest.raises(LockError, match=r"locked by zypper \(pid 42\)"):
        zypper.check_exit("zypper-list-updates", exit_of("sles15-locked", "zypper-list-updates"),
                          read("sles15-locked", "zypper-list-updates"), "")


def test_exit_codes_with_complete_output() -> None:
    """106 (a repository skipped) and 103 (zypper has an update for itself) keep the output;
    104 and 6 fail. Real output, other exit statuses."""
    text = read("sles15-fresh", "zypper-list-updates")
    assert zypper.check_exit("lu", 0, text, "")[1] == ()
    assert "skipped" in zypper.check_exit("lu", 106, text, "")[1][0]
    assert "update for itself" in zypper.check_exit("lu", 103, text, "")[1][0]
    with pytest.raises(CommandError, match="not found"):
        zypper.check_exit("lu", 104, text, "")
    with pytest.raises(CommandError, match="no repositories"):
        zypper.check_exit("lu", 6, text, "")
    with pytest.raises(CommandError, match="exit 4"):
        zypper.check_exit("refresh", 4, read("sles15-brokenrepo", "zypper-refresh"), "")


@pytest.mark.parametrize(
    ("parse", "probe", "damage", "match"),
    [
        (zypper.parse_list_updates, "zypper-list-updates",
         lambda t: t[: len(t) // 2], "not zypper XML"),
        (zypper.parse_list_updates, "zypper-list-updates",
         lambda t: t.replace(' edition-old="1.0-1"', "", 1), "without edition-old"),
        (zypper.parse_list_updates, "zypper-list-updates",
         lambda t: t.replace('edition="1.1-1"', 'edition="1.1"', 1), "is not \\[E:\\]V-R"),
        (zypper.parse_list_patches, "zypper-list-patches",
         lambda t: t.replace('status="needed"', 'status="pending"', 1), "unknown status"),
        (zypper.parse_list_patches, "zypper-list-patches",
         lambda t: t.replace("<issue-list>", "<issue-lst>", 1).replace(
             "</issue-list>", "</issue-lst>", 1), "unexpected <issue-lst>"),
        (zypper.parse_list_patches, "zypper-list-patches",
         lambda t: t.replace('restart="false"', 'restart="maybe"', 1), "not true/false"),
        (zypper.parse_list_patches, "zypper-list-patches",
         lambda t: t.replace("<update-status", "<update-state", 1).replace(
             "</update-status>", "</update-state>", 1), "unexpected element <update-state>"),
        (zypper.parse_patch_info, "zypper-patch-info",
         lambda t: t.replace("    fake-curl.x86_64 &lt; 1.1-1", "    fake-curl.x86_64 1.1-1", 1),
         "not a 'name.arch < version' conflict"),
        (zypper.parse_patch_info, "zypper-patch-info",
         lambda t: t.replace("Conflicts   : [4]", "Obsoletes   : [4]", 1), "has no Conflicts list"),
    ],
)
def test_damaged_zypper_output_raises(
    parse: Callable[[str], object], probe: str, damage: Callable[[str], str], match: str
) -> None:
    text = read("sles15-fresh", probe)
    damaged = damage(text)
    assert damaged != text
    with pytest.raises(ParseError, match=match):
        parse(damaged)


def test_needs_rebooting_garbage_raises() -> None:
    with pytest.raises(ParseError, match="unexpected line"):
        zypper.parse_needs_rebooting(0, "Segmentation fault\n", "b")
