"""The commands a Scan-and-install sends to a node, per package manager. Pure: no I/O.

Every package is pinned to the exact version the baseline approved, and every command only
upgrades what is installed (plus the new packages the resolver needs as dependencies): never a
``dist-upgrade``, ``distro-sync`` or ``dup``, so never an OS major upgrade. Names and versions are
checked against strict patterns before they become argv parts; the transport shell-quotes each
part (:class:`~patchfleet.transport.base.Command`).

=========  ====================================================  ===========================
manager    install                                               block (rejected, BLOCK)
=========  ====================================================  ===========================
apt        ``apt-get -y -q -o DPkg::Lock::Timeout=N -o            ``apt-mark hold`` before,
           Dpkg::Options::=--force-confdef -o                     ``apt-mark unhold`` after
           Dpkg::Options::=--force-confold install                (only the names patchfleet
           --only-upgrade --no-install-recommends name:arch=ver``  held itself)
dnf        ``dnf -y --setopt=exit_on_lock=True                    ``--exclude=NAME`` on the
           --setopt=install_weak_deps=False upgrade              same command
           name-E:V-R.arch``
zypper     ``zypper -n --no-refresh update --no-recommends        ``zypper addlock`` before,
           name.arch=E:V-R`` (``ZYPP_LOCK_TIMEOUT=N``)           ``removelock`` after
=========  ====================================================  ===========================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchfleet.managers.probes import DEB_NAME_RE, DEB_VERSION_RE
from patchfleet.transport.base import Command

# rpm names: letters, digits and . _ + - (no leading dash). EVR: [epoch:]version-release, each
# part of letters, digits and . _ + ~ ^ (rpm's own allowed set).
RPM_NAME_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+\-]*$")
RPM_EVR_RE = re.compile(r"^(?:[0-9]+:)?[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$")
ARCH_RE = re.compile(r"^[a-z0-9_]+$")

INSTALL_TIMEOUT = 3600.0
"""Seconds one install command may run (a large transaction on a slow node)."""


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """One package to bring to exactly ``version``: dpkg's ``[epoch:]upstream[-revision]`` or
    rpm's ``[E:]V-R`` (as :class:`~patchfleet.domain.facts.InstalledPackage` spells them)."""

    name: str
    arch: str
    version: str


def _deb_name(name: str) -> str:
    if not DEB_NAME_RE.match(name) or ":" in name:
        raise ValueError(f"refusing to send package name {name!r}: not a Debian package name")
    return name


def _rpm_name(name: str) -> str:
    if not RPM_NAME_RE.match(name):
        raise ValueError(f"refusing to send package name {name!r}: not an rpm package name")
    return name


def _arch(arch: str) -> str:
    if not ARCH_RE.match(arch):
        raise ValueError(f"refusing to send architecture {arch!r}")
    return arch


def _nonempty(parts: Sequence[str], what: str) -> Sequence[str]:
    if not parts:
        raise ValueError(f"{what} needs at least one package")
    return parts


# ---------------------------------------------------------------------------------------------
# apt
# ---------------------------------------------------------------------------------------------


def apt_spec(spec: PackageSpec) -> str:
    """``name:arch=version`` (``name=version`` when the arch is unknown)."""
    name = _deb_name(spec.name)
    if not DEB_VERSION_RE.match(spec.version):
        raise ValueError(f"refusing to send version {spec.version!r}: not a Debian version")
    arch = f":{_arch(spec.arch)}" if spec.arch else ""
    return f"{name}{arch}={spec.version}"


def apt_install(specs: Iterable[PackageSpec], lock_timeout: int) -> Command:
    """Upgrade exactly these versions; apt may add new packages they depend on, keeps the
    node's changed config files (confold) and waits ``lock_timeout`` s for dpkg's lock.

    A held package is refused by apt ("Held packages were changed"), so callers leave held
    packages out (see :mod:`patchfleet.ops.install`)."""
    args = _nonempty([apt_spec(s) for s in specs], "apt_install")
    return Command(
        ("apt-get", "-y", "-q", "-o", f"DPkg::Lock::Timeout={int(lock_timeout)}",
         "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
         "install", "--only-upgrade", "--no-install-recommends", *args),
        privileged=True,
        timeout=INSTALL_TIMEOUT + lock_timeout,
        name="apt-get-install",
    )


APT_SHOWHOLD = Command(("apt-mark", "showhold"), name="apt-mark-showhold")


def apt_mark(action: str, names: Iterable[str]) -> Command:
    """``apt-mark hold|unhold NAME...``."""
    if action not in ("hold", "unhold"):
        raise ValueError(f"apt-mark action {action!r}")
    args = _nonempty([_deb_name(n) for n in names], f"apt_mark {action}")
    return Command(("apt-mark", action, *args), privileged=True, name=f"apt-mark-{action}")


# ---------------------------------------------------------------------------------------------
# dnf
# ---------------------------------------------------------------------------------------------


def _rpm_evr(version: str) -> str:
    if not RPM_EVR_RE.match(version):
        raise ValueError(f"refusing to send version {version!r}: not an rpm [E:]V-R")
    return version


def dnf_nevra(spec: PackageSpec) -> str:
    """``name-E:V-R.arch`` (epoch always written: dnf parses it unambiguously)."""
    evr = _rpm_evr(spec.version)
    if ":" not in evr:
        evr = f"0:{evr}"
    return f"{_rpm_name(spec.name)}-{evr}.{_arch(spec.arch)}"


def dnf_upgrade(specs: Iterable[PackageSpec], exclude: Iterable[str] = ()) -> Command:
    """Upgrade to exactly these NEVRAs (install-only packages such as kernel are installed
    beside the running one). ``exclude`` hides names from the resolver, so anything needing
    a newer excluded package is not upgraded either. With ``exit_on_lock`` dnf exits 200 at
    once on a held lock; the executor retries."""
    args = _nonempty([dnf_nevra(s) for s in specs], "dnf_upgrade")
    excludes = tuple(f"--exclude={_rpm_name(n)}" for n in sorted(set(exclude)))
    return Command(
        ("dnf", "-y", "--setopt=exit_on_lock=True", "--setopt=install_weak_deps=False",
         *excludes, "upgrade", *args),
        privileged=True,
        timeout=INSTALL_TIMEOUT,
        name="dnf-upgrade",
    )


# ---------------------------------------------------------------------------------------------
# zypper
# ---------------------------------------------------------------------------------------------

ZYPPER_OK_EXIT = frozenset({0, 102, 103})
"""0 done; 102 done, reboot needed; 103 zypper updated itself: run the same command again."""


def _zypper_env(lock_timeout: int) -> tuple[tuple[str, str], ...]:
    return (("ZYPP_LOCK_TIMEOUT", str(int(lock_timeout))),)


def zypper_spec(spec: PackageSpec) -> str:
    """``name.arch=E:V-R`` (zypper reads ``.arch`` when it is a known architecture)."""
    arch = f".{_arch(spec.arch)}" if spec.arch else ""
    return f"{_rpm_name(spec.name)}{arch}={_rpm_evr(spec.version)}"


def zypper_update(specs: Iterable[PackageSpec], lock_timeout: int) -> Command:
    """Update installed packages to exactly these versions (``update`` skips names that are
    not installed; multiversion packages such as the kernel are installed beside)."""
    args = _nonempty([zypper_spec(s) for s in specs], "zypper_update")
    return Command(
        ("zypper", "--non-interactive", "--no-refresh", "update", "--no-recommends",
         "--auto-agree-with-licenses", *args),
        privileged=True,
        ok_exit=ZYPPER_OK_EXIT,
        timeout=INSTALL_TIMEOUT + lock_timeout,
        env=_zypper_env(lock_timeout),
        name="zypper-update",
    )


def zypper_locks(lock_timeout: int) -> Command:
    return Command(("zypper", "--non-interactive", "locks"), env=_zypper_env(lock_timeout),
                   name="zypper-locks")


def zypper_lock(action: str, names: Iterable[str], lock_timeout: int) -> Command:
    """``zypper addlock|removelock NAME...``."""
    if action not in ("addlock", "removelock"):
        raise ValueError(f"zypper lock action {action!r}")
    args = _nonempty([_rpm_name(n) for n in names], f"zypper {action}")
    return Command(("zypper", "--non-interactive", action, *args), privileged=True,
                   env=_zypper_env(lock_timeout), name=f"zypper-{action}")


_LOCK_ROW = re.compile(r"^\s*\d+\s*\|\s*(?P<name>\S+)\s*\|\s*(?P<type>\S+)\s*\|")


def parse_zypper_locks(text: str) -> frozenset[str]:
    """Names of the package locks in ``zypper locks`` output."""
    return frozenset(m["name"] for line in text.splitlines()
                     if (m := _LOCK_ROW.match(line)) and m["type"] == "package")
