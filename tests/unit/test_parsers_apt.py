"""Parsers on real apt/dpkg output (tests/golden/apt), and on damaged copies of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.errors import ParseError, UnsupportedOSError
from patchfleet.parsers import apt, dpkg, os_release, reboot

HOST = Path(__file__).resolve().parents[1] / "golden" / "apt" / "debian12-host"


def read(name: str) -> str:
    return (HOST / f"{name}.stdout").read_text()


def test_os_release_debian12() -> None:
    info = os_release.os_info(os_release.parse_os_release(read("os-release")))
    assert (info.operating_system, info.product, info.version_codename) == (
        "DEBIAN", "Debian12", "bookworm")


def test_os_release_ubuntu_product_and_unsupported_os() -> None:
    ubuntu = 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
    assert os_release.os_info(os_release.parse_os_release(ubuntu)).product == "Ubuntu22.04"
    with pytest.raises(UnsupportedOSError, match="Gentoo"):
        os_release.os_info(os_release.parse_os_release('ID=gentoo\nPRETTY_NAME="Gentoo"\n'))
    with pytest.raises(ParseError, match="KEY=VALUE"):
        os_release.parse_os_release("ID=debian\nthis is not os-release\n")


def test_releases_mark_only_the_security_pocket() -> None:
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    security = {k for k, v in releases.items() if v.security}
    assert security == {
        "http://deb.debian.org/debian-security bookworm-security/main amd64 Packages"}
    assert not releases["/var/lib/dpkg/status"].security


def test_version_table_keeps_every_version_and_its_sources() -> None:
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    tables = {c.name: c for c in apt.parse_policy_packages(read("apt-cache-policy-installed"),
                                                           releases)}
    ssl = tables["libssl3"]
    assert ssl.installed_version == "3.0.19-1~deb12u2"
    assert ssl.candidate_version == "3.0.22-1~deb12u2"
    by_version = {v.version: v for v in ssl.versions}
    assert by_version["3.0.22-1~deb12u2"].security
    assert not by_version["3.0.20-1~deb12u2"].security
    assert by_version["3.0.19-1~deb12u2"].installed
    assert not by_version["3.0.19-1~deb12u2"].from_repository


def test_dpkg_query_rows() -> None:
    rows = {p.name: p for p in dpkg.parse_dpkg_query(read("dpkg-query"))}
    ssl = rows["libssl3"]
    assert (ssl.source_name, ssl.priority, ssl.section, ssl.status, ssl.held) == (
        "openssl", "optional", "libs", "installed", False)


def test_simulate_counts_match_summary() -> None:
    sim = apt.parse_simulate(read("apt-get-simulate"))
    assert sim.upgraded == len([c for c in sim.changes if not c.is_new_install]) > 0
    perl = next(c for c in sim.changes if c.name == "perl")
    assert any(o.startswith("Debian-Security:") for o in perl.origins)


def test_apt_show_priority_and_section() -> None:
    meta = apt.parse_apt_show(read("apt-cache-show"))
    assert meta[("libssl3", "3.0.22-1~deb12u2")] == ("optional", "libs")


@pytest.mark.parametrize(
    ("probe", "parse"),
    [
        ("dpkg-query", dpkg.parse_dpkg_query),
        ("apt-get-simulate", apt.parse_simulate),
        ("apt-cache-show", apt.parse_apt_show),
        ("apt-cache-policy", apt.parse_policy_releases),
    ],
)
def test_an_unknown_line_is_an_error_not_skipped(probe: str, parse: object) -> None:
    text = read(probe)
    lines = text.splitlines()
    lines.insert(len(lines) // 2, "%%% garbage that no apt prints %%%")
    with pytest.raises(ParseError):
        parse("\n".join(lines) + "\n")  # type: ignore[operator]


def test_truncated_simulation_is_detected() -> None:
    text = read("apt-get-simulate")
    with pytest.raises(ParseError, match="summary"):
        apt.parse_simulate(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")


def test_truncated_dpkg_line_is_detected() -> None:
    with pytest.raises(ParseError, match="9 tab-separated"):
        dpkg.parse_dpkg_query("adduser\tall\t3.134\n")


def test_reboot_probe() -> None:
    state = reboot.parse_apt_reboot(read("apt-reboot"))
    assert not state.required and len(state.boot_id) == 36
    pending = reboot.parse_apt_reboot(
        "e7962682-50d7-4685-b6db-7bcb8a4cc038\nreboot-required: yes\nlinux-image-1.1-fake\n")
    assert pending.required and pending.packages == ("linux-image-1.1-fake",)
    with pytest.raises(ParseError):
        reboot.parse_apt_reboot("not-a-boot-id\nreboot-required: no\n")


def test_update_result_lock_and_errors() -> None:
    ok = apt.parse_update(0, read("apt-get-update"), "")
    assert ok.ok and ok.attempted
    locked = apt.parse_update(
        100, "", "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 454 "
        "(apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n")
    assert not locked.ok and "held by process 454" in locked.message


def test_autoremove_notice_is_understood_and_is_not_an_upgrade() -> None:
    text = (HOST.parent / "debian12-host-autoremove" / "apt-get-simulate.stdout").read_text()
    assert "Use 'apt autoremove' to remove it." in text
    sim = apt.parse_simulate(text)
    assert sim.upgraded == len(sim.changes) > 0
    assert "python3-dateutil" not in {c.name for c in sim.changes}
