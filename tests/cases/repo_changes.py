"""Change a running test node's repositories between real scans (integration only).

Tests that follow one node across several scans (first-seen dates, staged approval) need the
node's repositories to offer something new between two scans. These helpers build the new
packages INSIDE the node with its own tools (``dpkg-deb`` + ``apt-ftparchive`` on Debian nodes,
``rpmbuild`` + ``createrepo_c`` + ``modifyrepo_c`` on dnf nodes) into a staging area under
``/srv/stage``, wire it into the package manager next to the stock repositories and refresh the
package lists, so the next scan sees the change exactly as it would on a real host.

Every call is cumulative: what earlier calls staged stays, except the versions of the same
package in the same pocket (apt) or staged repository (rpm), which become exactly the ones the
new call names. A version that is already staged keeps its file (same checksum and build time),
so re-staging it between two scans changes nothing a scan can see; an empty list withdraws the
package from that pocket. Do not stage a version the stock archive already has: apt would list
the two different files as two entries of the same version.
``remove_apt_pockets`` / ``remove_rpm_stage`` undo everything; so does ``fleet.reset(node)``
(the ``clean`` / ``clean_rpm`` fixtures), which throws the whole staging area away.

The staged packages copy the installed package's architecture, priority, section and source
(apt) or epoch, release, arch and source rpm (rpm); they carry one file
(``/usr/share/fake/<name>/VERSION``) and no dependencies or scriptlets.

Every value that reaches a node's shell is validated here and shell-quoted.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

STAGE = "/srv/stage"
APT_STAGE = f"{STAGE}/apt"
APT_SOURCES = "/etc/apt/sources.list.d/patchfleet-stage.sources"
RPM_STAGE = f"{STAGE}/rpm"
RPM_REPO_FILE = "/etc/yum.repos.d/patchfleet-stage.repo"

_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_DEB_VERSION = re.compile(r"^(?:\d+:)?[0-9][A-Za-z0-9.+~-]*$")
_RPM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_RPM_VERSION = re.compile(r"^[A-Za-z0-9._+~^]+$")  # rpm's version and release: no '-' or ':'
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+/-]*$")


class Node(Protocol):
    """What these helpers need of a fleet fixture (``NodeFleet`` of tests/integration)."""

    def ssh(self, node: str, cmd: str, *, check: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess[str]: ...


class RepoChangeError(RuntimeError):
    """A staging command failed on the node; the message carries its output."""


@dataclass(frozen=True)
class AptPocket:
    """The Release fields of one of Debian 12's suites, as ``apt-cache policy`` shows them
    (o=, l=, a=, n=, v=)."""

    origin: str
    label: str
    suite: str
    codename: str
    version: str
    description: str


# The same fields as Debian's own suites (and testnodes' stock archive).
APT_POCKETS: dict[str, AptPocket] = {
    "stable": AptPocket("Debian", "Debian", "stable", "bookworm", "12.11",
                        "Debian 12.11 Released 17 May 2025"),
    "updates": AptPocket("Debian", "Debian", "stable-updates", "bookworm-updates", "12-updates",
                         "Debian 12 - Updates"),
    "security": AptPocket("Debian", "Debian-Security", "stable-security", "bookworm-security",
                          "12", "Debian 12 - Security Updates"),
}


@dataclass(frozen=True)
class RpmNotice:
    """One RHEL-style updateinfo notice listing ``versions`` of the staged package.

    ``issued`` / ``updated`` are UTC datetimes or None (then the ``<issued>`` / ``<updated>``
    element is left out: an undated notice); ``severity=None`` leaves ``<severity>`` out.
    """

    id: str
    versions: tuple[str, ...]
    type: str = "security"
    severity: str | None = "Important"
    title: str = ""
    issued: datetime | None = None
    updated: datetime | None = None
    cves: tuple[str, ...] = ()
    reboot_suggested: bool = False


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"{what} {value!r} does not match {pattern.pattern}")
    return value


def _run(fleet: Node, node: str, script: str, what: str, timeout: float = 300) -> str:
    """Run the shell ``script`` on ``node`` (``set -eu``); its stdout, or RepoChangeError."""
    proc = fleet.ssh(node, "set -eu\n" + script, timeout=timeout)
    if proc.returncode != 0:
        raise RepoChangeError(f"{node}: {what} exited {proc.returncode}:\n"
                              f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def _write(path: str, text: str) -> str:
    """A shell line that writes ``text`` to ``path`` verbatim."""
    return f"printf '%s' {shlex.quote(text)} > {shlex.quote(path)}"


# -- apt ----------------------------------------------------------------------------------------


def _versions(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def add_apt_pockets(fleet: Node, node: str, package: str,
                    pockets: Mapping[str, str | Sequence[str]], *, update: bool = True) -> str:
    """Offer new versions of the installed Debian package ``package`` on ``node`` in Debian
    pockets: ``pockets`` maps a key of :data:`APT_POCKETS` (``security``, ``updates``,
    ``stable``) to the version(s) that pocket offers, e.g. ``{"security": "1.1",
    "updates": "1.2"}`` (``[]`` withdraws ``package`` from the pocket).

    Each pocket is a local archive ``/srv/stage/apt/<codename>`` (Packages from
    ``apt-ftparchive packages``, Release with Debian's fields from ``apt-ftparchive release``,
    unsigned) listed in :data:`APT_SOURCES` with ``Trusted: yes``. With ``update`` runs
    ``apt-get update``. Returns ``apt-cache policy <package>`` as the node prints it.
    """
    _check(package, _DEB_NAME, "package")
    wanted = {key: _versions(v) for key, v in pockets.items()}
    for key, versions in wanted.items():
        if key not in APT_POCKETS:
            raise ValueError(f"pocket {key!r}: use one of {', '.join(APT_POCKETS)}")
        for version in versions:
            _check(version, _DEB_VERSION, "version")
    q = shlex.quote(package)
    info = _run(fleet, node, "dpkg-query -W -f '${Architecture}\\n${Priority}\\n${Section}\\n"
                f"${{source:Package}}\\n' {q}", f"dpkg-query {package}").split("\n")
    arch, priority, section, source = (_check(v, _WORD, "control field") for v in info[:4])

    lines = [f"mkdir -p {APT_STAGE}/.build"]
    for key, versions in wanted.items():
        pocket = APT_POCKETS[key]
        root = f"{APT_STAGE}/{pocket.codename}"
        pool = f"{root}/pool/main"
        debs = [_deb_path(pool, package, v, arch) for v in versions]
        keep = " ".join(shlex.quote(d) for d in debs)
        lines += [f"mkdir -p {pool}",
                  f"for f in {pool}/{q}_*.deb; do case \" {keep} \" in",
                  '  *" $f "*) ;; *) rm -f "$f" ;; esac; done']
        for version, deb in zip(versions, debs, strict=True):
            lines += [f"if [ ! -e {shlex.quote(deb)} ]; then",
                      *_build_deb(package, version, arch, priority, section, source, deb),
                      "fi"]
        lines += _index_pocket(pocket, root)
    lines += [
        f"chmod -R a+rX {STAGE}",  # apt reads file: archives as user _apt
        f": > {APT_SOURCES}",
        f"for d in {APT_STAGE}/*/; do d=${{d%/}}",
        f"  printf 'Types: deb\\nURIs: file:%s\\nSuites: %s\\nComponents: main\\nTrusted: yes"
        f"\\n\\n' \"$d\" \"${{d##*/}}\" >> {APT_SOURCES}",
        "done",
    ]
    if update:
        lines.append("apt-get -q -q update >/dev/null")
    lines.append(f"apt-cache policy {q}")
    return _run(fleet, node, "\n".join(lines), f"staging {package} in {', '.join(wanted)}")


def _deb_path(pool: str, package: str, version: str, arch: str) -> str:
    """Where a staged .deb lives: Debian's ``name_version_arch.deb`` (no epoch)."""
    return f"{pool}/{package}_{version.split(':')[-1]}_{arch}.deb"


def _build_deb(package: str, version: str, arch: str, priority: str, section: str,
               source: str, deb: str) -> list[str]:
    """Shell lines that build ``package`` ``version`` as the file ``deb`` with dpkg-deb."""
    tree = f"{APT_STAGE}/.build/{package}_{version}"
    fields = {"Package": package, "Source": source if source != package else None,
              "Version": version, "Architecture": arch,
              "Maintainer": "patchfleet test stage <testnodes@patchfleet.invalid>",
              "Section": section, "Priority": priority,
              "Description": f"staged {package} for patchfleet tests\n"
                             f" Built on the node by tests/cases/repo_changes.py ({version})."}
    control = "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)
    share = f"{tree}/usr/share/fake/{package}"
    return [f"rm -rf {shlex.quote(tree)}",
            f"mkdir -p {shlex.quote(tree)}/DEBIAN {shlex.quote(share)}",
            _write(f"{share}/VERSION", f"{package} {version}\n"),
            _write(f"{tree}/DEBIAN/control", control),
            f"dpkg-deb --root-owner-group -Zxz --build {shlex.quote(tree)} {shlex.quote(deb)}"
            " >/dev/null",
            f"rm -rf {shlex.quote(tree)}"]


def _index_pocket(pocket: AptPocket, root: str) -> list[str]:
    """Shell lines that write the pocket's Packages(.gz) and Release with apt-ftparchive."""
    dist = f"dists/{pocket.codename}"
    opts = {"Origin": pocket.origin, "Label": pocket.label, "Suite": pocket.suite,
            "Version": pocket.version, "Codename": pocket.codename,
            "Architectures": "$(dpkg --print-architecture)", "Components": "main",
            "Description": pocket.description}
    argv = " ".join(f"-o \"APT::FTPArchive::Release::{k}={v}\"" for k, v in opts.items())
    return [
        f"cd {root}",
        f"b={dist}/main/binary-$(dpkg --print-architecture)",
        'mkdir -p "$b"',
        'apt-ftparchive packages pool > "$b/Packages"',
        'gzip -9nkf "$b/Packages"',
        f"rm -f {dist}/Release",
        f"r=$(cd {dist} && apt-ftparchive {argv} release .)",
        f"printf '%s\\n' \"$r\" > {dist}/Release",
        "cd /",
    ]


def remove_apt_pockets(fleet: Node, node: str, *, update: bool = True) -> None:
    """Undo every :func:`add_apt_pockets` on ``node`` (and ``apt-get update``)."""
    lines = [f"rm -rf {APT_STAGE} {APT_SOURCES}"]
    if update:
        lines.append("apt-get -q -q update >/dev/null")
    _run(fleet, node, "\n".join(lines), "removing the staged apt pockets")


# -- rpm (dnf) ----------------------------------------------------------------------------------


def add_rpm_notice(fleet: Node, node: str, package: str, *, offered: Iterable[str],
                   notice: RpmNotice | None = None, repo: str = "fake-stage",
                   release: str | None = None, build_time: datetime | None = None,
                   refresh: bool = True) -> str:
    """Offer ``offered`` versions of the installed rpm ``package`` on the dnf node ``node`` from
    the staged rpm-md repository ``repo`` (enabled, ``gpgcheck=0``), and add ``notice`` (if
    any) to that repository's updateinfo.xml, e.g. ``offered=("1.1", "1.2"),
    notice=RpmNotice("FAKESA-2026:0100", ("1.1",))``.

    ``package`` is offered in exactly the ``offered`` versions; notices of earlier calls stay
    (one with the same id is replaced). Packages are built by ``rpmbuild`` on the node with the
    installed package's epoch, arch, source rpm and (unless ``release``) release;
    ``build_time`` (UTC) fixes the build time of versions built by this call (default: now).
    Indexed with ``createrepo_c``, updateinfo added with ``modifyrepo_c --mdtype=updateinfo``.
    With ``refresh`` runs ``dnf makecache --refresh``. Returns ``dnf -q updateinfo list --all``
    as the node prints it.
    """
    _check(package, _RPM_NAME, "package")
    _check(repo, _REPO_ID, "repository id")
    versions = tuple(_check(v, _RPM_VERSION, "version") for v in offered)
    q = shlex.quote(package)
    info = _run(fleet, node, f"rpm -q --qf '%{{EPOCH}}\\n%{{RELEASE}}\\n%{{ARCH}}\\n"
                f"%{{SOURCERPM}}\\n' {q}", f"rpm -q {package}").split("\n")
    epoch = "" if info[0] == "(none)" else _check(info[0], re.compile(r"^\d+$"), "epoch")
    rel = _check(release or info[1], _RPM_VERSION, "release")
    arch = _check(info[2], _RPM_NAME, "arch")
    srpm = _check(info[3], _RPM_NAME, "source rpm")
    src_name = srpm.rsplit("-", 2)[0]
    root = f"{RPM_STAGE}/{repo}"
    work = f"{RPM_STAGE}/.build"
    when = "" if build_time is None else \
        f"SOURCE_DATE_EPOCH={int(build_time.astimezone(UTC).timestamp())} "
    rpms = [f"{root}/packages/{package}-{v}-{rel}.{arch}.rpm" for v in versions]
    keep = " ".join(shlex.quote(r) for r in rpms)
    lines = [f"mkdir -p {root}/packages {root}/notices {work}",
             f"for f in {root}/packages/*.rpm; do [ -e \"$f\" ] || continue",
             f"  [ \"$(rpm -qp --qf '%{{NAME}}' \"$f\")\" = {q} ] || continue",
             f"  case \" {keep} \" in *\" $f \"*) ;; *) rm -f \"$f\" ;; esac; done"]
    for version, rpm in zip(versions, rpms, strict=True):
        spec = f"{work}/{package}-{version}.spec"
        lines += [
            f"if [ ! -e {shlex.quote(rpm)} ]; then",
            _write(spec, _spec(package, version, rel, epoch, arch, src_name)),
            f"{when}rpmbuild -bb --quiet --define '_topdir {work}/top'"
            " --define 'use_source_date_epoch_as_buildtime 1'"
            " --define '__os_install_post %{nil}' --define 'debug_package %{nil}'"
            " --define '_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm'"
            f" --define '_rpmdir {root}/packages' {shlex.quote(spec)} >/dev/null",
            "fi",
        ]
    if notice is not None:
        _check(notice.id, _WORD, "notice id")
        frag = _notice_xml(notice, package, epoch or "0", rel, arch, srpm)
        lines.append(_write(f"{root}/notices/{notice.id}.xml", frag))
    lines += [
        f"rm -rf {work}",
        f"rm -rf {root}/repodata",
        f"createrepo_c --quiet --no-database {root}",
        f"if ls {root}/notices/*.xml >/dev/null 2>&1; then",
        f"  mkdir -p {work}",
        "  { printf '%s\\n' '<?xml version=\"1.0\" encoding=\"UTF-8\"?>' '<updates>'",
        f"    cat {root}/notices/*.xml; printf '%s\\n' '</updates>'; }} > {work}/updateinfo.xml",
        f"  modifyrepo_c --mdtype=updateinfo {work}/updateinfo.xml {root}/repodata >/dev/null",
        f"  rm -rf {work}",
        "fi",
        f": > {RPM_REPO_FILE}",
        f"for d in {RPM_STAGE}/*/; do d=${{d%/}}",
        "  printf '[%s]\\nname=patchfleet staged %s\\nbaseurl=file://%s\\nenabled=1\\n"
        f"gpgcheck=0\\n\\n' \"${{d##*/}}\" \"${{d##*/}}\" \"$d\" >> {RPM_REPO_FILE}",
        "done",
    ]
    if refresh:
        lines.append("dnf -q makecache --refresh >/dev/null")
    lines.append("dnf -q updateinfo list --all")
    return _run(fleet, node, "\n".join(lines), f"staging {package} in {repo}")


def _spec(package: str, version: str, release: str, epoch: str, arch: str, src: str) -> str:
    """A spec building ``package`` alone (source rpm named ``src``, as installed)."""
    head = [f"Name: {src}", f"Version: {version}", f"Release: {release}"]
    if epoch and epoch != "0":
        head.append(f"Epoch: {epoch}")
    head += ["Summary: staged package (patchfleet test)", "License: MIT",
             "Vendor: patchfleet test stage", "AutoReqProv: no"]
    if arch == "noarch":
        head.append("BuildArch: noarch")
    share = f"/usr/share/fake/{package}"
    install = [f"mkdir -p %{{buildroot}}{share}",
               f"echo '{package} %{{version}}-%{{release}}' > %{{buildroot}}{share}/VERSION"]
    if package == src:
        body = ["", "%description", f"Staged {package} {version}.", "", "%install", *install,
                "", "%files", share]
    else:
        body = ["", "%description", f"Staged {src} {version}.", "",
                f"%package -n {package}", "Summary: staged package (patchfleet test)",
                *(["BuildArch: noarch"] if arch == "noarch" else []),
                f"%description -n {package}", f"Staged {package} {version}.", "",
                "%install", *install, "", f"%files -n {package}", share]
    return "\n".join(head + body) + "\n"


def _notice_xml(n: RpmNotice, package: str, epoch: str, release: str, arch: str,
                srpm: str) -> str:
    """One ``<update>`` in the shape RHEL's updateinfo.xml (and testnodes/rpmrepo.py) uses."""
    def attrs(**kv: str) -> str:
        return " ".join(f"{k}={quoteattr(v)}" for k, v in kv.items())

    def date(d: datetime) -> str:
        return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    title = n.title or f"{n.id}: {package} update"
    head = attrs(**{"from": "security@patchfleet.invalid", "status": "final", "type": n.type,
                    "version": "2"})
    out = [f"  <update {head}>", f"    <id>{escape(n.id)}</id>",
           f"    <title>{escape(title)}</title>"]
    if n.issued is not None:
        out.append(f"    <issued date={quoteattr(date(n.issued))}/>")
    if n.updated is not None:
        out.append(f"    <updated date={quoteattr(date(n.updated))}/>")
    out += ["    <rights>Copyright 2026 patchfleet</rights>",
            "    <release>Fake Linux 9</release>", "    <pushcount>1</pushcount>"]
    if n.severity is not None:
        out.append(f"    <severity>{escape(n.severity)}</severity>")
    out += [f"    <summary>{escape(title)}</summary>", "    <references>"]
    for cve in n.cves:
        href = f"https://access.patchfleet.invalid/security/cve/{cve}"
        out.append(f"      <reference {attrs(href=href, id=cve, title=cve, type='cve')}/>")
    href = f"https://errata.patchfleet.invalid/{n.id}"
    out += [f"      <reference {attrs(href=href, id=n.id, title=n.id, type='self')}/>",
            "    </references>",
            f"    <description>{escape(title)} (staged test notice).</description>",
            "    <solution>Update the listed packages.</solution>",
            "    <pkglist>", '      <collection short="fake-stage">',
            "        <name>fake-stage</name>"]
    for version in n.versions:
        _check(version, _RPM_VERSION, "notice version")
        src = srpm.rsplit("-", 2)[0] + f"-{version}-{release}.src.rpm"
        pkg = attrs(name=package, epoch=epoch, version=version, release=release, arch=arch,
                    src=src)
        out += [f"        <package {pkg}>",
                f"          <filename>{package}-{version}-{release}.{arch}.rpm</filename>"]
        if n.reboot_suggested:
            out.append("          <reboot_suggested>True</reboot_suggested>")
        out.append("        </package>")
    out += ["      </collection>", "    </pkglist>", "  </update>"]
    return "\n".join(out) + "\n"


def remove_rpm_stage(fleet: Node, node: str, *, refresh: bool = True) -> None:
    """Undo every :func:`add_rpm_notice` on ``node`` (and ``dnf makecache --refresh``)."""
    lines = [f"rm -rf {RPM_STAGE} {RPM_REPO_FILE}"]
    if refresh:
        lines.append("dnf -q makecache --refresh >/dev/null")
    _run(fleet, node, "\n".join(lines), "removing the staged rpm repositories")
