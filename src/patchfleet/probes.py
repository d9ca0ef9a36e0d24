"""Which commands a scan sends to a node, per package manager. Pure: no I/O.

Each probe is a :class:`~patchfleet.transport.base.Command` with a stable name; the golden files
under ``tests/golden/`` are keyed by these names, and ``testnodes/capture_golden.py`` captures
exactly these commands from real nodes so the parsers are always tested on what a scan sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from patchfleet.transport.base import Command, script

# Debian policy: package names are lower-case alphanumerics and + - . (at least two chars);
# versions are [epoch:]upstream[-revision] with alphanumerics and . + ~ - : only.
DEB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]+(:[a-z0-9\-]+)?$")
DEB_VERSION_RE = re.compile(r"^[0-9A-Za-z.+~:\-]+$")

OS_RELEASE = Command(
    script("cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"),
    name="os-release",
)

# Line 1: boot id. Line 2: whether /var/run/reboot-required exists. Then reboot-required.pkgs.
APT_REBOOT = Command(
    script(
        "cat /proc/sys/kernel/random/boot_id; "
        "if [ -e /var/run/reboot-required ]; then echo 'reboot-required: yes'; "
        "else echo 'reboot-required: no'; fi; "
        "if [ -r /var/run/reboot-required.pkgs ]; then cat /var/run/reboot-required.pkgs; fi"
    ),
    name="apt-reboot",
)

DPKG_QUERY_FORMAT = (
    "${Package}\\t${Architecture}\\t${Version}\\t${source:Package}\\t${source:Version}"
    "\\t${db:Status-Want}\\t${db:Status-Status}\\t${Priority}\\t${Section}\\n"
)
DPKG_QUERY = Command(("dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT), name="dpkg-query")

# Releases known to apt: maps each source line to its Release fields (o= l= a= n= c=).
APT_POLICY = Command(("apt-cache", "policy"), name="apt-cache-policy")

# Version tables of every installed package: installed, candidate, and each version's sources.
APT_POLICY_INSTALLED = Command(
    script(
        "dpkg-query -W -f '${db:Status-Status} ${binary:Package}\\n' "
        "| awk '$1 == \"installed\" { print $2 }' | xargs -r apt-cache policy"
    ),
    name="apt-cache-policy-installed",
)

# What a full upgrade would do (new dependencies included), without taking the dpkg lock.
APT_SIMULATE = Command(
    ("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"),
    name="apt-get-simulate",
)


def apt_update(lock_timeout: int = 60) -> Command:
    """Refresh the package lists. apt-get waits up to ``lock_timeout`` s for a held lock."""
    return Command(
        ("apt-get", "-q", "-o", f"DPkg::Lock::Timeout={int(lock_timeout)}", "update"),
        privileged=True,
        ok_exit=frozenset({0, 100}),
        name="apt-get-update",
    )


def apt_show(versions: Iterable[tuple[str, str]]) -> Command:
    """Priority and Section of specific versions: ``apt-cache show name=version ...``."""
    args: list[str] = []
    for name, version in versions:
        if not DEB_NAME_RE.match(name):
            raise ValueError(f"refusing to send package name {name!r}: not a Debian name")
        if not DEB_VERSION_RE.match(version):
            raise ValueError(f"refusing to send version {version!r}: not a Debian version")
        args.append(f"{name}={version}")
    return Command(("apt-cache", "show", *args), name="apt-cache-show")


APT_SCAN_PROBES: tuple[Command, ...] = (
    APT_REBOOT,
    DPKG_QUERY,
    APT_POLICY,
    APT_POLICY_INSTALLED,
    APT_SIMULATE,
)
