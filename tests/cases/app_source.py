"""An application's own repository on a running test node, outside the node's configuration
(integration only): what a baseline's ``sources`` entry points at.

:func:`add_apt_app_source` and :func:`add_rpm_app_source` build the application package
``fake-app`` INSIDE the node with its own tools (``dpkg-deb`` + ``apt-ftparchive``; ``rpmbuild``
+ ``createrepo_c`` + ``modifyrepo_c``), install version 1.0 from a file, and publish a
repository at :data:`APP_SOURCE` that offers only the newer security build 1.1 (apt: a release
whose suite ends in ``-security``; rpm: a Critical security notice in updateinfo.xml, which
zypper reads as a security patch). Nothing in /etc refers to it: only a source does.
:data:`APT_SOURCE_LINES` and :data:`RPM_SOURCE_REPO` are the configurations a baseline lists.
``fleet.reset(node)`` undoes everything.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from repo_changes import Node, RpmNotice, _notice_xml, _run, _spec, _write

APP_SOURCE = "/srv/appsrc"
APP = "fake-app"
NOTICE = "APPSA-2026:0001"
APT_SOURCE_LINES = f"deb [trusted=yes] file:{APP_SOURCE} ./"
RPM_SOURCE_REPO = (f"[appsrc]\nname=fake-app vendor repository\nbaseurl=file://{APP_SOURCE}\n"
                   "enabled=1\ngpgcheck=0\n")
_BUILD = "/srv/appsrc-build"


def add_apt_app_source(fleet: Node, node: str) -> None:
    """fake-app 1.0 installed, 1.1 offered by the flat repository ``APP_SOURCE`` (suite
    ``appsrc-security``)."""
    lines = [f"rm -rf {APP_SOURCE} {_BUILD}", f"mkdir -p {APP_SOURCE} {_BUILD}"]
    for version in ("1.0", "1.1"):
        tree = f"{_BUILD}/{APP}_{version}"
        control = (f"Package: {APP}\nVersion: {version}\nArchitecture: all\n"
                   "Maintainer: patchfleet test vendor <testnodes@patchfleet.invalid>\n"
                   "Section: utils\nPriority: optional\n"
                   f"Description: application from its vendor's repository\n {version}\n")
        out = f"{APP_SOURCE}/{APP}_{version}_all.deb" if version != "1.0" else \
            f"{_BUILD}/{APP}_{version}_all.deb"
        lines += [f"mkdir -p {tree}/DEBIAN {tree}/usr/share/fake/{APP}",
                  _write(f"{tree}/usr/share/fake/{APP}/VERSION", f"{APP} {version}\n"),
                  _write(f"{tree}/DEBIAN/control", control),
                  f"dpkg-deb --root-owner-group -Zxz --build {tree} {out} >/dev/null"]
    release = " ".join(f"-o APT::FTPArchive::Release::{k}={v}" for k, v in (
        ("Origin", "FakeVendor"), ("Label", "FakeVendor"), ("Suite", "appsrc-security"),
        ("Codename", "appsrc-security")))
    lines += [f"dpkg -i {_BUILD}/{APP}_1.0_all.deb >/dev/null",
              f"rm -rf {_BUILD}",
              f"cd {APP_SOURCE}",
              "apt-ftparchive packages . > Packages",
              f"r=$(apt-ftparchive {release} release .)",
              "printf '%s\\n' \"$r\" > Release",
              f"chmod -R a+rX {APP_SOURCE}"]
    _run(fleet, node, "\n".join(lines), "building the apt application source")


def add_rpm_app_source(fleet: Node, node: str, *, build_on: str | None = None) -> None:
    """fake-app 1.0-1 installed, 1.1-1 offered by the rpm-md repository ``APP_SOURCE`` with
    the Critical security notice :data:`NOTICE` (issued 2026-01-01). Built on ``build_on``
    (a dnf node: zypper nodes have no createrepo_c) and copied over, when given."""
    builder = build_on or node
    _build_rpm(fleet, builder)
    if builder != node:
        packed = _run(fleet, builder, f"tar -C / -czf - {APP_SOURCE[1:]} {_BUILD[1:]} | base64 -w0",
                      "packing the rpm application source")
        _run(fleet, node, f"rm -rf {APP_SOURCE} {_BUILD}\n"
             f"printf '%s' {shlex.quote(packed)} | base64 -d | tar -C / -xzf -",
             "unpacking the rpm application source")
        _run(fleet, builder, f"rm -rf {APP_SOURCE} {_BUILD}", "cleaning the build node")
    _run(fleet, node, f"rpm -i {_BUILD}/{APP}-1.0-1.noarch.rpm\nrm -rf {_BUILD}",
         "installing fake-app 1.0")


def _build_rpm(fleet: Node, node: str) -> None:
    top = f"{_BUILD}/top"
    lines = [f"rm -rf {APP_SOURCE} {_BUILD}", f"mkdir -p {APP_SOURCE}/packages {_BUILD}"]
    for version in ("1.0", "1.1"):
        spec = f"{_BUILD}/{APP}-{version}.spec"
        out = f"{APP_SOURCE}/packages" if version != "1.0" else _BUILD
        lines += [_write(spec, _spec(APP, version, "1", "", "noarch", APP)),
                  f"rpmbuild -bb --quiet --define '_topdir {top}'"
                  " --define '__os_install_post %{nil}' --define 'debug_package %{nil}'"
                  " --define '_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm'"
                  f" --define '_rpmdir {out}' {spec} >/dev/null"]
    notice = RpmNotice(NOTICE, ("1.1",), type="security", severity="Critical",
                       issued=datetime(2026, 1, 1, tzinfo=UTC), cves=("CVE-2026-0001",))
    updateinfo = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n"
                  + _notice_xml(notice, APP, "0", "1", "noarch", f"{APP}-1.0-1.src.rpm")
                  + "</updates>\n")
    lines += [f"createrepo_c --quiet --no-database {APP_SOURCE}",
              _write(f"{_BUILD}/updateinfo.xml", updateinfo),
              f"modifyrepo_c --mdtype=updateinfo {_BUILD}/updateinfo.xml {APP_SOURCE}/repodata"
              " >/dev/null",
              f"rm -rf {top} {_BUILD}/updateinfo.xml {_BUILD}/*.spec",
              f"chmod -R a+rX {APP_SOURCE}"]
    _run(fleet, node, "\n".join(lines), "building the rpm application source")
