"""Parsers of the POST-INSTALL probes, on golden captures from real nodes and damaged copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.domain.facts import PackageManager
from patchfleet.errors import ParseError
from patchfleet.managers.post_probes import post_install_probes
from patchfleet.managers.registry import support_for
from patchfleet.parsers import restarts
from patchfleet.parsers.restarts import StaleProcess
from patchfleet.transport.base import CommandResult

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "post"
DAEMON = StaleProcess(34, "fake-daemon", "/usr/libexec/fake-daemon")


def out(case: str, probe: str) -> str:
    return (GOLDEN / case / f"{probe}.stdout").read_text()


def test_every_golden_capture_parses_with_an_accepted_exit_status() -> None:
    probes = {p.name: p for support in (support_for(PackageManager.APT),
                                        support_for(PackageManager.DNF),
                                        support_for(PackageManager.ZYPPER))
              for p in post_install_probes(support)}
    seen = 0
    for stdout in GOLDEN.glob("*/*.stdout"):
        probe = probes[stdout.stem]
        status = int(stdout.with_suffix(".exit").read_text())
        assert status in probe.command.ok_exit, stdout
        probe.read(CommandResult(stdout.with_suffix(".cmd").read_text(), status,
                                 stdout.read_text(), stdout.with_suffix(".stderr").read_text(),
                                 0.0))
        seen += 1
    assert seen >= 13


def test_proc_maps_fresh_and_upgraded() -> None:
    assert restarts.parse_proc_maps(out("debian12-fresh", "restart-proc-maps")).processes == ()
    for case in ("debian12-upgraded-uu", "rocky9-upgraded", "sles15-upgraded"):
        state = restarts.parse_proc_maps(out(case, "restart-proc-maps"))
        assert state.processes == (DAEMON,)
        assert state.pids == (34,)


@pytest.mark.parametrize("damage", [
    lambda t: t.replace("/proc/34/maps:", "34\t"),  # not grep -H's FILE:LINE
    lambda t: t.replace("/proc/34/comm:", "/proc/34/status:"),
    lambda t: t + "/proc/34/ma",  # cut in the middle of a line
    lambda t: "garbage\n" + t,
])
def test_proc_maps_damaged(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParseError):
        restarts.parse_proc_maps(damage(out("debian12-upgraded-uu", "restart-proc-maps")))


def test_proc_maps_special_files_and_vanished_processes_are_left_out() -> None:
    real = out("debian12-upgraded-uu", "restart-proc-maps")
    line = next(ln for ln in real.splitlines() if ln.startswith("/proc/34/maps:"))
    # the same mapping line from a process whose comm was not read (it exited), and from a
    # memfd mapping: neither is a package file a restart would fix
    text = (real + line.replace("/proc/34/", "/proc/99/") + "\n"
            + line.replace("/usr/libexec/fake-daemon", "/memfd:pool") + "\n"
            + line.replace("/usr/libexec/fake-daemon", "/opt/a b/lib.so") + "\n")
    state = restarts.parse_proc_maps(text)
    assert state.processes == (StaleProcess(34, "fake-daemon", "/opt/a b/lib.so"), DAEMON)


def test_needrestart_absent() -> None:
    # needrestart is not in the test nodes' archive: only its absence is captured for real
    # (env exits 127 as root; through sudo, sudo says "command not found" and exits 1)
    case = GOLDEN / "debian12-fresh"
    status = int((case / "needrestart-batch.exit").read_text())
    stderr = (case / "needrestart-batch.stderr").read_text()
    assert status == 127
    assert restarts.parse_needrestart_result(status, "", stderr) is None
    assert restarts.parse_needrestart_result(1, "", "sudo: needrestart: command not found\n") \
        is None
    with pytest.raises(ParseError, match="needrestart exited 2"):
        restarts.parse_needrestart_result(2, "", "Error: something else\n")


def test_zypper_ps_on_a_real_node() -> None:
    # the real capture lists no process (zypper ps missed the stale daemon the maps scan finds)
    assert restarts.parse_zypper_ps(out("sles15-upgraded", "zypper-ps")).processes == ()


def test_merge_prefers_rows_with_files() -> None:
    maps = restarts.parse_proc_maps(out("sles15-upgraded", "restart-proc-maps"))
    zps = restarts.RestartState((StaleProcess(34, "fake-daemon", ""),), ("x.service",))
    merged = restarts.merge(maps, zps, None)
    assert merged.processes == (DAEMON,)
    assert merged.services == ("x.service",)


def test_auto_updaters_fresh() -> None:
    au = restarts.parse_auto_updaters(out("debian12-fresh", "auto-updaters"))
    assert au.systemd is False
    assert au.names == ("apt-daily.timer", "apt-daily-upgrade.timer")
    assert "no systemd running" in au.found[0][1]


def test_packagekit_running_or_not_as_the_node_showed() -> None:
    """Captured on a test node with a stand-in packagekitd at the daemon's path, idle and then
    running (tests/golden/post/capture.py): installed, not enabled (no unit), running: no/yes."""
    idle = restarts.parse_auto_updaters(out("debian12-packagekit-idle", "auto-updaters"))
    busy = restarts.parse_auto_updaters(out("debian12-packagekit-running", "auto-updaters"))
    assert dict(idle.found)["packagekit"] == (
        "installed (/usr/libexec/packagekitd); running: no (D-Bus starts it on demand)")
    assert dict(busy.found)["packagekit"] == (
        "installed (/usr/libexec/packagekitd); running: yes (packagekitd)")
    fresh = restarts.parse_auto_updaters(out("debian12-fresh", "auto-updaters"))
    assert "packagekit" not in fresh.names  # nothing installed, nothing claimed
    with pytest.raises(ParseError, match="not an updater process"):
        restarts.parse_auto_updaters(out("debian12-fresh", "auto-updaters").replace(
            "processes: probed\n", "process: packagekitd\n"))


def test_auto_updaters_unattended_upgrades() -> None:
    au = restarts.parse_auto_updaters(out("debian12-upgraded-uu", "auto-updaters"))
    assert au.names[0] == "unattended-upgrades"
    assert au.found[0][1] == (
        'APT::Periodic::Unattended-Upgrade "1" (/etc/apt/apt.conf.d/20auto-upgrades)')


def test_auto_updaters_config_without_package_is_inactive() -> None:
    au = restarts.parse_auto_updaters(out("debian12-uu-config-only", "auto-updaters"))
    assert "unattended-upgrades" not in au.names
    assert au.inactive[0][0] == "unattended-upgrades"
    assert "package not installed" in au.inactive[0][1]


def test_auto_updaters_disabled_by_zero_and_rpm_side() -> None:
    text = out("debian12-upgraded-uu", "auto-updaters").replace(
        "Unattended-Upgrade 1", "Unattended-Upgrade 0")
    au = restarts.parse_auto_updaters(text)
    assert "unattended-upgrades" not in au.names
    rpm = (
        "auto-updaters: 1\nsystemd: running\npackage: dnf-automatic\npackage: PackageKit\n"
        "unit: dnf-automatic-install.timer enabled\nunit: packagekit.service static\n"
        "dnf-automatic-apply: yes\npackagekitd: /usr/libexec/packagekitd\n"
        "suse-online-update: false\nend\n"
    )
    au = restarts.parse_auto_updaters(rpm)
    assert au.names == ("dnf-automatic", "packagekit")
    assert au.found[0][1] == "dnf-automatic-install.timer enabled; apply_updates=yes"
    assert au.inactive == (("suse-automatic-online-update", "AOU_ENABLE_CRONJOB=false"),)


@pytest.mark.parametrize("damage", [
    lambda t: t.replace("end\n", ""),
    lambda t: t.replace("auto-updaters: 1\n", ""),
    lambda t: t.replace("systemd: absent", "systemd: maybe"),
    lambda t: t.replace("timer enabled", "timer sort-of"),
    lambda t: t.replace("package: ", "pkg: "),
    lambda t: t.replace("Unattended-Upgrade 1", "Unattended-Upgrade"),
    lambda t: t.replace("/etc/apt/apt.conf.d/", "/tmp/"),
])
def test_auto_updaters_damaged(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParseError):
        restarts.parse_auto_updaters(damage(out("debian12-upgraded-uu", "auto-updaters")))
