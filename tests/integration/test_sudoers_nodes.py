"""Least privilege on real nodes (issue 16): a scan user and an install user whose sudo is
exactly the rules ``patchfleet sudoers`` prints. They scan (with refresh) and install (with
hooks, the post-install report and a reboot on the Debian node), and sudo refuses them
anything else.

The nodes get Debian's own sudo (every test node is a Debian chroot, whatever package manager
it runs), fetched once with ``apt-get download sudo`` into the test-node cache.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patchfleet.config.hooks import load_hooks
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.rollout import InstallOptions, RolloutNodeResult, rollout_node
from patchfleet.ops.scan import scan_node
from patchfleet.ops.sudoers import render_sudoers
from patchfleet.transport.connector import SSHConnector

SCAN, INSTALL = "pf-scan", "pf-install"
DEB_CACHE = Path("/var/cache/patchfleet-testnodes/debs")
_ACCEPTED = re.compile(r"Accepted publickey for (\S+) from 127\.0\.0\.1")
HOOK = 'echo "$(id -u) $PATCHFLEET_RUN_ID $PATCHFLEET_OPERATION" > /root/pre-hook'


@pytest.fixture(scope="module")
def sudo_deb() -> Path:
    """Debian's sudo package (downloaded once; the host's apt lists must be current)."""
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(DEB_CACHE.glob("sudo_*.deb"))
    if not found:
        got = subprocess.run(["apt-get", "download", "sudo"], cwd=DEB_CACHE, text=True,
                             capture_output=True, check=False)
        found = sorted(DEB_CACHE.glob("sudo_*.deb"))
        if not found:
            pytest.fail(f"could not download Debian's sudo package ({got.stderr.strip()}); "
                        "run 'apt-get update' on this machine first", pytrace=False)
    return found[-1]


def _put(fleet: Any, node: str, src: Path, dest: str) -> None:
    """Copy ``src`` into the running node (through its init's root directory)."""
    pid1 = json.loads((fleet.manager.node_dir(node) / "run.json").read_text())["pid1"]
    shutil.copyfile(src, f"/proc/{pid1}/root{dest}")


def restrict(fleet: Any, node: str, deb: Path, rules: str, tmp: Path) -> None:
    """Install sudo, create both users (root's authorized key) and install ``rules`` (checked
    by the node's own visudo first)."""
    _put(fleet, node, deb, "/tmp/sudo.deb")
    (tmp / "patchfleet.sudoers").write_text(rules)
    _put(fleet, node, tmp / "patchfleet.sudoers", "/tmp/patchfleet.sudoers")
    users = " && ".join(
        f"useradd -m {u} && install -d -o {u} -m 700 /home/{u}/.ssh && "
        f"install -o {u} -m 600 /root/.ssh/authorized_keys /home/{u}/.ssh/"
        for u in (SCAN, INSTALL))
    fleet.ssh(node, "dpkg -i /tmp/sudo.deb >/dev/null && visudo -c -f /tmp/patchfleet.sudoers "
              "&& install -m 0440 /tmp/patchfleet.sudoers /etc/sudoers.d/patchfleet && "
              f"visudo -c -q && {users}", check=True)


def as_user(fleet: Any, node: str, user: str, command: str) -> subprocess.CompletedProcess[str]:
    return fleet.ssh(node, f"su {user} -c {shlex.quote(command)}")


def inventory(fleet: Any, node: str, tmp: Path, sudo: bool = True, user: str = SCAN) -> Path:
    path = tmp / f"inv-{user}-{sudo}.yaml"
    path.write_text(
        f"defaults: {{known_hosts: {fleet.known_hosts}, identity_file: {fleet.identity_file}, "
        f"user: {user}, install_user: {INSTALL}, sudo: {str(sudo).lower()}}}\n"
        f"nodes:\n  - {{id: {node}, host: 127.0.0.1, port: {fleet.ports[node]}}}\n")
    return path


def scan_and_install(fleet: Any, node: str, tmp: Path, options: InstallOptions
                     ) -> tuple[Any, RolloutNodeResult, list[str], list[str]]:
    """A refreshing scan as the scan user, then a rollout as the install user; the logins
    sshd saw for each."""
    plan = plan_scan(inventory=str(inventory(fleet, node, tmp)), store=str(tmp / "store"),
                     refresh=True)
    (target,) = plan.nodes
    console = fleet.manager.node_dir(node) / "console.log"

    def logins() -> list[str]:
        return _ACCEPTED.findall(console.read_text(errors="replace"))

    async def go() -> tuple[Any, RolloutNodeResult, list[str], list[str]]:
        with SSHConnector() as connector:
            before = len(logins())
            scanned = await scan_node(target, plan.registry, connector, plan.options)
            after_scan = logins()
            done = await rollout_node(target, plan.registry, connector, plan.options, options)
            final = logins()  # a reboot starts a new console.log: then it is all the install's
            installs = final[len(after_scan):] if final[:len(after_scan)] == after_scan \
                else final
            return scanned, done, after_scan[before:], installs

    return asyncio.run(go())


def scan_as(fleet: Any, node: str, tmp: Path, *, sudo: bool, user: str = SCAN) -> Any:
    """A scan as ``user``: through sudo with refresh, or never through sudo (``sudo: false``)
    with --no-refresh."""
    plan = plan_scan(inventory=str(inventory(fleet, node, tmp, sudo=sudo, user=user)),
                     store=str(tmp / f"store-{user}-{sudo}"), refresh=sudo)

    async def go() -> Any:
        with SSHConnector() as connector:
            return await scan_node(plan.nodes[0], plan.registry, connector, plan.options)

    return asyncio.run(go())


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and "sudo:" in result.stderr


APT_INSTALL = ("sudo -n -- apt-get -y -q -o DPkg::Lock::Timeout=60 -o "
               "Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "
               "--only-upgrade --no-install-recommends -- ")


def test_debian_node_scans_installs_reboots_and_refuses_the_rest(
        clean: Any, sudo_deb: Path, tmp_path: Path) -> None:
    node = "deb-a"
    hooks = load_hooks({"pre_install": {"command": HOOK}}, "hooks.yaml")
    rules = render_sudoers(scan_user=SCAN, install_user=INSTALL, families=("apt",),
                           hooks=hooks)
    restrict(clean, node, sudo_deb, rules, tmp_path)
    plain = scan_as(clean, node, tmp_path, sudo=False)
    assert not plain.failed and not plain.warnings, (plain.failure_reason, plain.warnings)
    scanned, done, scan_logins, install_logins = scan_and_install(
        clean, node, tmp_path, InstallOptions(reboot_option="RebootIfNeeded", hooks=hooks,
                                              run_id="run-16"))
    # the scan refreshed through sudo as the scan user, and saw the updates
    assert not scanned.failed, scanned.failure_reason
    assert not [w for w in scanned.warnings if "refresh" in w.lower()], scanned.warnings
    assert scanned.summary.missing_count > 0
    assert set(scan_logins) == {SCAN}
    # the install: every connection as the install user; hook as root with its environment;
    # installed; the post-install report ran (its probes are privileged); rebooted
    assert set(install_logins) == {INSTALL}
    result = done.result
    assert done.hooks and done.hooks[0].ok, done.hooks
    assert clean.ssh(node, "cat /root/pre-hook").stdout.split() == ["0", "run-16", "Install"]
    assert done.rebooted, done.reboot_reason
    # fake-held stays held (patchfleet never lifts an operator's hold): the only one missing
    assert {r.package for r in result.records if r.state.value == "MISSING"} == {"fake-held"}
    assert not result.failed or result.failure_reason.startswith("HELD: "), result.failure_reason
    versions = clean.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n' fake-curl "
                         "libfakessl3").stdout.split("\n")
    assert "fake-curl 1.1" in versions and "libfakessl3 1.1" in versions
    assert not [w for w in result.warnings if "exited" in w or "sudo" in w], result.warnings

    # and nothing else
    refusals = {
        "a shell": as_user(clean, node, INSTALL, "sudo -n true"),
        "an option after --": as_user(clean, node, INSTALL,
                                      APT_INSTALL + "fake-curl -o APT::Update::Pre-Invoke::=id"),
        "a local .deb": as_user(clean, node, INSTALL, APT_INSTALL + "/tmp/sudo.deb"),
        "DEBIAN_FRONTEND": as_user(clean, node, INSTALL, "sudo -n DEBIAN_FRONTEND=x -- "
                                   "apt-mark hold -- fake-curl"),
        "another hook": as_user(clean, node, INSTALL, "sudo -n -- sh -c id patchfleet-hook"),
        "install as the scan user": as_user(clean, node, SCAN, APT_INSTALL + "fake-curl"),
        "reboot as the scan user": as_user(clean, node, SCAN, "sudo -n -- systemctl reboot"),
    }
    assert {what for what, r in refusals.items() if not _refused(r)} == set()
    # the scan user's own rule still works by hand, with patchfleet's environment
    own = as_user(clean, node, SCAN, "sudo -n LC_ALL=C TZ=UTC -- apt-get -q -o "
                  "DPkg::Lock::Timeout=60 update")
    assert own.returncode == 0, own.stderr
    # the usual unrestricted sudo takes the same command lines (sudo sets the environment)
    clean.ssh(node, "useradd -m pf-all && install -d -o pf-all -m 700 /home/pf-all/.ssh && "
              "install -o pf-all -m 600 /root/.ssh/authorized_keys /home/pf-all/.ssh/ && "
              "echo 'pf-all ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/all && "
              "chmod 0440 /etc/sudoers.d/all", check=True)
    unrestricted = scan_as(clean, node, tmp_path, sudo=True, user="pf-all")
    assert not unrestricted.failed, unrestricted.failure_reason
    assert not [w for w in unrestricted.warnings if "refresh" in w.lower()]


@pytest.mark.parametrize(("node", "family"), [("rocky-a", "dnf"), ("sles-a", "zypper")])
def test_rpm_nodes_scan_and_install_with_only_their_rules(
        clean_rpm: Any, sudo_deb: Path, tmp_path: Path, node: str, family: str) -> None:
    rules = render_sudoers(scan_user=SCAN, install_user=INSTALL, families=(family,))
    restrict(clean_rpm, node, sudo_deb, rules, tmp_path)
    plain = scan_as(clean_rpm, node, tmp_path, sudo=False)  # no root without refresh
    assert not plain.failed, plain.failure_reason
    assert plain.summary.missing_count > 0
    scanned, done, scan_logins, install_logins = scan_and_install(
        clean_rpm, node, tmp_path, InstallOptions(reboot_option="NoReboot", run_id="run-16"))
    assert not scanned.failed, scanned.failure_reason
    assert not [w for w in scanned.warnings if "refresh" in w.lower()], scanned.warnings
    assert scanned.summary.missing_count > 0
    assert set(scan_logins) == {SCAN} and set(install_logins) == {INSTALL}
    result = done.result
    assert not result.failed, result.failure_reason
    assert result.summary.missing_count == 0
    assert result.summary.installed_pending_reboot_count > 0
    assert not [w for w in result.warnings if "exited" in w or "sudo" in w], result.warnings
    # the restart report ran through sudo (a refusal would be a "post-install report" warning)
    if family == "dnf":  # the upgraded fake-daemon still runs its deleted binary
        assert any("fake-daemon" in line for line in result.restart_needed), \
            result.restart_needed
    assert _refused(as_user(clean_rpm, node, INSTALL, "sudo -n -- rpm -e fake-curl"))
    assert _refused(as_user(clean_rpm, node, SCAN, "sudo -n -- find /proc -maxdepth 1"))
    assert _refused(as_user(clean_rpm, node, SCAN, "sudo -n -- rpm -e fake-curl"))
