"""The fake RPM packages and the rpm-md repositories of the dnf and zypper test nodes.

Pure data and text generation (stdlib only): :func:`write_build_tree` writes spec files, the
updateinfo documents and a ``build.sh`` that, run inside the rpm base chroot, builds every
package with ``rpmbuild`` and lays out the repositories with ``createrepo_c`` and
``modifyrepo_c``. ``testnodes.py`` runs it and caches the result.

Two flavours share one package set: ``dnf/`` carries RHEL-style updateinfo (FAKESA/FAKEBA/FAKEEA
notices, ``Critical``..``Low``, dates as ``YYYY-MM-DD HH:MM:SS``, issued and updated),
``zypper/`` SUSE-style patches (``FAKE-SLE-15-SP6-2025-N``, categories security / recommended /
optional / feature, lower-case severities, epoch-second dates, issued only, one interactive and
one update-stack patch). Every date is fixed, so the repositories (and the golden captures made
from them) do not change from one build to the next; tests choose their own ``now``.
"""

from __future__ import annotations

import calendar
import dataclasses
import shlex
import textwrap
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

BASE_BUILT = "2025-01-15 10:00:00"  # build time of every 1.0 package in fake-baseos
NOADVISORY_BUILT = "2025-06-05 10:00:00"  # build time of updates no notice lists
REPO_REVISION = "2025-07-01 00:00:00"  # repomd revision/timestamps, fixed for stable output
RELEASE = "1"
VENDOR = "patchfleet test repository"
PACKAGER = "patchfleet test repository <testnodes@patchfleet.invalid>"
BUILDHOST = "build.patchfleet.invalid"

DNF_REPOS = ("fake-baseos", "fake-updates")


@dataclasses.dataclass(frozen=True)
class FakeRpm:
    """One binary package: its version in fake-baseos (None: not there) and in fake-updates.

    ``source`` names the source rpm when it differs (the package is then built as a
    subpackage of that spec). ``install``: node setup installs the fake-baseos version.
    """

    name: str
    base: str | None = "1.0"
    updates: tuple[str, ...] = ("1.1",)
    source: str | None = None
    epoch: int = 0
    noarch: bool = False
    install: bool = True
    kernel: bool = False
    daemon: bool = False
    obsoletes: str | None = None
    summary: str = ""

    @property
    def src(self) -> str:
        return self.source or self.name


PACKAGES: tuple[FakeRpm, ...] = (
    FakeRpm("fake-openssl-libs", source="fake-openssl", epoch=1,
            summary="fake TLS library (epoch 1)"),
    FakeRpm("fake-curl", summary="fake URL transfer tool"),
    FakeRpm("fake-libcurl", source="fake-curl", summary="fake URL transfer library"),
    FakeRpm("kernel", kernel=True, summary="fake Linux kernel (install-only)"),
    FakeRpm("fake-sudo", updates=("1.1", "1.2"), summary="fake privilege tool, updated twice"),
    FakeRpm("fake-coreutils", summary="fake core utilities"),
    FakeRpm("fake-tzdata", noarch=True, summary="fake time zone data (noarch)"),
    FakeRpm("fake-daemon", daemon=True, summary="fake daemon running on every node"),
    FakeRpm("fake-libzypp", summary="fake package-manager library (update stack on SUSE)"),
    FakeRpm("fake-editor", summary="fake text editor"),
    FakeRpm("fake-oldname", updates=(), summary="fake package renamed to fake-newname"),
    FakeRpm("fake-newname", base=None, install=False, obsoletes="fake-oldname < 1.1",
            summary="fake package that obsoletes fake-oldname"),
    FakeRpm("fake-newtool", base=None, install=False, summary="fake new package"),
    FakeRpm("fake-noadvisory", summary="fake package whose update is in no advisory"),
    FakeRpm("fake-stable-only", updates=(), summary="fake package with no update"),
)


@dataclasses.dataclass(frozen=True)
class Notice:
    """One updateinfo ``<update>``: an advisory (dnf) or a patch (zypper).

    ``issued``/``updated`` are UTC ``YYYY-MM-DD HH:MM:SS`` (written as epoch seconds for SUSE);
    ``severity=None`` writes no ``<severity>`` element. ``raw_issued`` overrides the written
    issued date verbatim (for the malformed-input repository).
    """

    id: str
    type: str
    severity: str | None
    title: str
    issued: str
    packages: tuple[tuple[str, str], ...]  # (name, version) of fake-updates packages
    updated: str | None = None
    cves: tuple[str, ...] = ()
    bugs: tuple[str, ...] = ()
    reboot: bool = False
    restart: bool = False
    raw_issued: str | None = None


DNF_NOTICES: tuple[Notice, ...] = (
    Notice("FAKESA-2025:0001", "security", "Critical",
           "Critical: fake-openssl security update", "2025-05-01 10:00:00",
           (("fake-openssl-libs", "1.1"),), updated="2025-05-02 08:00:00",
           cves=("CVE-2025-10001",), bugs=("2300001",)),
    Notice("FAKESA-2025:0002", "security", "Important",
           "Important: fake-curl security update", "2025-06-01 10:00:00",
           (("fake-curl", "1.1"), ("fake-libcurl", "1.1")),
           cves=("CVE-2025-10002", "CVE-2025-10003"), bugs=("2300002",)),
    Notice("FAKESA-2025:0003", "security", "Moderate",
           "Moderate: kernel security update", "2025-06-10 10:00:00",
           (("kernel", "1.1"),), updated="2025-06-20 12:00:00",
           cves=("CVE-2025-10004",), bugs=("2300003",), reboot=True),
    Notice("FAKESA-2025:0004", "security", "Low",
           "Low: fake-sudo security update", "2025-06-15 09:00:00",
           (("fake-sudo", "1.1"),), updated="2025-06-15 09:00:00",
           cves=("CVE-2025-10005",)),
    Notice("FAKEBA-2025:0005", "bugfix", "None",
           "fake-coreutils, fake-tzdata and fake-daemon bug fix update", "2025-05-20 10:00:00",
           (("fake-coreutils", "1.1"), ("fake-tzdata", "1.1"), ("fake-daemon", "1.1")),
           updated="2025-06-18 10:00:00", bugs=("2300005",)),
    Notice("FAKEEA-2025:0006", "enhancement", "None",
           "fake-editor enhancement update", "2025-06-19 10:00:00",
           (("fake-editor", "1.1"),), bugs=("2300006",)),
    Notice("FAKEEA-2025:0007", "newpackage", None,
           "New package: fake-newtool", "2025-06-20 10:00:00",
           (("fake-newtool", "1.1"),)),
    Notice("FAKEBA-2025:0008", "bugfix", None,
           "fake-sudo bug fix update", "2025-06-25 10:00:00",
           (("fake-sudo", "1.2"),), updated="2025-06-26 10:00:00", bugs=("2300008",)),
    Notice("FAKEBA-2025:0009", "bugfix", "None",
           "fake-newname and fake-libzypp bug fix update", "2025-06-05 10:00:00",
           (("fake-newname", "1.1"), ("fake-libzypp", "1.1")), bugs=("2300009",)),
)

# The same repository with malformed notices, for bad-input tests (never enabled by default).
DNF_BAD_NOTICES: tuple[Notice, ...] = tuple(
    dataclasses.replace(n, raw_issued="not-a-date") if n.id == "FAKESA-2025:0002"
    else dataclasses.replace(n, severity=None) if n.id == "FAKESA-2025:0004"
    else n
    for n in DNF_NOTICES
)

_SLE = "FAKE-SLE-15-SP6-2025-"
SUSE_NOTICES: tuple[Notice, ...] = (
    Notice(_SLE + "1", "security", "critical", "Security update for fake-openssl",
           "2025-05-01 10:00:00", (("fake-openssl-libs", "1.1"),),
           cves=("CVE-2025-10001",), bugs=("1230001",)),
    Notice(_SLE + "2", "security", "important", "Security update for fake-curl",
           "2025-06-01 10:00:00", (("fake-curl", "1.1"), ("fake-libcurl", "1.1")),
           cves=("CVE-2025-10002", "CVE-2025-10003"), bugs=("1230002",)),
    Notice(_SLE + "3", "security", "moderate", "Security update for the Linux Kernel",
           "2025-06-20 12:00:00", (("kernel", "1.1"),),
           cves=("CVE-2025-10004",), bugs=("1230003",), reboot=True),
    Notice(_SLE + "4", "security", "low", "Security update for fake-sudo",
           "2025-06-15 09:00:00", (("fake-sudo", "1.1"),), cves=("CVE-2025-10005",)),
    Notice(_SLE + "5", "recommended", "moderate", "Recommended update for fake-coreutils",
           "2025-06-18 10:00:00",
           (("fake-coreutils", "1.1"), ("fake-tzdata", "1.1"), ("fake-daemon", "1.1")),
           bugs=("1230005",)),
    Notice(_SLE + "6", "optional", "low", "Optional update for fake-editor",
           "2025-06-19 10:00:00", (("fake-editor", "1.1"),), bugs=("1230006",)),
    Notice(_SLE + "7", "feature", "moderate", "Feature update: fake-newtool",
           "2025-06-20 10:00:00", (("fake-newtool", "1.1"),)),
    Notice(_SLE + "8", "recommended", "low", "Recommended update for fake-sudo",
           "2025-06-26 10:00:00", (("fake-sudo", "1.2"),), bugs=("1230008",)),
    Notice(_SLE + "9", "recommended", "important",
           "Recommended update for the package manager stack", "2025-06-05 10:00:00",
           (("fake-libzypp", "1.1"),), bugs=("1230009",), restart=True),
    Notice(_SLE + "10", "recommended", "moderate", "Recommended update for fake-newname",
           "2025-06-05 10:00:00", (("fake-newname", "1.1"),), bugs=("1230010",)),
)


@dataclasses.dataclass(frozen=True)
class ReleasePackage:
    """The distribution's release package: owns ``/usr/lib/os-release`` and gives dnf its
    ``$releasever`` through ``system-release(releasever)``. Installed with ``rpm -i``."""

    name: str
    version: str
    release: str
    os_release: str
    provides: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (path, content) besides /usr/lib/os-release
    links: tuple[tuple[str, str], ...] = ()  # (path, target)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.noarch.rpm"


def _os_release(**fields: str) -> str:
    return "".join(f'{k}="{v}"\n' for k, v in fields.items())


# The distributions' own files, as shipped (Rocky 9.5, AL2023.6, SLES 15 SP6, Leap 15.6).
RELEASES: dict[str, ReleasePackage] = {
    "rocky9": ReleasePackage(
        "rocky-release", "9.5", "1.2.el9",
        _os_release(
            NAME="Rocky Linux", VERSION="9.5 (Blue Onyx)", ID="rocky",
            ID_LIKE="rhel centos fedora", VERSION_ID="9.5", PLATFORM_ID="platform:el9",
            PRETTY_NAME="Rocky Linux 9.5 (Blue Onyx)", ANSI_COLOR="0;32",
            LOGO="fedora-logo-icon", CPE_NAME="cpe:/o:rocky:rocky:9::baseos",
            HOME_URL="https://rockylinux.org/", VENDOR_NAME="RESF",
            VENDOR_URL="https://resf.org/", BUG_REPORT_URL="https://bugs.rockylinux.org/",
            SUPPORT_END="2032-05-31", ROCKY_SUPPORT_PRODUCT="Rocky-Linux-9",
            ROCKY_SUPPORT_PRODUCT_VERSION="9.5", REDHAT_SUPPORT_PRODUCT="Rocky Linux",
            REDHAT_SUPPORT_PRODUCT_VERSION="9.5",
        ),
        provides=("system-release = 9.5-1.2.el9", "system-release(releasever) = 9",
                  "redhat-release = 9.5-1.2.el9", "centos-release = 9.5-1.2.el9"),
        files=(("/etc/rocky-release", "Rocky Linux release 9.5 (Blue Onyx)\n"),
               ("/etc/system-release-cpe", "cpe:/o:rocky:rocky:9::baseos\n")),
        links=(("/etc/redhat-release", "rocky-release"), ("/etc/system-release", "rocky-release")),
    ),
    "al2023": ReleasePackage(
        "system-release", "2023.6.20250123", "0.amzn2023",
        _os_release(
            NAME="Amazon Linux", VERSION="2023", ID="amzn", ID_LIKE="fedora",
            VERSION_ID="2023", PLATFORM_ID="platform:al2023",
            PRETTY_NAME="Amazon Linux 2023.6.20250123", ANSI_COLOR="0;33",
            CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023",
            HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/",
            DOCUMENTATION_URL="https://docs.aws.amazon.com/linux/",
            SUPPORT_URL="https://aws.amazon.com/premiumsupport/",
            BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2023",
            VENDOR_NAME="AWS", VENDOR_URL="https://aws.amazon.com/", SUPPORT_END="2029-06-30",
        ),
        provides=("system-release(releasever) = 2023.6.20250123",),
        files=(("/etc/amazon-linux-release",
                "Amazon Linux release 2023.6.20250123 (Amazon Linux)\n"),
               ("/etc/system-release-cpe", "cpe:2.3:o:amazon:amazon_linux:2023\n")),
        links=(("/etc/system-release", "amazon-linux-release"),),
    ),
    "sles15": ReleasePackage(
        "sles-release", "15.6", "150600.64.3",
        _os_release(
            NAME="SLES", VERSION="15-SP6", VERSION_ID="15.6",
            PRETTY_NAME="SUSE Linux Enterprise Server 15 SP6", ID="sles", ID_LIKE="suse",
            ANSI_COLOR="0;32", CPE_NAME="cpe:/o:suse:sles:15:sp6",
            DOCUMENTATION_URL="https://documentation.suse.com/",
        ),
        provides=("product() = SLES", "product(SLES) = 15.6-0"),
    ),
    "leap15": ReleasePackage(
        "openSUSE-release", "15.6", "lp156.418.1",
        _os_release(
            NAME="openSUSE Leap", VERSION="15.6", ID="opensuse-leap", ID_LIKE="suse opensuse",
            VERSION_ID="15.6", PRETTY_NAME="openSUSE Leap 15.6", ANSI_COLOR="0;32",
            CPE_NAME="cpe:/o:opensuse:leap:15.6", BUG_REPORT_URL="https://bugs.opensuse.org",
            HOME_URL="https://www.opensuse.org/",
            DOCUMENTATION_URL="https://en.opensuse.org/Portal:Leap",
            LOGO="distributor-logo-Leap",
        ),
        provides=("product() = openSUSE", "product(openSUSE) = 15.6-0"),
    ),
}

# A package whose %post waits while /tmp/fake-slowinstall.hold exists (at most 10 min): a real
# dnf or zypper transaction that holds the package manager's lock for as long as a test needs.
SLOWINSTALL = "fake-slowinstall"
SLOWINSTALL_HOLD = "/tmp/fake-slowinstall.hold"


def epoch_seconds(date: str) -> int:
    return calendar.timegm(time.strptime(date, "%Y-%m-%d %H:%M:%S"))


def arch_of(pkg: FakeRpm, arch: str) -> str:
    return "noarch" if pkg.noarch else arch


def package(name: str) -> FakeRpm:
    for p in PACKAGES:
        if p.name == name:
            return p
    raise KeyError(name)


def build_date(name: str, version: str) -> str:
    """When a package version was built: 1.0 at BASE_BUILT, an update a day before the first
    notice that ships it (NOADVISORY_BUILT when none does)."""
    if version == package(name).base:
        return BASE_BUILT
    issued = [n.issued for n in DNF_NOTICES if (name, version) in n.packages]
    if not issued:
        return NOADVISORY_BUILT
    return time.strftime("%Y-%m-%d %H:%M:%S",
                         time.gmtime(epoch_seconds(min(issued)) - 86400))


def nevra_file(name: str, version: str, arch: str) -> str:
    return f"{name}-{version}-{RELEASE}.{arch_of(package(name), arch)}.rpm"


def repo_versions() -> dict[str, list[tuple[str, str]]]:
    """repo name -> (package, version) it carries."""
    out: dict[str, list[tuple[str, str]]] = {"fake-baseos": [], "fake-updates": []}
    for p in PACKAGES:
        if p.base:
            out["fake-baseos"].append((p.name, p.base))
        out["fake-updates"] += [(p.name, v) for v in p.updates]
    return out


# -- specs ------------------------------------------------------------------------------------


def _spec_files(pkg: FakeRpm) -> tuple[str, str]:
    """(%install lines, %files lines) for one binary package."""
    # Install-only kernels must own distinct paths per version, as a real kernel's do.
    share = ("/lib/modules/%{version}-%{release}.fake.%{_arch}" if pkg.kernel
             else f"/usr/share/fake/{pkg.name}")
    install = [f"mkdir -p %{{buildroot}}{share}",
               f"echo '{pkg.name} %{{version}}-%{{release}}' > %{{buildroot}}{share}/VERSION"]
    files = [share]
    if pkg.daemon:
        # A copy of the system's sleep(1), not a script: restart checkers only notice a
        # replaced file that a running process has mapped.
        install += ["mkdir -p %{buildroot}/usr/libexec",
                    "cp /usr/bin/sleep %{buildroot}/usr/libexec/fake-daemon"]
        files.append("/usr/libexec/fake-daemon")
    return "\n".join(install), "\n".join(files)


def spec_text(src: str, version: str, pkgs: list[FakeRpm]) -> str:
    """One spec building ``pkgs`` (all of source ``src``) at ``version``."""
    main = next((p for p in pkgs if p.name == src), None)
    epoch = {p.epoch for p in pkgs}
    assert len(epoch) == 1, f"packages of {src} disagree on the epoch"
    head = [f"Name: {src}", f"Version: {version}", f"Release: {RELEASE}"]
    if epoch != {0}:
        head.append(f"Epoch: {epoch.pop()}")
    head += [f"Summary: {main.summary if main else 'fake ' + src} (patchfleet test package)",
             "License: MIT", "URL: https://patchfleet.invalid/", f"Vendor: {VENDOR}",
             f"Packager: {PACKAGER}", "AutoReqProv: no"]
    if main and main.noarch:
        head.append("BuildArch: noarch")
    lines = head + _deps(main) + ["", "%description",
                                  f"Fake {src} {version} for patchfleet's test nodes.", ""]
    installs, files = [], []
    for p in pkgs:
        inst, fl = _spec_files(p)
        installs.append(inst)
        if p is main:
            files.append(f"%files\n{fl}\n")
            continue
        lines += [f"%package -n {p.name}", f"Summary: {p.summary} (patchfleet test package)"]
        if p.noarch:
            lines.append("BuildArch: noarch")
        lines += [*_deps(p), f"%description -n {p.name}",
                  f"Fake {p.name} {version} for patchfleet's test nodes.", ""]
        files.append(f"%files -n {p.name}\n{fl}\n")
    lines += ["%install", *installs, "", *files]
    return "\n".join(lines) + "\n"


def _deps(pkg: FakeRpm | None) -> list[str]:
    out = []
    if pkg and pkg.obsoletes:
        out.append(f"Obsoletes: {pkg.obsoletes}")
    if pkg and pkg.kernel:
        out.append("Provides: multiversion(kernel)")  # zypp.conf's multiversion = provides:...
    return out


def release_spec(rel: ReleasePackage) -> str:
    install = ["mkdir -p %{buildroot}/usr/lib %{buildroot}/etc",
               "cat > %{buildroot}/usr/lib/os-release <<'PF_EOF'",
               rel.os_release.rstrip("\n"), "PF_EOF",
               "ln -sf ../usr/lib/os-release %{buildroot}/etc/os-release"]
    files = ["/usr/lib/os-release", "/etc/os-release"]
    for path, content in rel.files:
        install += [f"cat > %{{buildroot}}{path} <<'PF_EOF'", content.rstrip("\n"), "PF_EOF"]
        files.append(path)
    for path, target in rel.links:
        install.append(f"ln -sf {target} %{{buildroot}}{path}")
        files.append(path)
    lines = [f"Name: {rel.name}", f"Version: {rel.version}", f"Release: {rel.release}",
             f"Summary: {rel.name} (patchfleet test package)", "License: MIT",
             f"Vendor: {VENDOR}", "BuildArch: noarch", "AutoReqProv: no",
             *(f"Provides: {p}" for p in rel.provides), "",
             "%description", "Release files of the distribution a patchfleet test node imitates.",
             "", "%install", *install, "", "%files", *files]
    return "\n".join(lines) + "\n"


def slowinstall_spec() -> str:
    return textwrap.dedent(f"""\
        Name: {SLOWINSTALL}
        Version: 1.0
        Release: {RELEASE}
        Summary: holds the package manager's lock while {SLOWINSTALL_HOLD} exists
        License: MIT
        BuildArch: noarch
        AutoReqProv: no

        %description
        Installing this package takes as long as {SLOWINSTALL_HOLD} exists (at most 10 min).

        %install
        mkdir -p %{{buildroot}}/usr/share/fake/{SLOWINSTALL}
        echo 1.0 > %{{buildroot}}/usr/share/fake/{SLOWINSTALL}/VERSION

        %post -p <lua>
        -- Lua runs inside rpm: a shell scriptlet would require /bin/sh, which dpkg owns here.
        local i = 0
        while posix.access("{SLOWINSTALL_HOLD}") and i < 600 do
            posix.sleep(1)
            i = i + 1
        end

        %files
        /usr/share/fake/{SLOWINSTALL}
        """)


# -- updateinfo -------------------------------------------------------------------------------


def _attrs(**kv: str) -> str:
    return " ".join(f"{k}={quoteattr(v)}" for k, v in kv.items())


def updateinfo_xml(notices: tuple[Notice, ...], arch: str, *, suse: bool) -> str:
    """updateinfo.xml as the distribution's tooling writes it (RHEL or SUSE conventions)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<updates>"]
    for n in notices:
        attrs = _attrs(**{"from": "maint-coord@suse.de" if suse else "security@patchfleet.invalid",
                          "status": "stable" if suse else "final", "type": n.type,
                          "version": "1" if suse else "2"})
        out += [f"  <update {attrs}>", f"    <id>{escape(n.id)}</id>",
                f"    <title>{escape(n.title)}</title>"]

        def date(d: str) -> str:
            return str(epoch_seconds(d)) if suse else d

        if not suse:
            out.append(f"    <issued date={quoteattr(n.raw_issued or date(n.issued))}/>")
            if n.updated:
                out.append(f"    <updated date={quoteattr(date(n.updated))}/>")
            out += ["    <rights>Copyright 2025 patchfleet</rights>",
                    "    <release>Fake Linux 9</release>", "    <pushcount>1</pushcount>"]
        if n.severity is not None:
            out.append(f"    <severity>{escape(n.severity)}</severity>")
        if suse:
            out += ["    <release>SUSE Updates SLE-Module-Basesystem 15-SP6 x86_64</release>",
                    f"    <issued date={quoteattr(n.raw_issued or date(n.issued))}/>"]
        else:
            out.append(f"    <summary>{escape(n.title)}</summary>")
        out.append("    <references>")
        for bug in n.bugs:
            href = (f"https://bugzilla.suse.com/show_bug.cgi?id={bug}" if suse
                    else f"https://bugzilla.patchfleet.invalid/show_bug.cgi?id={bug}")
            ref = _attrs(href=href, id=bug, title=f"bug {bug}", type="bugzilla")
            out.append(f"      <reference {ref}/>")
        for cve in n.cves:
            href = (f"https://www.suse.com/security/cve/{cve}/" if suse
                    else f"https://access.patchfleet.invalid/security/cve/{cve}")
            title = f"SUSE {cve}" if suse else cve
            out.append(f"      <reference {_attrs(href=href, id=cve, title=title, type='cve')}/>")
        if not suse:
            href = f"https://errata.patchfleet.invalid/{n.id}"
            out.append(f"      <reference {_attrs(href=href, id=n.id, title=n.id, type='self')}/>")
        out += ["    </references>",
                f"    <description>{escape(n.title)} (patchfleet test notice).</description>"]
        if not suse:
            out.append("    <solution>Update the listed packages.</solution>")
        out += ["    <pkglist>",
                '      <collection short="fake-updates">' if not suse else "      <collection>"]
        if not suse:
            out.append("        <name>fake-updates</name>")
        for name, version in n.packages:
            pkg = package(name)
            a = arch_of(pkg, arch)
            src = f"{pkg.src}-{version}-{RELEASE}.src.rpm"
            attrs = _attrs(name=name, epoch=str(pkg.epoch), version=version, release=RELEASE,
                           arch=a, src=src)
            out += [f"        <package {attrs}>",
                    f"          <filename>{nevra_file(name, version, arch)}</filename>"]
            if n.reboot:
                out.append("          <reboot_suggested>True</reboot_suggested>")
            if n.restart:
                out.append("          <restart_suggested>True</restart_suggested>")
            out.append("        </package>")
        out += ["      </collection>", "    </pkglist>", "  </update>"]
    out.append("</updates>")
    return "\n".join(out) + "\n"


# -- build tree -------------------------------------------------------------------------------


def write_build_tree(root: Path, arch: str) -> None:
    """Write specs, updateinfo and ``build.sh`` under ``root`` (mounted at /build in the
    chroot); ``build.sh`` writes the repositories to /build/out."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    builds: dict[tuple[str, str], list[FakeRpm]] = {}
    for p in PACKAGES:
        for v in ([p.base] if p.base else []) + list(p.updates):
            builds.setdefault((p.src, v), []).append(p)
    cmds = []
    for (src, version), pkgs in sorted(builds.items()):
        spec = specs / f"{src}-{version}.spec"
        spec.write_text(spec_text(src, version, pkgs))
        when = epoch_seconds(build_date(pkgs[0].name, version))
        cmds.append(f"build {when} {shlex.quote(spec.name)}")
    for rel in RELEASES.values():
        (specs / f"{rel.name}.spec").write_text(release_spec(rel))
        cmds.append(f"build {epoch_seconds(BASE_BUILT)} {rel.name}.spec")
    (specs / f"{SLOWINSTALL}.spec").write_text(slowinstall_spec())
    cmds.append(f"build {epoch_seconds(BASE_BUILT)} {SLOWINSTALL}.spec")

    ui = root / "updateinfo"
    ui.mkdir()
    (ui / "dnf.xml").write_text(updateinfo_xml(DNF_NOTICES, arch, suse=False))
    (ui / "dnf-bad.xml").write_text(updateinfo_xml(DNF_BAD_NOTICES, arch, suse=False))
    (ui / "suse.xml").write_text(updateinfo_xml(SUSE_NOTICES, arch, suse=True))

    place = []
    for repo, versions in repo_versions().items():
        for name, version in versions:
            place.append(f"place {repo} {nevra_file(name, version, arch)}")
    script = _BUILD_SH.format(
        builds="\n".join(cmds), place="\n".join(place),
        revision=epoch_seconds(REPO_REVISION), buildhost=BUILDHOST,
        releases=" ".join(r.filename for r in RELEASES.values()),
        slow=f"{SLOWINSTALL}-1.0-{RELEASE}.noarch.rpm",
    )
    (root / "build.sh").write_text(script)


_BUILD_SH = """\
#!/bin/sh
# Generated by testnodes/rpmrepo.py: build the fake rpms and lay out the repositories.
set -eu
cd /build
mkdir -p out/rpms top

build() {{  # build EPOCH SPEC: rpmbuild with a fixed build time and host
    SOURCE_DATE_EPOCH=$1 rpmbuild -bb --quiet \\
        --define "_topdir /build/top" --define "_buildhost {buildhost}" \\
        --define "use_source_date_epoch_as_buildtime 1" \\
        --define "clamp_mtime_to_source_date_epoch 1" \\
        --define "__os_install_post %{{nil}}" --define "debug_package %{{nil}}" \\
        --define "_rpmfilename %%{{NAME}}-%%{{VERSION}}-%%{{RELEASE}}.%%{{ARCH}}.rpm" \\
        --define "_rpmdir /build/out/rpms" "specs/$2"
}}
{builds}

place() {{  # place REPO FILE: the same rpm in the dnf and zypper flavour of REPO
    for flavour in dnf zypper; do
        mkdir -p "out/$flavour/$1"
        cp "out/rpms/$2" "out/$flavour/$1/"
    done
}}
{place}

index() {{  # index DIR [UPDATEINFO]
    createrepo_c --quiet --no-database --revision {revision} --set-timestamp-to-revision "$1"
    if [ -n "${{2:-}}" ]; then
        cp "$2" /build/updateinfo.xml
        modifyrepo_c --mdtype=updateinfo /build/updateinfo.xml "$1/repodata"
        rm /build/updateinfo.xml
    fi
}}
# Alternatives a test can point fake-updates at: no updateinfo at all, malformed notices.
mkdir -p out/dnf/alt
cp -a out/dnf/fake-updates out/dnf/alt/fake-updates-noupdateinfo
cp -a out/dnf/fake-updates out/dnf/alt/fake-updates-badinfo
index out/dnf/fake-baseos
index out/dnf/fake-updates updateinfo/dnf.xml
index out/dnf/alt/fake-updates-noupdateinfo
index out/dnf/alt/fake-updates-badinfo updateinfo/dnf-bad.xml
index out/zypper/fake-baseos
index out/zypper/fake-updates updateinfo/suse.xml

for flavour in dnf zypper; do
    mkdir -p "out/$flavour/release" "out/$flavour/alt"
    for f in {releases}; do cp "out/rpms/$f" "out/$flavour/release/"; done
    cp "out/rpms/{slow}" "out/$flavour/alt/"
done
rm -rf top
"""


# -- node setup -------------------------------------------------------------------------------

RPM_MACROS = "# Debian's rpm keeps its database in ~/.rpmdb; RHEL and SUSE keep it here.\n" \
             "%_dbpath /var/lib/rpm\n"

# RHEL 9's /etc/dnf/dnf.conf.
DNF_CONF = """\
[main]
gpgcheck=1
installonly_limit=3
clean_requirements_on_remove=True
best=True
skip_if_unavailable=False
"""

# Unsigned local repositories: gpgcheck is off for them (and only for them).
DNF_REPO = """\
[fake-baseos]
name=Fake BaseOS
baseurl=file:///srv/repo/fake-baseos
enabled=1
gpgcheck=0

[fake-updates]
name=Fake Updates
baseurl=file:///srv/repo/fake-updates
enabled=1
gpgcheck=0
"""

# Plugins Debian's dnf-plugins-core enables that RHEL does not ship or enable by default:
# `local` adds a _dnf_local repo (and fails its gpg check), `show-leaves` prints "New leaves:".
DNF_PLUGINS_OFF = ("local", "show-leaves")

# What SUSE's /etc/zypp/needreboot lists (libzypp writes /run/reboot-needed after installing
# any of these), plus this repository's `kernel`.
ZYPP_NEEDREBOOT = """\
# Packages whose update asks for a reboot (/run/reboot-needed), as SUSE ships it.
dbus-1
glibc
kernel
kernel-default
systemd
udev
"""

# zypp.conf: keep several kernels, as SLES does.
ZYPP_CONF = """\
[main]
multiversion = provides:multiversion(kernel)
multiversion.kernels = latest,latest-1,running
"""

# Debian's /usr/bin/rpm refuses to install unless given --force-debian (and says so in every
# zypper install output). zypper calls /usr/bin/rpm, so it is diverted to rpm.distrib and this
# wrapper adds the flag for installs, upgrades and erases only. argv[0] must stay "rpm" or
# rpm's popt aliases (--initdb, -qa...) break.
RPM_WRAPPER = """\
#!/bin/bash
# patchfleet test node: Debian's rpm needs --force-debian to install (see rpmrepo.py).
for arg in "$@"; do
    case "$arg" in
        -i*|-U*|-F*|-e*|--install|--upgrade|--freshen|--erase|--reinstall)
            exec -a rpm /usr/bin/rpm.distrib --force-debian "$@" ;;
        -q*|--query|-V*|--verify|--) break ;;
    esac
done
exec -a rpm /usr/bin/rpm.distrib "$@"
"""


def installed_at_setup() -> list[str]:
    return [p.name for p in PACKAGES if p.base and p.install]


def node_files(variant: str, family: str) -> dict[str, str]:
    """Files (path in the node -> content) a template of ``variant`` gets before setup."""
    files = {"/etc/rpm/macros": RPM_MACROS,
             "/usr/local/sbin/patchfleet-rpm-wrapper": RPM_WRAPPER}
    if family == "rpm":
        files["/etc/dnf/dnf.conf"] = DNF_CONF
        files["/etc/yum.repos.d/fake.repo"] = DNF_REPO
        for plugin in DNF_PLUGINS_OFF:
            files[f"/etc/dnf/plugins/{plugin}.conf"] = "[main]\nenabled=0\n"
    else:
        files["/etc/zypp/needreboot"] = ZYPP_NEEDREBOOT
        files["/etc/zypp/zypp.conf"] = ZYPP_CONF
    return files


def node_setup(variant: str, family: str) -> str:
    """Shell script run as root in a template of ``variant``: rpm database, release package,
    every fake-baseos package at 1.0, then fake-updates enabled and its metadata cached."""
    release = f"/srv/repo/release/{RELEASES[variant].filename}"
    pkgs = " ".join(installed_at_setup())
    common = [
        "dpkg-divert --quiet --local --rename --add /usr/bin/rpm",
        "install -m 755 /usr/local/sbin/patchfleet-rpm-wrapper /usr/bin/rpm",
        "rm /usr/local/sbin/patchfleet-rpm-wrapper",
        "rpm --initdb",
        f"rpm -i --nodeps {release}",
    ]
    if family == "rpm":
        return "\n".join([
            *common,
            # As installed from the release media: fake-updates only comes later.
            f"dnf -q -y --disablerepo=fake-updates install {pkgs}",
            "dnf -q makecache --refresh",
        ])
    return "\n".join([
        *common,
        "zypper -q -n ar -f -G file:///srv/repo/fake-baseos fake-baseos",
        "zypper -q -n ref",
        f"zypper -q -n in --no-recommends {pkgs}",
        "zypper -q -n ar -f -G file:///srv/repo/fake-updates fake-updates",
        "zypper -q -n ref",
    ])
