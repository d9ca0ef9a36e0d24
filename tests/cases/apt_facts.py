"""Builders for apt NodeFacts used by the evaluation tests.

Facts are built from the dataclasses directly (what the parsers would produce), not from tool
output: these tests are about baseline semantics, the parser tests cover the text.
"""

from __future__ import annotations

from datetime import UTC, datetime

from patchfleet.domain.facts import (
    InstalledPackage,
    NodeFacts,
    OsInfo,
    PackageCandidates,
    PackageManager,
    PackageOrigin,
    PackageVersion,
    RebootState,
    RefreshResult,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

SECURITY = PackageOrigin(
    origin="Debian",
    label="Debian-Security",
    archive="stable-security",
    codename="bookworm-security",
    component="main",
    site="deb.debian.org",
    security=True,
)
MAIN = PackageOrigin(
    origin="Debian",
    label="Debian",
    archive="stable",
    codename="bookworm",
    component="main",
    site="deb.debian.org",
)
UPDATES = PackageOrigin(
    origin="Debian",
    label="Debian",
    archive="stable-updates",
    codename="bookworm-updates",
    component="main",
    site="deb.debian.org",
)

DEBIAN12 = OsInfo(
    id="debian",
    version_id="12",
    name="Debian GNU/Linux",
    pretty_name="Debian GNU/Linux 12 (bookworm)",
    version_codename="bookworm",
    id_like=(),
    operating_system="DEBIAN",
    product="Debian12",
    package_manager=PackageManager.APT,
)
UBUNTU2204 = OsInfo(
    id="ubuntu",
    version_id="22.04",
    name="Ubuntu",
    pretty_name="Ubuntu 22.04.4 LTS",
    version_codename="jammy",
    id_like=("debian",),
    operating_system="UBUNTU",
    product="Ubuntu22.04",
    package_manager=PackageManager.APT,
)
ROCKY9 = OsInfo(
    id="rocky",
    version_id="9.3",
    name="Rocky Linux",
    pretty_name="Rocky Linux 9.3 (Blue Onyx)",
    version_codename="",
    id_like=("rhel", "centos", "fedora"),
    operating_system="ROCKY_LINUX",
    product="RockyLinux9.3",
    package_manager=PackageManager.DNF,
)


def pkg(
    name: str,
    version: str,
    *,
    arch: str = "amd64",
    source: str | None = None,
    status: str = "installed",
    held: bool = False,
    priority: str = "optional",
    section: str = "libs",
) -> InstalledPackage:
    return InstalledPackage(
        name=name,
        arch=arch,
        version=version,
        source_name=source or name,
        source_version=version,
        status=status,
        held=held,
        priority=priority,
        section=section,
    )


def ver(
    version: str,
    *origins: PackageOrigin,
    priority: str = "",
    section: str = "",
    installed: bool = False,
) -> PackageVersion:
    return PackageVersion(
        version=version,
        origins=origins,
        installed=installed,
        priority=priority,
        section=section,
    )


def table(
    name: str, installed: str | None, candidate: str | None, *versions: PackageVersion
) -> PackageCandidates:
    return PackageCandidates(
        name=name, installed_version=installed, candidate_version=candidate, versions=versions
    )


def facts(
    packages: list[InstalledPackage],
    tables: list[PackageCandidates],
    *,
    os: OsInfo = DEBIAN12,
    reboot_required: bool = False,
    reboot_packages: tuple[str, ...] = (),
) -> NodeFacts:
    return NodeFacts(
        node_id="node-1",
        host="10.0.0.1",
        os=os,
        installed=tuple(packages),
        candidates=tuple(tables),
        planned=(),
        reboot=RebootState(
            boot_id="00000000-0000-0000-0000-000000000001",
            required=reboot_required,
            packages=reboot_packages,
        ),
        refresh=RefreshResult(attempted=True, ok=True),
        collected_at=NOW,
    )


# A typical Debian 12 node: one package of each situation the rules distinguish.
# openssl   security update 3.0.11-1~deb12u2, and a newer non-security candidate 3.0.13-1~deb12u1
# bash      only a non-security update (bookworm-updates)
# libc6     installed version comes from the security archive, nothing newer
# vim       installed from main, nothing newer
# telnet    installed from main, nothing newer (used by rejection tests)
# nano      config-files only: not installed, ignored
MIXED_PACKAGES = [
    pkg("openssl", "3.0.11-1~deb12u1", priority="optional", section="utils"),
    pkg("bash", "5.2.15-2+b2", priority="required", section="shells"),
    pkg("libc6", "2.36-9+deb12u4", source="glibc", priority="optional", section="libs"),
    pkg("vim", "2:9.0.1378-2", priority="optional", section="editors"),
    pkg("telnet", "0.17+2.4-2", source="inetutils", priority="optional", section="net"),
    pkg("nano", "7.2-1", status="config-files", priority="important", section="editors"),
]
MIXED_TABLES = [
    table(
        "openssl",
        "3.0.11-1~deb12u1",
        "3.0.13-1~deb12u1",
        ver("3.0.13-1~deb12u1", UPDATES, priority="optional", section="utils"),
        ver("3.0.11-1~deb12u2", SECURITY, priority="optional", section="utils"),
        ver("3.0.11-1~deb12u1", MAIN, installed=True),
    ),
    table(
        "bash",
        "5.2.15-2+b2",
        "5.2.15-2+b7",
        ver("5.2.15-2+b7", UPDATES, priority="required", section="shells"),
        ver("5.2.15-2+b2", MAIN, installed=True),
    ),
    table(
        "libc6:amd64",
        "2.36-9+deb12u4",
        "2.36-9+deb12u4",
        ver("2.36-9+deb12u4", SECURITY, installed=True),
        ver("2.36-9+deb12u3", MAIN, priority="optional", section="libs"),
    ),
    table("vim", "2:9.0.1378-2", "2:9.0.1378-2", ver("2:9.0.1378-2", MAIN, installed=True)),
    table("telnet", "0.17+2.4-2", "0.17+2.4-2", ver("0.17+2.4-2", MAIN, installed=True)),
]


def mixed(**kwargs: object) -> NodeFacts:
    return facts(MIXED_PACKAGES, MIXED_TABLES, **kwargs)  # type: ignore[arg-type]
