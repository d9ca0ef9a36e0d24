"""The install commands: exact argv per package manager, and names/versions that never reach a
node's shell."""

from __future__ import annotations

import pytest

from patchfleet.domain.records import PatchRecord, PatchState
from patchfleet.managers.apt import apt_failure, apt_install, apt_mark
from patchfleet.managers.base import PackageSpec
from patchfleet.managers.dnf import dnf_upgrade
from patchfleet.managers.zypper import (
    parse_zypper_locks,
    zypper_failure,
    zypper_lock,
    zypper_update,
)
from patchfleet.ops.install import InstallRequest, post_install_records
from patchfleet.transport.base import CommandResult


def test_apt_install_argv() -> None:
    cmd = apt_install([PackageSpec("libfakessl3", "amd64", "1.1"),
                       PackageSpec("fake-tzdata", "all", "1:1.1-2~deb12u1")], 30)
    assert cmd.argv == (
        "apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=30",
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        "install", "--only-upgrade", "--no-install-recommends", "--",
        "libfakessl3:amd64=1.1", "fake-tzdata:all=1:1.1-2~deb12u1",
    )
    assert cmd.argv[cmd.variable_from or 0] == "--"
    assert cmd.privileged
    assert "dist-upgrade" not in cmd.argv
    assert apt_mark("hold", ["libfakessl3"]).argv == ("apt-mark", "hold", "--", "libfakessl3")


def test_dnf_upgrade_argv() -> None:
    cmd = dnf_upgrade([PackageSpec("fake-openssl-libs", "x86_64", "1:1.1-1"),
                       PackageSpec("fake-curl", "x86_64", "1.1-1")], exclude=["fake-sudo"])
    assert cmd.argv == (
        "dnf", "-y", "--setopt=exit_on_lock=True", "--setopt=install_weak_deps=False",
        "upgrade", "--exclude=fake-sudo", "--",
        "fake-openssl-libs-1:1.1-1.x86_64", "fake-curl-0:1.1-1.x86_64",
    )


def test_zypper_argv() -> None:
    cmd = zypper_update([PackageSpec("fake-openssl-libs", "x86_64", "1:1.1-1")], 10)
    assert cmd.argv == ("zypper", "--non-interactive", "--no-refresh", "update",
                        "--no-recommends", "--auto-agree-with-licenses", "--",
                        "fake-openssl-libs.x86_64=1:1.1-1")
    assert ("ZYPP_LOCK_TIMEOUT", "10") in cmd.env
    assert cmd.ok_exit == {0, 102, 103}
    assert zypper_lock("addlock", ["a", "b"], 5).argv[-4:] == ("addlock", "--", "a", "b")


@pytest.mark.parametrize("spec", [
    PackageSpec("foo;rm -rf /", "amd64", "1.0"),
    PackageSpec("-oAPT::x", "amd64", "1.0"),
    PackageSpec("foo", "amd64", "1.0 $(id)"),
    PackageSpec("foo", "amd64;x", "1.0"),
    PackageSpec("Foo", "amd64", "1.0"),
])
def test_apt_refuses_bad_input(spec: PackageSpec) -> None:
    with pytest.raises(ValueError):
        apt_install([spec], 5)


@pytest.mark.parametrize("spec", [
    PackageSpec("-x", "x86_64", "1.0-1"),
    PackageSpec("foo", "x86_64", "1.0"),  # no release
    PackageSpec("foo", "x86_64", "1.0-1`id`"),
    PackageSpec("foo bar", "x86_64", "1.0-1"),
])
def test_rpm_refuses_bad_input(spec: PackageSpec) -> None:
    with pytest.raises(ValueError):
        dnf_upgrade([spec])
    with pytest.raises(ValueError):
        zypper_update([spec], 5)


def test_empty_install_refused() -> None:
    with pytest.raises(ValueError):
        apt_install([], 5)
    with pytest.raises(ValueError):
        apt_mark("purge", ["x"])


def test_parse_zypper_locks() -> None:
    text = ("\n# | Name      | Type    | Repository\n--+-----------+---------+-----------\n"
            "1 | fake-curl | package | (any)\n2 | fake-sudo | package | (any)\n")
    assert parse_zypper_locks(text) == {"fake-curl", "fake-sudo"}
    assert parse_zypper_locks("There are no package locks defined.\n") == frozenset()


def _result(rc: int, stderr: str) -> CommandResult:
    return CommandResult("cmd", rc, "", stderr, 0.1)


def test_apt_failures() -> None:
    reason, _ = apt_failure(_result(100, "E: Could not get lock /var/lib/dpkg/lock-frontend. "
                                         "It is held by process 454 (apt-get)\n"), 5)
    assert reason == ("LOCKED: dpkg lock held by process 454 (apt-get) for more than 5 s "
                      "(/var/lib/dpkg/lock-frontend)")
    reason, _ = apt_failure(_result(100, "E: dpkg was interrupted, you must manually run "
                                         "'dpkg --configure -a' to correct the problem.\n"), 5)
    assert reason.startswith("DPKG_INTERRUPTED: ") and "dpkg --configure -a" in reason
    reason, errors = apt_failure(_result(100, "E: Version '9.9' for 'fake-curl' was not found"),
                                 5)
    assert errors == {"fake-curl": "version 9.9 not found"}


def test_zypper_lock_failure() -> None:
    text = ("System management is locked by the application with pid 77 (zypper).\n"
            "Close this application before trying again.")
    assert zypper_failure(_result(7, text), 3) == (
        "LOCKED: zypp lock held by process 77 (zypper) for more than 3 s")


def test_post_install_records() -> None:
    def rec(name: str, state: PatchState) -> PatchRecord:
        return PatchRecord(name, "amd64", "1.0", None, state)

    request = InstallRequest(packages=(PackageSpec("a", "amd64", "1.1"),
                                       PackageSpec("b", "amd64", "1.1")))
    before = {("a", "amd64"): "1.0", ("b", "amd64"): "1.0", ("c", "amd64"): "1.0"}
    after = {("a", "amd64"): "1.1", ("b", "amd64"): "1.0", ("c", "amd64"): "1.0",
             ("dep", "amd64"): "2.0"}
    records, installed = post_install_records(
        [rec("a", PatchState.INSTALLED), rec("b", PatchState.MISSING),
         rec("c", PatchState.MISSING), rec("dep", PatchState.INSTALLED_OTHER)],
        request, before, after)
    assert [r.state for r in records] == [PatchState.INSTALLED_PENDING_REBOOT,
                                          PatchState.FAILED, PatchState.MISSING,
                                          PatchState.INSTALLED_OTHER]
    assert installed == {("a", "amd64", "1.1"), ("dep", "amd64", "2.0")}
