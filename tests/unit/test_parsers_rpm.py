"""rpm -qa, dnf and updateinfo.xml parsers on real captures (tests/golden/dnf), and on damaged
copies of them. The expected parse of every capture is pinned by the golden files; these tests
name the facts that matter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.domain.facts import Advisory, RefreshResult, RpmRef
from patchfleet.errors import ParseError
from patchfleet.parsers import boot, dnf, os_release, rpm, updateinfo

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dnf"


def read(case: str, probe: str) -> str:
    return (GOLDEN / case / f"{probe}.stdout").read_text()


def exit_of(case: str, probe: str) -> int:
    return int((GOLDEN / case / f"{probe}.exit").read_text())


def dump(case: str) -> updateinfo.Dump:
    return updateinfo.parse_dump(read(case, "dnf-updateinfo-xml"), "dnf-updateinfo-xml")


def joined(case: str) -> dict[str, Advisory]:
    listed = dnf.parse_updateinfo_list(read(case, "dnf-updateinfo-list"))
    return {a.id: a for a in dnf.advisories(listed, dump(case))}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- os-release of the test nodes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("rocky9-fresh", ("ROCKY_LINUX", "RockyLinux9.5", "dnf")),
        ("al2023-fresh", ("AMAZON_LINUX_2023", "AmazonLinux2023", "dnf")),
    ],
)
def test_os_release_of_the_nodes(case: str, expected: tuple[str, str, str]) -> None:
    info = os_release.os_info(os_release.parse_os_release(read(case, "os-release")))
    assert (info.operating_system, info.product, info.package_manager.value) == expected


# --- rpm -qa -----------------------------------------------------------------------------------


def test_rpm_query_versions_sources_and_install_times() -> None:
    rows = {p.name: p for p in rpm.parse_rpm_query(read("rocky9-fresh", "rpm-query"))}
    ssl = rows["fake-openssl-libs"]
    assert (ssl.version, ssl.source_name, ssl.source_version, ssl.arch) == (
        "1:1.0-1", "fake-openssl", "1:1.0-1", "x86_64")
    assert rows["fake-libcurl"].source_name == "fake-curl"
    assert rows["fake-tzdata"].arch == "noarch"
    assert rows["rocky-release"].version == "9.5-1.2.el9"
    assert all(p.install_time is not None and p.install_time.tzinfo is UTC
               for p in rows.values())


def test_install_only_kernels_are_each_a_row() -> None:
    kernels = [p.version for p in rpm.parse_rpm_query(read("rocky9-upgraded", "rpm-query"))
               if p.name == "kernel"]
    assert sorted(kernels) == ["1.0-1", "1.1-1"]


def _gpg_pubkey_row() -> str:
    """A real row turned into what rpm prints for an imported signing key."""
    fields = read("rocky9-fresh", "rpm-query").splitlines()[1].split("\t")
    fields[0], fields[4], fields[7] = "gpg-pubkey", "(none)", "(none)"
    fields[2], fields[3] = "8483c65d", "5ccc5b19"
    return "\t".join(fields)


def test_gpg_pubkey_pseudo_packages_are_skipped() -> None:
    text = read("rocky9-fresh", "rpm-query") + _gpg_pubkey_row() + "\n"
    names = [p.name for p in rpm.parse_rpm_query(text)]
    assert "gpg-pubkey" not in names and len(names) == 14


def _field(text: str, index: int, value: str | None) -> str:
    """``text`` with field ``index`` of its first row replaced (None: removed)."""
    first, rest = text.split("\n", 1)
    fields = first.split("\t")
    if value is None:
        del fields[index]
    else:
        fields[index] = value
    return "\t".join(fields) + "\n" + rest


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda t: _field(t, 6, None), "expected 8 tab-separated fields"),
        (lambda t: _field(t, 5, "yesterday"), "install time"),
        (lambda t: t.replace("fake-curl-1.0-1.src.rpm", "fake-curl.src.rpm", 1), "SOURCERPM"),
        (lambda t: t.replace("kernel\t0\t", "kernel\tx\t", 1), "epoch 'x'"),
        (lambda t: t.replace("\tx86_64\t", "\t(none)\t", 1), "not an rpm arch"),
    ],
)
def test_damaged_rpm_query_raises(damage: Callable[[str], str], match: str) -> None:
    with pytest.raises(ParseError, match=match):
        rpm.parse_rpm_query(damage(read("rocky9-fresh", "rpm-query")))


# --- boot, needs-restarting --------------------------------------------------------------------


def test_boot_time_is_the_node_clock_minus_uptime() -> None:
    text = read("rocky9-fresh", "rpm-boot")
    info = boot.parse_boot(text)
    now, uptime = int(text.splitlines()[2]), float(text.splitlines()[1].split()[0])
    assert info.boot_time == datetime.fromtimestamp(now - int(uptime), UTC)
    assert info.boot_id == text.splitlines()[0]


def test_needs_restarting_after_the_kernel_upgrade_and_after_the_reboot() -> None:
    pending = dnf.parse_needs_restarting(exit_of("rocky9-upgraded", "dnf-needs-restarting"),
                                         read("rocky9-upgraded", "dnf-needs-restarting"), "b")
    assert (pending.required, pending.packages) == (True, ("kernel",))
    clear = dnf.parse_needs_restarting(0, read("rocky9-rebooted", "dnf-needs-restarting"), "b")
    assert (clear.required, clear.packages) == (False, ())


def test_needs_restarting_verdict_must_match_the_exit_status() -> None:
    with pytest.raises(ParseError, match="contradicts"):
        dnf.parse_needs_restarting(0, read("rocky9-upgraded", "dnf-needs-restarting"), "b")
    with pytest.raises(ParseError, match="verdict"):
        dnf.parse_needs_restarting(1, "Segmentation fault\n", "b")


@pytest.mark.parametrize("damage", [lambda t: t.splitlines()[0], lambda t: t.replace("-", "", 1)])
def test_damaged_boot_probe_raises(damage: Callable[[str], str]) -> None:
    with pytest.raises(ParseError):
        boot.parse_boot(damage(read("rocky9-fresh", "rpm-boot")))


# --- available upgrades ------------------------------------------------------------------------


def test_upgrades_newest_version_repository_and_build_time() -> None:
    installed = rpm.parse_rpm_query(read("rocky9-fresh", "rpm-query"))
    ups = {u.package.name: u for u in
           dnf.parse_upgrades(read("rocky9-fresh", "dnf-repoquery-upgrades"), installed)}
    assert ups["fake-sudo"].package.evr == "1.2-1"  # 1.1 and 1.2 offered: the newest
    assert ups["fake-openssl-libs"].package == RpmRef("fake-openssl-libs", 1, "1.1", "1", "x86_64")
    assert ups["fake-openssl-libs"].installed_evr == "1:1.0-1"
    assert ups["kernel"].installed_evr == "1.0-1"
    assert ups["fake-noadvisory"].repository == "fake-updates"
    assert ups["fake-curl"].build_time == utc("2025-05-31 10:00")
    assert "fake-newname" not in ups  # obsoletes fake-oldname: not an upgrade of it
    assert not dnf.parse_upgrades(read("rocky9-upgraded", "dnf-repoquery-upgrades"), installed)


def test_upgrade_of_a_package_not_installed_raises() -> None:
    installed = [p for p in rpm.parse_rpm_query(read("rocky9-fresh", "rpm-query"))
                 if p.name != "fake-curl"]
    with pytest.raises(ParseError, match=r"fake-curl\.x86_64, which is not installed"):
        dnf.parse_upgrades(read("rocky9-fresh", "dnf-repoquery-upgrades"), installed)


# --- advisories --------------------------------------------------------------------------------


def test_advisory_with_two_packages_and_two_cves() -> None:
    a = dump("rocky9-fresh").advisories["FAKESA-2025:0002"]
    assert [p.nvra for p in a.packages] == ["fake-curl-1.1-1.x86_64", "fake-libcurl-1.1-1.x86_64"]
    assert a.cves == ("CVE-2025-10002", "CVE-2025-10003")
    assert a.bugzillas == ("2300002",)
    assert (a.type, a.severity) == ("security", "Important")
    assert (a.issued, a.updated) == (utc("2025-06-01 10:00:00"), None)


def test_issued_and_updated_are_kept_apart_in_utc() -> None:
    a = dump("rocky9-fresh").advisories["FAKESA-2025:0003"]
    assert a.issued == utc("2025-06-10 10:00:00") and a.updated == utc("2025-06-20 12:00:00")
    assert a.issued.tzinfo is UTC


def test_kernel_advisory_suggests_a_reboot() -> None:
    adv = dump("rocky9-fresh").advisories
    assert adv["FAKESA-2025:0003"].reboot_suggested
    assert [p.nvra for p in adv["FAKESA-2025:0003"].packages] == ["kernel-1.1-1.x86_64"]
    assert not adv["FAKESA-2025:0002"].reboot_suggested


def test_epoch_noarch_and_missing_severity() -> None:
    adv = dump("rocky9-fresh").advisories
    assert adv["FAKESA-2025:0001"].packages[0].evr == "1:1.1-1"
    assert RpmRef("fake-tzdata", 0, "1.1", "1", "noarch") in adv["FAKEBA-2025:0005"].packages
    assert adv["FAKEBA-2025:0008"].severity == ""  # no <severity> element
    assert adv["FAKEBA-2025:0005"].severity == "None"


def test_repositories_without_updateinfo() -> None:
    assert dump("rocky9-fresh").repos == {"fake-baseos": "none", "fake-updates": "ok"}
    none = dump("rocky9-noupdateinfo")
    assert none.repos == {"fake-baseos": "none", "fake-updates": "none"}
    assert not none.advisories
    assert not dnf.parse_updateinfo_list(read("rocky9-noupdateinfo", "dnf-updateinfo-list"))


def test_updateinfo_list_marks_installed_packages() -> None:
    fresh = dnf.parse_updateinfo_list(read("rocky9-fresh", "dnf-updateinfo-list"))
    assert not any(r.installed for r in fresh)
    sudo = [(r.advisory_id, r.type, r.package.evr) for r in fresh if r.package.name == "fake-sudo"]
    assert sudo == [("FAKESA-2025:0004", "security", "1.1-1"),
                    ("FAKEBA-2025:0008", "bugfix", "1.2-1")]
    done = dnf.parse_updateinfo_list(read("rocky9-upgraded", "dnf-updateinfo-list"))
    assert all(r.installed for r in done)


def test_joined_advisories_only_those_dnf_lists_for_installed_names() -> None:
    fresh = joined("rocky9-fresh")
    assert "FAKEEA-2025:0007" not in fresh  # fake-newtool is not installed
    assert "FAKEEA-2025:0007" in dump("rocky9-fresh").advisories
    assert not any(a.installed for a in fresh.values())
    assert all(a.installed for a in joined("rocky9-upgraded").values())


def test_the_package_in_no_advisory_has_no_notice() -> None:
    for a in dump("rocky9-fresh").advisories.values():
        assert all(p.name != "fake-noadvisory" for p in a.packages)


def test_xml_agrees_with_dnfs_own_rendering() -> None:
    """dnf's ``updateinfo info`` shows the later of issued and updated as "Updated"."""
    info = dnf.parse_updateinfo_info(read("rocky9-fresh", "dnf-updateinfo-info"))
    xml = dump("rocky9-fresh").advisories
    assert set(info) == set(joined("rocky9-fresh"))
    for adv_id, shown in info.items():
        a = xml[adv_id]
        assert shown.updated == max(d for d in (a.issued, a.updated) if d is not None)
        assert (shown.type, shown.title, tuple(shown.cves)) == (a.type, a.title, a.cves)
        assert tuple(shown.bugzillas) == a.bugzillas


def test_unreadable_date_is_the_epoch_and_a_problem() -> None:
    bad = dump("rocky9-badinfo")
    assert bad.advisories["FAKESA-2025:0002"].issued == datetime(1970, 1, 1, tzinfo=UTC)
    assert bad.problems == (
        "advisory FAKESA-2025:0002 (fake-updates): issued date 'not-a-date' is not a date",)
    assert bad.advisories["FAKESA-2025:0004"].severity == ""
    shown = dnf.parse_updateinfo_info(read("rocky9-badinfo", "dnf-updateinfo-info"))
    assert shown["FAKESA-2025:0002"].updated is None  # dnf shows 1970-01-01 00:00:00


def test_listed_advisory_missing_from_the_xml_raises() -> None:
    listed = dnf.parse_updateinfo_list(read("rocky9-fresh", "dnf-updateinfo-list"))
    with pytest.raises(ParseError, match=r"FAKEBA-2025:0005, which no cached updateinfo\.xml"):
        dnf.advisories(listed, dump("rocky9-noupdateinfo"))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda t: t[: len(t) // 2], "not XML"),
        (lambda t: t.replace("<severity>", "<sevrity>", 1).replace("</severity>", "</sevrity>", 1),
         "unexpected <sevrity>"),
        (lambda t: t.replace("<id>FAKESA-2025:0001</id>", "", 1), "no <id>"),
        (lambda t: t.replace('epoch="1"', 'epoch="one"', 1), "epoch 'one'"),
        (lambda t: "garbage\n" + t, "expected '=== repo ID: PATH' first"),
        (lambda t: t.replace("=== repo fake-baseos: none", "=== repo fake-baseos: none\nx", 1),
         "text after"),
    ],
)
def test_damaged_updateinfo_xml_raises(damage: Callable[[str], str], match: str) -> None:
    text = damage(read("rocky9-fresh", "dnf-updateinfo-xml"))
    with pytest.raises(ParseError, match=match):
        updateinfo.parse_dump(text, "dnf-updateinfo-xml")


@pytest.mark.parametrize(
    ("parse", "probe", "damage", "match"),
    [
        (dnf.parse_updateinfo_list, "dnf-updateinfo-list",
         lambda t: t.replace("Important/Sec.", "Urgent/Sec.", 1), "unknown advisory type"),
        (dnf.parse_updateinfo_list, "dnf-updateinfo-list",
         lambda t: t.replace("kernel-1.1-1.x86_64", "kernel", 1), "not a NEVRA"),
        (dnf.parse_updateinfo_info, "dnf-updateinfo-info",
         lambda t: t.replace("   Severity:", "   Priority:", 1), "unknown field 'Priority'"),
        (dnf.parse_updateinfo_info, "dnf-updateinfo-info",
         lambda t: t.replace("Updated: 2025-05-02 08:00:00", "Updated: yesterday", 1),
         "not a date"),
        (dnf.parse_updateinfo_info, "dnf-updateinfo-info",
         lambda t: t.replace("=" * 79 + "\n", "", 1), "rule"),
    ],
)
def test_damaged_dnf_text_raises(
    parse: Callable[[str], object], probe: str, damage: Callable[[str], str], match: str
) -> None:
    text = damage(read("rocky9-fresh", probe))
    with pytest.raises(ParseError, match=match):
        parse(text)


# --- refresh -----------------------------------------------------------------------------------


def _makecache(case: str) -> RefreshResult:
    d = GOLDEN / case
    return dnf.parse_makecache(int((d / "dnf-makecache.exit").read_text()),
                               (d / "dnf-makecache.stdout").read_text(),
                               (d / "dnf-makecache.stderr").read_text())


def test_refresh_ok_locked_and_broken_repository() -> None:
    assert _makecache("rocky9-fresh").ok
    locked = _makecache("rocky9-locked")
    assert not locked.ok and "locked by process" in locked.message
    broken = _makecache("rocky9-brokenrepo")
    assert not broken.ok
    assert "fake-updates" in broken.message
    assert "scanned with the metadata already on the node" in broken.message
