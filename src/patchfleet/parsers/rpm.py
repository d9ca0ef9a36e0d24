"""Parse ``rpm -qa`` with patchfleet's query format (the rpm probe's format).

Eight tab-separated fields per line: NAME, EPOCHNUM, VERSION, RELEASE, ARCH, INSTALLTIME,
BUILDTIME, SOURCERPM. ``version`` becomes rpm's ``[E:]V-R`` (epoch left out when 0), the source
package name and version come from SOURCERPM, and INSTALLTIME (seconds since the epoch) becomes a
UTC datetime. BUILDTIME is checked but not kept.

``gpg-pubkey`` rows are the repository signing keys rpm keeps in its database as pseudo
packages (ARCH and SOURCERPM ``(none)``); they are skipped on purpose: no repository updates
them and no baseline can approve them. Any other row without an arch raises.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from patchfleet.domain.facts import InstalledPackage, RpmRef
from patchfleet.errors import ParseError

TOOL = "rpm -qa"
NONE = "(none)"
_SRPM = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm$")
_NAME = re.compile(r"^[A-Za-z0-9_+.\-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9._+~^]+$")


def evr(epoch: int, version: str, release: str) -> str:
    """rpm's ``[E:]V-R``: the epoch is left out when it is 0."""
    return f"{epoch}:{version}-{release}" if epoch else f"{version}-{release}"


def check_ref(ref: RpmRef, tool: str, line_no: int | None = None, line: str = "") -> RpmRef:
    """Raise :class:`ParseError` unless every part of ``ref`` looks like rpm's own."""
    if not _NAME.match(ref.name):
        raise ParseError(f"not an rpm package name: {ref.name!r}", tool, line_no, line)
    for part, value in (("version", ref.version), ("release", ref.release)):
        if not _VERSION.match(value):
            raise ParseError(f"not an rpm {part}: {value!r}", tool, line_no, line)
    if not _NAME.match(ref.arch):
        raise ParseError(f"not an rpm arch: {ref.arch!r}", tool, line_no, line)
    if ref.epoch < 0:
        raise ParseError(f"negative epoch {ref.epoch}", tool, line_no, line)
    return ref


def parse_epoch(text: str, tool: str, line_no: int | None = None, line: str = "") -> int:
    """An epoch field: digits, with ``(none)`` and empty meaning 0."""
    if text in ("", NONE):
        return 0
    if not text.isdigit():
        raise ParseError(f"epoch {text!r} is not a number", tool, line_no, line)
    return int(text)


def parse_rpm_query(text: str) -> tuple[InstalledPackage, ...]:
    """Every installed package except the ``gpg-pubkey`` pseudo packages."""
    packages: list[InstalledPackage] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 8:
            raise ParseError(f"expected 8 tab-separated fields, got {len(fields)}", TOOL, no, line)
        name, epoch_text, version, release, arch, installed, built, srpm = fields
        if name == "gpg-pubkey" and arch == NONE:
            continue
        ref = check_ref(RpmRef(name, parse_epoch(epoch_text, TOOL, no, line), version, release,
                               arch), TOOL, no, line)
        for label, stamp in (("install", installed), ("build", built)):
            if not stamp.isdigit():
                raise ParseError(f"{label} time {stamp!r} is not a number", TOOL, no, line)
        if srpm == NONE:
            source_name, source_version = name, ref.evr
        else:
            m = _SRPM.match(srpm)
            if not m:
                raise ParseError(f"SOURCERPM {srpm!r} is not NAME-VERSION-RELEASE.src.rpm",
                                 TOOL, no, line)
            source_name = m["name"]
            # Epoch belongs to the spec file, so the source package shares the binary's.
            source_version = evr(ref.epoch, m["version"], m["release"])
        packages.append(
            InstalledPackage(
                name=name,
                arch=arch,
                version=ref.evr,
                source_name=source_name,
                source_version=source_version,
                status="installed",
                install_time=datetime.fromtimestamp(int(installed), UTC),
            )
        )
    return tuple(packages)
