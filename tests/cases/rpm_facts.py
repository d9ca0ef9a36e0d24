"""Builders for rpm NodeFacts (dnf and zypper) used by the evaluation tests.

Modelled on the package set of the real test nodes (reference/test-nodes.md §3–4): every package
at 1.0-1 installed, 1.1-1 in the updates repo, and six notices. Built from the dataclasses
directly, as the parsers would produce them; these tests are about baseline semantics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from patchfleet.domain.facts import (
    Advisory,
    AvailableUpdate,
    InstalledPackage,
    NodeFacts,
    OsInfo,
    PackageManager,
    RebootState,
    RefreshResult,
    RpmRef,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ISSUED = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
OPENSSL_UPDATED = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)
BUILT = datetime(2025, 4, 30, 8, 0, tzinfo=UTC)
INSTALLED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
BOOTED = datetime(2025, 5, 30, 6, 0, tzinfo=UTC)

ROCKY9 = OsInfo(
    id="rocky",
    version_id="9.5",
    name="Rocky Linux",
    pretty_name="Rocky Linux 9.5 (Blue Onyx)",
    version_codename="",
    id_like=("rhel", "centos", "fedora"),
    operating_system="ROCKY_LINUX",
    product="RockyLinux9.5",
    package_manager=PackageManager.DNF,
)
ALMA9 = replace(
    ROCKY9,
    id="almalinux",
    name="AlmaLinux",
    pretty_name="AlmaLinux 9.5 (Teal Serval)",
    operating_system="ALMA_LINUX",
    product="AlmaLinux9.5",
)
AL2023 = OsInfo(
    id="amzn",
    version_id="2023",
    name="Amazon Linux",
    pretty_name="Amazon Linux 2023.6.20250203",
    version_codename="",
    id_like=("fedora",),
    operating_system="AMAZON_LINUX_2023",
    product="AmazonLinux2023",
    package_manager=PackageManager.DNF,
)
CENTOS9 = OsInfo(
    id="centos",
    version_id="9",
    name="CentOS Stream",
    pretty_name="CentOS Stream 9",
    version_codename="",
    id_like=("rhel", "fedora"),
    operating_system="CENTOS",
    product="CentOSStream9",
    package_manager=PackageManager.DNF,
)
SLES15 = OsInfo(
    id="sles",
    version_id="15.6",
    name="SLES",
    pretty_name="SUSE Linux Enterprise Server 15 SP6",
    version_codename="",
    id_like=("suse",),
    operating_system="SUSE",
    product="Suse15.6",
    package_manager=PackageManager.ZYPPER,
)

# Installed at 1.0-1, offered at 1.1-1. fake-release has no update.
PACKAGES = (
    "fake-openssl",
    "fake-curl",
    "fake-libcurl",
    "kernel",
    "fake-sudo",
    "fake-coreutils",
    "fake-editor",
    "fake-noadvisory",
)


def ref(name: str, version: str = "1.1", release: str = "1", arch: str = "x86_64") -> RpmRef:
    return RpmRef(name=name, epoch=0, version=version, release=release, arch=arch)


def pkg(
    name: str,
    version: str = "1.0-1",
    *,
    arch: str = "x86_64",
    source: str | None = None,
    installed_at: datetime | None = INSTALLED_AT,
) -> InstalledPackage:
    return InstalledPackage(
        name=name,
        arch=arch,
        version=version,
        source_name=source or name,
        source_version=version,
        status="installed",
        install_time=installed_at,
    )


def update(
    name: str,
    version: str = "1.1",
    release: str = "1",
    *,
    arch: str = "x86_64",
    repository: str = "fake-updates",
    installed: str = "1.0-1",
    built: datetime | None = BUILT,
) -> AvailableUpdate:
    return AvailableUpdate(
        package=ref(name, version, release, arch),
        repository=repository,
        installed_evr=installed,
        build_time=built,
    )


def advisory(
    id: str,
    type: str,
    severity: str,
    *packages: RpmRef,
    issued: datetime | None = ISSUED,
    updated: datetime | None = None,
    cves: tuple[str, ...] = (),
    bugzillas: tuple[str, ...] = (),
    reboot: bool = False,
    installed: bool = False,
) -> Advisory:
    return Advisory(
        id=id,
        type=type,
        severity=severity,
        title=f"{id} {type}",
        issued=issued,
        updated=updated,
        cves=cves,
        bugzillas=bugzillas,
        packages=packages,
        reboot_suggested=reboot,
        interactive=reboot,
        installed=installed,
    )


def dnf_advisories(version: str = "1.1") -> tuple[Advisory, ...]:
    """The six notices of the dnf test node's updates repo (updateinfo.xml)."""
    return (
        advisory(
            "FAKESA-2025:0001",
            "security",
            "Critical",
            ref("fake-openssl", version),
            updated=OPENSSL_UPDATED,
            cves=("CVE-2025-1001",),
            bugzillas=("2000001",),
        ),
        advisory(
            "FAKESA-2025:0002",
            "security",
            "Important",
            ref("fake-curl", version),
            ref("fake-libcurl", version),
            cves=("CVE-2025-1002", "CVE-2025-1003"),
            bugzillas=("2000002",),
        ),
        advisory(
            "FAKESA-2025:0003",
            "security",
            "Moderate",
            ref("kernel", version),
            cves=("CVE-2025-1004",),
            reboot=True,
        ),
        advisory(
            "FAKESA-2025:0004",
            "security",
            "Low",
            ref("fake-sudo", version),
            cves=("CVE-2025-1005",),
        ),
        advisory("FAKEBA-2025:0005", "bugfix", "", ref("fake-coreutils", version)),
        advisory("FAKEEA-2025:0006", "enhancement", "None", ref("fake-editor", version)),
    )


SUSE_IDS = {n: f"FAKE-SLE-15-SP6-2025-{n}" for n in range(1, 7)}


def suse_patches() -> tuple[Advisory, ...]:
    """The same notices as zypper patches: SUSE ids and categories, lower-case severities."""
    return (
        advisory(
            SUSE_IDS[1],
            "security",
            "critical",
            ref("fake-openssl"),
            updated=OPENSSL_UPDATED,
            cves=("CVE-2025-1001",),
        ),
        advisory(
            SUSE_IDS[2],
            "security",
            "important",
            ref("fake-curl"),
            ref("fake-libcurl"),
            cves=("CVE-2025-1002", "CVE-2025-1003"),
        ),
        advisory(SUSE_IDS[3], "security", "moderate", ref("kernel-default"), reboot=True),
        advisory(SUSE_IDS[4], "security", "low", ref("fake-sudo")),
        advisory(SUSE_IDS[5], "recommended", "low", ref("fake-coreutils")),
        advisory(SUSE_IDS[6], "optional", "none", ref("fake-editor")),
    )


def facts(
    installed: Iterable[InstalledPackage],
    updates: Iterable[AvailableUpdate] = (),
    advisories: Iterable[Advisory] = (),
    *,
    os: OsInfo = ROCKY9,
    reboot: RebootState | None = None,
    boot_time: datetime | None = BOOTED,
) -> NodeFacts:
    return NodeFacts(
        node_id="rpm-node",
        host="127.0.0.1",
        os=os,
        installed=tuple(installed),
        candidates=(),
        planned=(),
        reboot=reboot or RebootState(boot_id="boot-1", required=False),
        refresh=RefreshResult(attempted=True, ok=True),
        collected_at=NOW,
        updates=tuple(updates),
        advisories=tuple(advisories),
        boot_time=boot_time,
    )


def rocky(os: OsInfo = ROCKY9, advisories: Iterable[Advisory] | None = None) -> NodeFacts:
    """The dnf test node before patching: 1.0-1 installed, 1.1-1 and the notices available."""
    installed = [pkg(n) for n in PACKAGES] + [pkg("fake-release", arch="noarch")]
    return facts(
        installed,
        [update(n) for n in PACKAGES],
        dnf_advisories() if advisories is None else advisories,
        os=os,
    )


def rocky_patched(reboot: RebootState | None = None) -> NodeFacts:
    """The dnf test node after ``dnf upgrade``: 1.1-1 installed (kernel 1.0-1 kept beside it),
    no update left, every notice installed."""
    after = datetime(2025, 5, 31, 8, 0, tzinfo=UTC)
    installed = [pkg(n, "1.1-1", installed_at=after) for n in PACKAGES]
    installed += [pkg("kernel", "1.0-1"), pkg("fake-release", arch="noarch")]
    notices = tuple(replace(a, installed=True) for a in dnf_advisories())
    return facts(installed, (), notices, reboot=reboot)


def sles() -> NodeFacts:
    """The zypper test node: same packages (kernel-default for kernel), SUSE patches."""
    names = [("kernel-default" if n == "kernel" else n) for n in PACKAGES]
    installed = [pkg(n) for n in names] + [pkg("fake-release", arch="noarch")]
    return facts(installed, [update(n) for n in names], suse_patches(), os=SLES15)
