"""The test fleet itself: real sshd, real apt, the expected updates, reboots and isolation.

Other integration tests trust these nodes to look like patched-or-not Debian 12 hosts; these
tests pin down what they can rely on.
"""

from __future__ import annotations

import re

import pytest

from patchfleet.config.inventory import load_inventory

pytestmark = pytest.mark.nodes

# package -> (suites that carry the candidate, candidate version), as `apt list --upgradable`
# prints them on a node fresh from the default variant.
EXPECTED_UPGRADES = {
    "libfakessl3": ("stable-security", "1.1"),
    "fake-sudo": ("stable-security", "1.1"),
    "fake-curl": ("stable-updates,stable-security", "1.1"),
    "fake-coreutils": ("stable-updates", "1.1"),
    "fake-editor": ("stable-updates", "1.1"),
    "fake-tzdata": ("stable-updates", "1.1"),
    "fake-held": ("stable-security", "1.1"),
    "fake-daemon": ("stable-updates", "1.1"),
    "fake-extra": ("stable-security", "1.1"),
    "linux-image-fake": ("stable-security", "1.1"),
}
UPGRADABLE_RE = re.compile(r"^(\S+)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$")


def upgradable(fleet, node: str) -> dict[str, tuple[str, str]]:
    out = fleet.ssh(node, "apt list --upgradable 2>/dev/null", check=True).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith("Listing"):
            continue
        m = UPGRADABLE_RE.match(line)
        assert m, f"unexpected line from apt list: {line!r}"
        found[m[1]] = (m[2], m[3])
        assert m[5] == "1.0", line
    return found


def test_every_node_answers_over_ssh_with_its_own_hostname(fleet):
    for node in fleet.names:
        proc = fleet.ssh(node, "hostname; cat /etc/hostname; id -u")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [node, node, "0"]


def test_inventory_is_a_valid_patchfleet_inventory(fleet):
    inventory = load_inventory(fleet.inventory)
    resolved = {n.id: n for n in inventory.resolved()}
    assert set(resolved) == set(fleet.names)
    for name, node in resolved.items():
        assert (node.host, node.port, node.user) == ("127.0.0.1", fleet.ports[name], "root")
        assert node.identity_file == str(fleet.identity_file)
        assert node.known_hosts == str(fleet.known_hosts)
        assert node.tags == fleet.tags[name]
    known = fleet.known_hosts.read_text().splitlines()
    assert sorted(line.split()[0] for line in known) == sorted(
        f"[127.0.0.1]:{port}" for port in fleet.ports.values()
    )
    assert all(line.split()[1] == "ssh-ed25519" for line in known)


def test_nodes_look_like_debian_12_and_only_see_the_local_archive(fleet):
    proc = fleet.ssh("deb-a", ". /etc/os-release; echo $ID $VERSION_ID; apt-cache policy")
    assert proc.stdout.splitlines()[0] == "debian 12"
    sources = re.findall(r"^ +\d+ (\S+) (\S+) \S+ Packages$", proc.stdout, re.M)
    assert sorted(set(sources)) == [
        ("file:/srv/repo/debian", "bookworm-updates/main"),
        ("file:/srv/repo/debian", "bookworm/main"),
        ("file:/srv/repo/debian-security", "bookworm-security/main"),
    ]
    assert "o=Debian,a=stable-security,n=bookworm-security,l=Debian-Security" in proc.stdout
    assert "o=Debian,a=stable-updates,n=bookworm-updates,l=Debian" in proc.stdout


def test_apt_lists_the_expected_upgrades_on_every_node(fleet):
    for node in fleet.names:
        assert upgradable(fleet, node) == EXPECTED_UPGRADES


def test_installed_packages_have_the_1_0_versions_and_one_is_not_installed(fleet):
    proc = fleet.ssh("deb-a", "dpkg-query -W -f '${Package} ${Version} ${Priority} ${Section}\\n'"
                              " 'fake-*' 'libfake*' 'linux-image-*'")
    installed = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()
                 if len(line.split()) == 4}
    assert installed["fake-coreutils"] == ["1.0", "required", "utils"]
    assert installed["libfakessl3"] == ["1.0", "important", "libs"]
    assert installed["fake-tzdata"] == ["1.0", "required", "localization"]
    assert installed["fake-stable-only"] == ["1.0", "optional", "misc"]
    assert installed["linux-image-1.0-fake"] == ["1.0", "optional", "kernel"]
    assert "fake-notinstalled" not in installed
    policy = fleet.ssh("deb-a", "apt-cache policy fake-notinstalled").stdout
    assert "Installed: (none)" in policy and "Candidate: 1.1" in policy


def test_fake_held_is_held_and_simulated_dist_upgrade_keeps_it_back(fleet):
    assert fleet.ssh("deb-b", "apt-mark showhold").stdout.split() == ["fake-held"]
    sim = fleet.ssh("deb-b", "apt-get -s dist-upgrade").stdout
    assert "The following packages have been kept back:\n  fake-held" in sim
    assert "Inst libfakessl3 [1.0] (1.1 Debian-Security:12/stable-security" in sim
    assert "Inst linux-image-1.1-fake (1.1 Debian-Security:12/stable-security" in sim


def test_nodes_run_sshd_as_pid_1_and_the_fake_daemon(fleet):
    proc = fleet.ssh("deb-a", "cat /proc/1/comm; ps -eo comm=")
    lines = proc.stdout.split()
    assert lines[0] == "sshd"
    assert "fake-daemon" in lines[1:]


def test_reboot_clears_reboot_required_and_changes_boot_id(fleet):
    node = "deb-c"
    try:
        fleet.ssh(node, "apt-get -q -y install linux-image-fake", check=True)
        before = fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id; "
                                 "cat /var/run/reboot-required /var/run/reboot-required.pkgs",
                           check=True).stdout.splitlines()
        assert before[1:] == ["*** System restart required ***", "linux-image-1.1-fake"]
        port = fleet.ports[node]

        fleet.reboot(node)

        after = fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id; "
                                "ls /var/run/reboot-required 2>&1; cut -d. -f1 /proc/uptime; "
                                "dpkg-query -W -f '${Version}' linux-image-fake",
                          check=True).stdout.splitlines()
        assert re.fullmatch(r"[0-9a-f-]{36}", after[0])
        assert after[0] != before[0]
        assert "No such file or directory" in after[1]
        assert int(after[2]) < 60  # uptime restarts with the node
        assert after[3] == "1.1"  # the disk survives a reboot
        assert fleet.ports[node] == port
    finally:
        fleet.reset(node)
    assert "linux-image-fake" in upgradable(fleet, node)


def test_nodes_are_isolated_from_each_other(fleet):
    query = "dpkg-query -W -f '${db:Status-Status}' fake-notinstalled"
    try:
        fleet.ssh("deb-b", "apt-get -q -y install fake-notinstalled && touch /root/only-on-b",
                  check=True)
        assert fleet.ssh("deb-b", query).stdout == "installed"
        assert fleet.ssh("deb-b", "ls /root").stdout.split() == ["only-on-b"]
        on_a = fleet.ssh("deb-a", query)
        assert on_a.returncode == 1
        assert "no packages found matching fake-notinstalled" in on_a.stderr
        assert fleet.ssh("deb-a", "ls /root").stdout.split() == []
        # each node sees only its own processes
        procs = fleet.ssh("deb-a", "ps -eo comm=").stdout.split()
        assert set(procs) <= {"sshd", "sleep", "fake-daemon", "bash", "ps"}, procs
    finally:
        fleet.reset("deb-b")
    assert fleet.ssh("deb-b", query).returncode == 1
    assert fleet.ssh("deb-b", "ls /root").stdout.split() == []


def test_a_changed_host_key_is_refused_until_trusted(fleet):
    node = "deb-a"
    try:
        fleet.rekey(node)
        refused = fleet.ssh(node, "true")
        assert refused.returncode == 255
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    finally:
        fleet.trust(node)
    assert fleet.ssh(node, "true").returncode == 0
