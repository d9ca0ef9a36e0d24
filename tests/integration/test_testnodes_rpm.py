"""The RPM-family test fleet itself: real sshd, real dnf and zypper, the expected updates,
advisories and patches, reboots and isolation.

Other integration tests trust rocky-a and al-a to look like unpatched Rocky 9 / Amazon Linux
2023 hosts and sles-a like an unpatched SLES 15 SP6 host (package set and notices:
``testnodes/rpmrepo.py``); these tests pin down what they can rely on.
"""

from __future__ import annotations

import re

import pytest

from patchfleet.config.inventory import load_inventory

pytestmark = pytest.mark.nodes

DNF_NODES = ("rocky-a", "al-a")
OS_RELEASE = {
    "rocky-a": ("rocky", "9.5", "rhel centos fedora", "Rocky Linux 9.5 (Blue Onyx)"),
    "al-a": ("amzn", "2023", "fedora", "Amazon Linux 2023.6.20250123"),
    "sles-a": ("sles", "15.6", "suse", "SUSE Linux Enterprise Server 15 SP6"),
}
RELEASEVER = {"rocky-a": "9", "al-a": "2023.6.20250123"}

# name.arch -> newest available E:V-R, on every fresh node of either family.
EXPECTED_UPGRADES = {
    "fake-coreutils.x86_64": "0:1.1-1",
    "fake-curl.x86_64": "0:1.1-1",
    "fake-daemon.x86_64": "0:1.1-1",
    "fake-editor.x86_64": "0:1.1-1",
    "fake-libcurl.x86_64": "0:1.1-1",
    "fake-libzypp.x86_64": "0:1.1-1",
    "fake-noadvisory.x86_64": "0:1.1-1",
    "fake-openssl-libs.x86_64": "1:1.1-1",
    "fake-sudo.x86_64": "0:1.2-1",
    "fake-tzdata.noarch": "0:1.1-1",
    "kernel.x86_64": "0:1.1-1",
}
# dnf updateinfo list --all on a fresh dnf node: (advisory, type or severity label, NEVRA).
EXPECTED_DNF_ADVISORIES = {
    ("FAKEBA-2025:0005", "bugfix", "fake-coreutils-1.1-1.x86_64"),
    ("FAKESA-2025:0002", "Important/Sec.", "fake-curl-1.1-1.x86_64"),
    ("FAKEBA-2025:0005", "bugfix", "fake-daemon-1.1-1.x86_64"),
    ("FAKEEA-2025:0006", "enhancement", "fake-editor-1.1-1.x86_64"),
    ("FAKESA-2025:0002", "Important/Sec.", "fake-libcurl-1.1-1.x86_64"),
    ("FAKEBA-2025:0009", "bugfix", "fake-libzypp-1.1-1.x86_64"),
    ("FAKESA-2025:0001", "Critical/Sec.", "fake-openssl-libs-1:1.1-1.x86_64"),
    ("FAKESA-2025:0004", "Low/Sec.", "fake-sudo-1.1-1.x86_64"),
    ("FAKEBA-2025:0008", "bugfix", "fake-sudo-1.2-1.x86_64"),
    ("FAKEBA-2025:0005", "bugfix", "fake-tzdata-1.1-1.noarch"),
    ("FAKESA-2025:0003", "Moderate/Sec.", "kernel-1.1-1.x86_64"),
}
# zypper list-patches --all on a fresh zypper node: name -> (category, severity, status).
EXPECTED_PATCHES = {
    "FAKE-SLE-15-SP6-2025-1": ("security", "critical", "needed"),
    "FAKE-SLE-15-SP6-2025-2": ("security", "important", "needed"),
    "FAKE-SLE-15-SP6-2025-3": ("security", "moderate", "needed"),
    "FAKE-SLE-15-SP6-2025-4": ("security", "low", "needed"),
    "FAKE-SLE-15-SP6-2025-5": ("recommended", "moderate", "needed"),
    "FAKE-SLE-15-SP6-2025-6": ("optional", "low", "optional"),
    "FAKE-SLE-15-SP6-2025-7": ("feature", "moderate", "not-needed"),
    "FAKE-SLE-15-SP6-2025-8": ("recommended", "low", "needed"),
    "FAKE-SLE-15-SP6-2025-9": ("recommended", "important", "needed"),
    "FAKE-SLE-15-SP6-2025-10": ("recommended", "moderate", "not-needed"),
}
INSTALLED_AT_START = {
    "fake-coreutils", "fake-curl", "fake-daemon", "fake-editor", "fake-libcurl", "fake-libzypp",
    "fake-noadvisory", "fake-oldname", "fake-openssl-libs", "fake-stable-only", "fake-sudo",
    "fake-tzdata", "kernel",
}
XML_UPDATE = re.compile(r"<update (kind=\"[a-z]+\"[^>]*)>")
XML_ATTR = re.compile(r'([a-z-]+)="([^"]*)"')


def dnf_upgrades(rpm_fleet, node: str) -> dict[str, str]:
    out = rpm_fleet.ssh(node, "dnf -q -C repoquery --upgrades --latest-limit=1 "
                              "--qf '%{name}.%{arch} %{epoch}:%{version}-%{release}'",
                        check=True).stdout
    return dict(line.split() for line in out.splitlines())


def zypper_updates(rpm_fleet, node: str, what: str) -> list[dict[str, str]]:
    out = rpm_fleet.ssh(node, f"zypper --xmlout -n --no-refresh {what}", check=True).stdout
    return [dict(XML_ATTR.findall(m)) for m in XML_UPDATE.findall(out)]


def test_every_node_answers_over_ssh_with_its_own_hostname_and_os(rpm_fleet):
    for node, (os_id, version, like, pretty) in OS_RELEASE.items():
        proc = rpm_fleet.ssh(node, "hostname; id -u; . /etc/os-release; "
                                   "echo \"$ID|$VERSION_ID|$ID_LIKE|$PRETTY_NAME\"")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [node, "0", f"{os_id}|{version}|{like}|{pretty}"]


def test_inventory_lists_the_three_nodes_with_their_patch_groups(rpm_fleet):
    resolved = {n.id: n for n in load_inventory(rpm_fleet.inventory).resolved()}
    assert set(resolved) == {"rocky-a", "al-a", "sles-a"}
    for name, node in resolved.items():
        assert (node.host, node.port, node.user) == ("127.0.0.1", rpm_fleet.ports[name], "root")
        assert node.tags == rpm_fleet.tags[name]
    assert rpm_fleet.variants == {"rocky-a": "rocky9", "al-a": "al2023", "sles-a": "sles15"}


def test_rpm_database_holds_the_1_0_packages_and_the_release_package(rpm_fleet):
    release = {"rocky-a": "rocky-release", "al-a": "system-release", "sles-a": "sles-release"}
    for node, release_pkg in release.items():
        out = rpm_fleet.ssh(node, "rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'",
                            check=True).stdout
        installed = dict(line.split() for line in out.splitlines())
        assert set(installed) == INSTALLED_AT_START | {release_pkg}
        assert installed["fake-openssl-libs"] == "1:1.0-1"
        assert installed["kernel"] == "0:1.0-1"
        # rpm's database lives where RHEL and SUSE keep it, not in Debian's ~/.rpmdb
        assert rpm_fleet.ssh(node, "rpm -E %_dbpath").stdout.strip() == "/var/lib/rpm"


def test_dnf_detects_the_release_version_and_sees_only_the_local_repos(rpm_fleet):
    for node in DNF_NODES:
        detect = "import dnf.rpm; print(dnf.rpm.detect_releasever('/'))"
        proc = rpm_fleet.ssh(node, "rpm -q --qf '%{NAME}\\n' --whatprovides "
                                   f"'system-release(releasever)'; python3 -c \"{detect}\"; "
                                   "dnf -C repolist")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[1] == RELEASEVER[node]
        assert "Unable to detect release version" not in proc.stderr
        repos = re.findall(r"^(fake-\S+)\s", proc.stdout, re.M)
        assert repos == ["fake-baseos", "fake-updates"]


def test_dnf_sees_the_expected_upgrades_and_the_obsoleting_package(rpm_fleet):
    for node in DNF_NODES:
        assert dnf_upgrades(rpm_fleet, node) == EXPECTED_UPGRADES
        obsoletes = rpm_fleet.ssh(node, "dnf -q -C list --obsoletes", check=True).stdout.split()
        assert obsoletes[:4] == ["Obsoleting", "Packages", "fake-newname.x86_64", "1.1-1"]
        assert "fake-oldname.x86_64" in obsoletes


def test_dnf_lists_the_expected_advisories(rpm_fleet):
    for node in DNF_NODES:
        out = rpm_fleet.ssh(node, "dnf -q -C updateinfo list --all", check=True).stdout
        rows = {tuple(line.split()) for line in out.splitlines()}
        assert rows == EXPECTED_DNF_ADVISORIES  # no "i": nothing installed yet
    info = rpm_fleet.ssh("rocky-a", "dnf -q -C updateinfo info FAKESA-2025:0002 FAKESA-2025:0003",
                         check=True).stdout
    assert re.search(r"CVEs: CVE-2025-10002\n +: CVE-2025-10003\n", info)
    assert "Updated: 2025-06-20 12:00:00" in info  # the later of issued and updated


def test_zypper_sees_the_expected_updates_and_patches(rpm_fleet):
    updates = zypper_updates(rpm_fleet, "sles-a", "list-updates")
    found = {f"{u['name']}.{u['arch']}": u["edition"] for u in updates}
    expected = {name: evr.removeprefix("0:") for name, evr in EXPECTED_UPGRADES.items()}
    assert found == expected
    assert all(u["kind"] == "package" for u in updates)
    patches = {p["name"]: (p["category"], p["severity"], p["status"])
               for p in zypper_updates(rpm_fleet, "sles-a", "list-patches --all")}
    assert patches == EXPECTED_PATCHES
    flags = {p["name"]: (p["interactive"], p["restart"], p["pkgmanager"])
             for p in zypper_updates(rpm_fleet, "sles-a", "list-patches --all")}
    assert flags["FAKE-SLE-15-SP6-2025-3"] == ("true", "true", "false")  # reboot: interactive
    assert flags["FAKE-SLE-15-SP6-2025-9"] == ("false", "false", "true")  # update stack


def test_dnf_upgrade_needs_a_reboot_until_the_node_reboots(rpm_fleet):
    node = "rocky-a"
    try:
        before = rpm_fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id", check=True).stdout
        rpm_fleet.ssh(node, "dnf -q -y upgrade", check=True)
        assert dnf_upgrades(rpm_fleet, node) == {}
        kernels = rpm_fleet.ssh(node, "rpm -q kernel", check=True).stdout.split()
        assert kernels == ["kernel-1.0-1.x86_64", "kernel-1.1-1.x86_64"]  # install-only
        assert rpm_fleet.ssh(node, "rpm -q fake-oldname").returncode == 1  # obsoleted
        pending = rpm_fleet.ssh(node, "dnf -C needs-restarting -r")
        assert pending.returncode == 1
        assert "  * kernel" in pending.stdout
        port = rpm_fleet.ports[node]

        rpm_fleet.reboot(node)

        after = rpm_fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id; cut -d. -f1 "
                                    "/proc/uptime", check=True).stdout.split()
        assert after[0] != before.strip()
        assert int(after[1]) < 60
        cleared = rpm_fleet.ssh(node, "dnf -C needs-restarting -r")
        assert cleared.returncode == 0, cleared.stdout
        assert "Reboot should not be necessary." in cleared.stdout
        assert rpm_fleet.ports[node] == port
    finally:
        rpm_fleet.reset(node)
    assert dnf_upgrades(rpm_fleet, node) == EXPECTED_UPGRADES


def test_zypper_kernel_patch_needs_a_reboot_until_the_node_reboots(rpm_fleet):
    node = "sles-a"
    try:
        skipped = rpm_fleet.ssh(node, "zypper -n patch --category security")
        # the update-stack patch is not security: the kernel patch is interactive and skipped
        assert skipped.returncode == 0, skipped.stdout
        assert "Patch 'FAKE-SLE-15-SP6-2025-3-1' is interactive, skipping." in skipped.stdout
        applied = rpm_fleet.ssh(node, "zypper -n patch --with-interactive --category security")
        assert applied.returncode == 102, applied.stdout
        assert rpm_fleet.ssh(node, "zypper -n needs-rebooting").returncode == 102
        assert rpm_fleet.ssh(node, "test -e /run/reboot-needed").returncode == 0

        rpm_fleet.reboot(node)

        cleared = rpm_fleet.ssh(node, "zypper -n needs-rebooting")
        assert cleared.returncode == 0, cleared.stdout
        assert rpm_fleet.ssh(node, "rpm -q kernel", check=True).stdout.split() == [
            "kernel-1.0-1.x86_64", "kernel-1.1-1.x86_64"]  # multiversion, survives the reboot
    finally:
        rpm_fleet.reset(node)


def test_nodes_are_isolated_from_each_other(rpm_fleet):
    try:
        rpm_fleet.ssh("al-a", "dnf -q -y install fake-newtool && touch /root/only-on-al",
                      check=True)
        assert rpm_fleet.ssh("al-a", "rpm -q fake-newtool").returncode == 0
        for other in ("rocky-a", "sles-a"):
            assert rpm_fleet.ssh(other, "rpm -q fake-newtool").returncode == 1
            assert rpm_fleet.ssh(other, "ls /root").stdout.split() == []
        procs = rpm_fleet.ssh("rocky-a", "ps -eo comm=").stdout.split()
        assert set(procs) <= {"sshd", "sleep", "fake-daemon", "bash", "ps"}, procs
        assert "fake-daemon" in procs
    finally:
        rpm_fleet.reset("al-a")
    assert rpm_fleet.ssh("al-a", "rpm -q fake-newtool").returncode == 1
    assert rpm_fleet.ssh("al-a", "ls /root").stdout.split() == []
