"""Scan-and-install on real Debian test nodes over SSH: scan, install the approved set with
:func:`patchfleet.ops.install.install_node`, then check the node independently with dpkg-query."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import install_runs
import pytest
from lock_holders import apt_lock_held

from patchfleet.domain.records import PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.ops.install import InstallNodeResult

NODE = "deb-a"
SECURITY_APPROVED = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "linux-image-fake"}


def scan_and_install(fleet: Any, tmp_path: Path, baseline: str | None = None,
                     block: tuple[str, ...] = (), lock_timeout: int = 60,
                     during: Any = None) -> tuple[NodeResult, InstallNodeResult]:
    return install_runs.scan_and_install(fleet, tmp_path, NODE, baseline, block, lock_timeout,
                                         during)


def dpkg_versions(fleet: Any) -> dict[str, str]:
    out = fleet.ssh(NODE, "dpkg-query -W -f '${Package} ${db:Status-Status} ${Version}\\n'",
                    check=True).stdout
    return {n: v for n, s, v in (ln.split() for ln in out.splitlines()) if s == "installed"}


def holds(fleet: Any) -> set[str]:
    return set(fleet.ssh(NODE, "apt-mark showhold", check=True).stdout.split())


def states(result: NodeResult) -> dict[str, PatchState]:
    return {r.package: r.state for r in result.records if "fake" in r.package}


def baseline_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\noperating_system: DEBIAN\n" + textwrap.dedent(body))
    return str(path)


@pytest.fixture
def node(fleet: Any) -> Iterator[Any]:
    yield fleet
    fleet.reset(NODE)


def test_security_only_install(node: Any, tmp_path: Path) -> None:
    before = dpkg_versions(node)
    t0 = time.perf_counter()
    scanned, done = scan_and_install(node, tmp_path)
    elapsed = time.perf_counter() - t0
    assert {r.package for r in scanned.records if r.state is PatchState.MISSING} == (
        SECURITY_APPROVED | {"fake-held"})

    after = dpkg_versions(node)
    for name in SECURITY_APPROVED:
        assert after[name] == "1.1", name
    assert after["fake-held"] == "1.0"
    assert after["linux-image-1.1-fake"] == "1.1"  # the new dependency
    changed = SECURITY_APPROVED | {"linux-image-1.1-fake"}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }, "only the approved set and its new dependency changed"
    assert holds(node) == {"fake-held"}  # the operator's hold stays

    o = done.outcome
    assert not o.ok and o.reason and o.reason.startswith("HELD:") and "fake-held" in o.reason
    assert o.package_errors == {"fake-held": "held"}
    assert o.reboot_required  # linux-image-1.1-fake's postinst
    s = states(done.result)
    # Installed by this run: pending reboot. The new kernel package is not approved (a
    # dependency) but /var/run/reboot-required.pkgs names it: pending too (the scan's rule).
    assert {n for n, st in s.items() if st is PatchState.INSTALLED_PENDING_REBOOT} == (
        SECURITY_APPROVED | {"linux-image-1.1-fake"})
    assert s["fake-held"] is PatchState.FAILED
    assert s["fake-coreutils"] is PatchState.INSTALLED_OTHER
    assert ("linux-image-1.1-fake", "amd64", "1.1") in done.installed
    assert {n for n, _, _ in done.installed} == SECURITY_APPROVED | {"linux-image-1.1-fake"}
    print(f"apt security install: {elapsed:.1f}s (scan + install + rescan)")


def test_non_security_enabled(node: Any, tmp_path: Path) -> None:
    path = baseline_file(tmp_path, "all-debian", """\
        approval_rules:
          - patch_filters:
              - {key: PRIORITY, values: [Required, Important, Standard, Optional, Extra]}
            enable_non_security: true
        """)
    scan_and_install(node, tmp_path, baseline=path)
    after = dpkg_versions(node)
    for name in SECURITY_APPROVED | {"fake-coreutils", "fake-editor", "fake-tzdata",
                                     "fake-daemon"}:
        assert after[name] == "1.1", name
    assert after["fake-held"] == "1.0" and after["fake-stable-only"] == "1.0"


def test_block_rejected(node: Any, tmp_path: Path) -> None:
    path = baseline_file(tmp_path, "block", """\
        approval_rules:
          - patch_filters:
              - {key: PRIORITY, values: [Required, Important, Standard, Optional, Extra]}
        rejected_patches: [libfakessl3]
        rejected_patches_action: BLOCK
        """)
    scanned, done = scan_and_install(node, tmp_path, baseline=path,
                                     block=("libfakessl3",))
    assert states(scanned)["libfakessl3"] is PatchState.INSTALLED_REJECTED
    after = dpkg_versions(node)
    assert after["libfakessl3"] == "1.0"
    assert after["fake-sudo"] == "1.1"
    assert holds(node) == {"fake-held"}  # our hold was lifted, the operator's kept
    assert states(done.result)["libfakessl3"] is PatchState.INSTALLED_REJECTED


def test_allow_as_dependency(node: Any, tmp_path: Path) -> None:
    path = baseline_file(tmp_path, "allow", """\
        approval_rules:
          - patch_filters:
              - {key: PRIORITY, values: [Required, Important, Standard, Optional, Extra]}
        rejected_patches: [libfakessl3]
        rejected_patches_action: ALLOW_AS_DEPENDENCY
        """)
    _, done = scan_and_install(node, tmp_path, baseline=path)
    after = dpkg_versions(node)
    assert after["libfakessl3"] == "1.0"  # rejected, and nothing needed it
    assert after["fake-curl"] == "1.1"
    assert states(done.result)["libfakessl3"] is PatchState.INSTALLED_OTHER


def test_dpkg_lock_held(node: Any, tmp_path: Path) -> None:
    # A real apt-get holding /var/lib/dpkg/lock-frontend: its DPkg::Pre-Invoke sleeps inside
    # the locked section.
    with apt_lock_held(node, NODE, "DPkg::Pre-Invoke::",
                       "-y install --reinstall fake-stable-only"):
        before = dpkg_versions(node)
        _, done = scan_and_install(node, tmp_path, lock_timeout=2)
        o = done.outcome
        assert not o.ok
        assert o.reason and o.reason.startswith("LOCKED: dpkg lock held by process ")
        assert "(apt-get)" in o.reason
        assert {k: v for k, v in dpkg_versions(node).items()} == before
        assert states(done.result)["libfakessl3"] is PatchState.FAILED


def test_connection_lost_mid_install(node: Any, tmp_path: Path) -> None:
    # Make dpkg slow from the node's side (a Pre-Invoke hook in apt.conf.d), then, while the
    # install waits in it, kill the ssh session carrying it and the install itself (what a
    # node crash does to both). The session's sshd processes die first, so sshd can never
    # report the install's exit status before the connection drops (killing both in one go
    # raced: sometimes sshd still sent "exited -9"). The node manager is not thread-safe, so
    # the killer uses ssh.
    node.ssh(NODE, "echo 'DPkg::Pre-Invoke { \"sleep 30\"; };' > /etc/apt/apt.conf.d/99slow",
             check=True)
    kill = (
        "for i in $(seq 100); do p=$(pgrep -xo apt-get) && break; sleep 0.2; done; "
        "g=$(ps -o pgid= -p $p | tr -d ' '); s=$p; up=; "
        "while [ \"$(ps -o ppid= -p $s | tr -d ' ')\" != 1 ]; do s=$(ps -o ppid= -p $s "
        "| tr -d ' '); case $(ps -o comm= -p $s) in sshd*) up=\"$up $s\";; esac; "
        "done; kill -9 $up && kill -9 -- -$g"
    )
    _, done = scan_and_install(node, tmp_path, during=lambda: node.ssh(NODE, kill, check=True))
    o = done.outcome
    assert not o.ok
    assert o.reason and o.reason.startswith(
        "UNREACHABLE: connection lost during install; the next scan tells the truth")
    # The rescan (a new connection) tells the truth: nothing was installed.
    assert dpkg_versions(node)["libfakessl3"] == "1.0"
    assert not done.result.failed
    assert states(done.result)["libfakessl3"] is PatchState.FAILED
    assert done.installed == frozenset()


def test_apt_command_runs_as_rendered(fleet: Any) -> None:
    # The exact install command, rendered as the transport sends it, is accepted by the node's
    # apt-get (simulated).
    from patchfleet.managers.apt import apt_install
    from patchfleet.managers.base import PackageSpec

    cmd = apt_install([PackageSpec("libfakessl3", "amd64", "1.1")], 5)
    rendered = cmd.render(sudo=False).replace("install --only-upgrade", "-s install --only-upgrade")
    out = fleet.ssh(NODE, rendered)
    assert out.returncode == 0, out.stderr
    assert "Inst libfakessl3 [1.0] (1.1" in out.stdout
