"""Parse what apt prints: ``apt-cache policy`` (releases and version tables), ``apt-get -s``
(the resolver's plan), ``apt-cache show`` (Priority/Section of versions) and ``apt-get update``.

All output is read in the C locale (transports force it). Unknown lines raise
:class:`ParseError`: for compliance a dropped line would be a false "compliant".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchfleet.domain.facts import (
    PackageCandidates,
    PackageOrigin,
    PackageVersion,
    PlannedChange,
    RefreshResult,
)
from patchfleet.domain.memo import TextMemo
from patchfleet.errors import ParseError

DPKG_STATUS = "/var/lib/dpkg/status"
SECURITY_SITES = frozenset({"security.debian.org", "security.ubuntu.com", "debian-security"})


def is_security_origin(origin: PackageOrigin) -> bool:
    """Whether a release is a security pocket (spec 1.4: ``<codename>-security``,
    ``debian-security``), decided the way AWS, Landscape and Azure agree on: the archive or
    codename ends in ``-security``, the label is Debian-Security, or the site is a security host.
    """
    return (
        origin.archive.endswith("-security")
        or origin.codename.endswith("-security")
        or origin.label == "Debian-Security"
        or origin.site in SECURITY_SITES
    )


# ---------------------------------------------------------------------------------------------
# apt-cache policy (no arguments): the release behind each package file
# ---------------------------------------------------------------------------------------------

_PF_LINE = re.compile(r"^ (-?\d+) (\S.*)$")
_RELEASE_LINE = re.compile(r"^ {5}release (.*)$")
_ORIGIN_LINE = re.compile(r"^ {5}origin (.*)$")
_PIN_HEADER = "Pinned packages:"
_PINNED_LINE = re.compile(r"^ {5}\S+ -> \S+ with priority -?\d+$")

_RELEASE_KEYS = {
    "v": "version",
    "o": "origin",
    "a": "archive",
    "n": "codename",
    "l": "label",
    "c": "component",
    "b": "arch",
}


def _parse_release_fields(spec: str, line_no: int, line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in _RELEASE_KEYS:
            raise ParseError(f"unknown release field {item!r}", "apt-cache policy", line_no, line)
        out[_RELEASE_KEYS[key]] = value
    return out


def parse_policy_releases(text: str) -> dict[str, PackageOrigin]:
    """Map each package file line (``http://… bookworm-security/main amd64 Packages``) to the
    release it belongs to. ``/var/lib/dpkg/status`` maps to an empty, non-security origin."""
    releases: dict[str, PackageOrigin] = {}
    lines = text.splitlines()
    if not lines or lines[0] != "Package files:":
        raise ParseError("expected 'Package files:' first", "apt-cache policy", 1,
                         lines[0] if lines else "")
    current: str | None = None
    fields: dict[str, str] = {}
    site = ""

    def flush() -> None:
        if current is None:
            return
        origin = PackageOrigin(
            origin=fields.get("origin", ""),
            label=fields.get("label", ""),
            archive=fields.get("archive", ""),
            codename=fields.get("codename", ""),
            component=fields.get("component", ""),
            site=site,
        )
        if current == DPKG_STATUS:
            origin = PackageOrigin(archive=fields.get("archive", "now"))
        releases[current] = _with_security(origin)

    in_pins = False
    for no, line in enumerate(lines[1:], 2):
        if in_pins:
            if line.strip() and not _PINNED_LINE.match(line):
                raise ParseError("unexpected line in pinned packages", "apt-cache policy", no,
                                 line)
            continue
        if line == _PIN_HEADER:
            in_pins = True
            continue
        if m := _PF_LINE.match(line):
            flush()
            current, fields, site = m.group(2), {}, ""
        elif m := _RELEASE_LINE.match(line):
            if current is None:
                raise ParseError("release line before any package file", "apt-cache policy",
                                 no, line)
            fields = _parse_release_fields(m.group(1), no, line)
        elif m := _ORIGIN_LINE.match(line):
            site = m.group(1).strip()
        elif line.strip():
            raise ParseError("unexpected line", "apt-cache policy", no, line)
    flush()
    return releases


def _with_security(origin: PackageOrigin) -> PackageOrigin:
    return PackageOrigin(
        origin=origin.origin,
        label=origin.label,
        archive=origin.archive,
        codename=origin.codename,
        component=origin.component,
        site=origin.site,
        security=is_security_origin(origin),
    )


# ---------------------------------------------------------------------------------------------
# apt-cache policy PKG...: version tables
# ---------------------------------------------------------------------------------------------

_PKG_HEADER = re.compile(r"^(\S+):$")
_INSTALLED = re.compile(r"^  Installed: (\S+)$")
_CANDIDATE = re.compile(r"^  Candidate: (\S+)$")
_PIN = re.compile(r"^  Package pin: (\S+)$")
_VTABLE = "  Version table:"
_VERSION = re.compile(r"^ (\*\*\*| {3}) (\S+) (-?\d+)$")
_SOURCE = re.compile(r"^ {8}(-?\d+) (\S.*)$")


@dataclass
class _Block:
    name: str
    installed: str | None = None
    candidate: str | None = None
    versions: list[tuple[str, bool, list[str]]] | None = None


def _none(v: str) -> str | None:
    return None if v == "(none)" else v


# Before each line that starts a package's table (a line not indented).
_TABLE_SPLIT = re.compile(r"\n(?=\S)")
# One memo of tables per set of releases (a node's ``apt-cache policy``); see domain.memo.
_TABLES: TextMemo[tuple[tuple[str, PackageOrigin], ...], TextMemo[str, PackageCandidates]] = (
    TextMemo(max_entries=64)
)


def parse_policy_packages(
    text: str, releases: dict[str, PackageOrigin]
) -> tuple[PackageCandidates, ...]:
    """Parse the version tables of ``apt-cache policy PKG...``.

    Each version keeps the releases it is available from (looked up in ``releases``, the
    output of :func:`parse_policy_releases`); a version only in dpkg's status file has none.
    A package's table is parsed once per fleet: nodes with the same releases that print the
    same table get the same object.
    """
    key = tuple(releases.items())
    memo = _TABLES.find(key) or _TABLES.put(key, TextMemo())
    result: list[PackageCandidates] = []
    for chunk in _TABLE_SPLIT.split(text):
        cands = memo.find(chunk)
        if cands is None:
            if not chunk.strip():
                continue
            try:
                parsed = _parse_tables(chunk, releases)
            except ParseError:
                _parse_tables(text, releases)  # raises with the line number in the whole output
                raise
            if len(parsed) != 1:
                raise ParseError("expected one package table", "apt-cache policy")
            cands = memo.put(chunk, parsed[0])
        result.append(cands)
    return tuple(result)


def _parse_tables(text: str, releases: dict[str, PackageOrigin]) -> tuple[PackageCandidates, ...]:
    blocks: list[_Block] = []
    block: _Block | None = None
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if m := _PKG_HEADER.match(line):
            block = _Block(m.group(1))
            blocks.append(block)
            continue
        if block is None:
            raise ParseError("expected a 'package:' header", "apt-cache policy", no, line)
        if m := _INSTALLED.match(line):
            block.installed = _none(m.group(1))
        elif m := _CANDIDATE.match(line):
            block.candidate = _none(m.group(1))
        elif _PIN.match(line):
            continue
        elif line == _VTABLE:
            block.versions = []
        elif m := _VERSION.match(line):
            if block.versions is None:
                raise ParseError("version before 'Version table:'", "apt-cache policy", no, line)
            block.versions.append((m.group(2), m.group(1) == "***", []))
        elif m := _SOURCE.match(line):
            if not block.versions:
                raise ParseError("source line before any version", "apt-cache policy", no, line)
            block.versions[-1][2].append(m.group(2))
        else:
            raise ParseError("unexpected line", "apt-cache policy", no, line)

    result: list[PackageCandidates] = []
    for b in blocks:
        versions: list[PackageVersion] = []
        for version, star, sources in b.versions or []:
            origins: list[PackageOrigin] = []
            installed = star
            for src in sources:
                if src == DPKG_STATUS:
                    installed = True
                    continue
                origins.append(releases.get(src) or PackageOrigin(site=src))
            versions.append(PackageVersion(version=version, origins=tuple(origins),
                                           installed=installed))
        result.append(
            PackageCandidates(
                name=b.name,
                installed_version=b.installed,
                candidate_version=b.candidate,
                versions=tuple(versions),
            )
        )
    return tuple(result)


# ---------------------------------------------------------------------------------------------
# apt-get -s dist-upgrade
# ---------------------------------------------------------------------------------------------

_INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<new>\S+) (?P<origins>.*?) ?"
    r"\[(?P<arch>[^\]]+)\]\)(?: \[.*\])?$"
)
_CONF = re.compile(r"^Conf \S+ \(.*\)(?: \[.*\])?$")
_REMV = re.compile(r"^(Remv|Purg) (\S+)(?: \[(\S+)\])?(?: \[.*\])?$")
_SUMMARY = re.compile(
    r"^(\d+) upgraded, (\d+) newly installed, (\d+) (?:to remove|removed) and (\d+) not upgraded\.$"
)
_HEADERS = (
    "Reading package lists...",
    "Building dependency tree...",
    "Reading state information...",
    "Calculating upgrade...",
    "NOTE: This is only a simulation!",
    "      apt-get needs root privileges for real execution.",
    "      Keep also in mind that locking is deactivated,",
    "      so don't depend on the relevance to the real current situation!",
    "Reading package lists... Done",
    "Building dependency tree... Done",
    "Reading state information... Done",
    "Calculating upgrade... Done",
)
_LIST_HEADER = re.compile(r"^The following (.+):$")
# Printed after the "automatically installed and no longer required" list (apt >= 1.1).
_AUTOREMOVE_HINT = re.compile(r"^Use '(?:sudo )?apt(?:-get)? autoremove' to remove (?:it|them)\.$")


@dataclass(frozen=True, slots=True)
class SimulatedUpgrade:
    changes: tuple[PlannedChange, ...]
    kept_back: tuple[str, ...]
    removals: tuple[str, ...]
    upgraded: int
    newly_installed: int
    not_upgraded: int


def parse_simulate(text: str) -> SimulatedUpgrade:
    """Parse ``apt-get -s dist-upgrade``: Inst lines, kept-back packages and the summary."""
    changes: list[PlannedChange] = []
    kept: list[str] = []
    removals: list[str] = []
    section: str | None = None
    summary: tuple[int, int, int, int] | None = None
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line in _HEADERS:
            section = None if line in _HEADERS else section
            continue
        if m := _INST.match(line):
            section = None
            origins = tuple(o.strip() for o in m.group("origins").split(", ") if o.strip())
            changes.append(
                PlannedChange(
                    name=m.group("name"),
                    arch=m.group("arch"),
                    old_version=m.group("old"),
                    new_version=m.group("new"),
                    origins=origins,
                )
            )
        elif _CONF.match(line):
            section = None
        elif m := _REMV.match(line):
            section = None
            removals.append(m.group(2))
        elif m := _SUMMARY.match(line):
            section = None
            up, new, _removed, not_up = (int(g) for g in m.groups())
            summary = (up, new, _removed, not_up)
        elif m := _LIST_HEADER.match(line):
            section = m.group(1)
        elif _AUTOREMOVE_HINT.match(line):
            section = None
        elif line.startswith("  ") and section is not None:
            if "kept back" in section:
                kept.extend(line.split())
        else:
            raise ParseError("unexpected line", "apt-get -s dist-upgrade", no, line)
    if summary is None:
        raise ParseError("no 'N upgraded, N newly installed' summary line; output truncated?",
                         "apt-get -s dist-upgrade")
    upgraded = sum(1 for c in changes if not c.is_new_install)
    if upgraded != summary[0]:
        raise ParseError(
            f"summary says {summary[0]} upgraded but {upgraded} Inst lines were upgrades",
            "apt-get -s dist-upgrade",
        )
    return SimulatedUpgrade(
        changes=tuple(changes),
        kept_back=tuple(kept),
        removals=tuple(removals),
        upgraded=summary[0],
        newly_installed=summary[1],
        not_upgraded=summary[3],
    )


# ---------------------------------------------------------------------------------------------
# apt-cache show NAME=VERSION...
# ---------------------------------------------------------------------------------------------

_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9\-]*):(?: (.*))?$")


_STANZA_SPLIT = re.compile(r"\n[ \t]*\n")
_StanzaFields = tuple[tuple[tuple[str, str], tuple[str, str]], ...]
_STANZAS: TextMemo[str, _StanzaFields] = TextMemo()


def parse_apt_show(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(package, version) -> (Priority, Section) from deb822 stanzas.

    Each stanza is parsed once per fleet (see domain.memo); a stanza that fails is parsed again
    as part of the whole output, so the error names its line.
    """
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for chunk in _STANZA_SPLIT.split(text):
        fields = _STANZAS.find(chunk)
        if fields is None:
            try:
                fields = tuple(_parse_stanzas(chunk).items())
            except ParseError:
                _parse_stanzas(text)
                raise
            _STANZAS.put(chunk, fields)
        out.update(fields)
    return out


def _parse_stanzas(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    out: dict[tuple[str, str], tuple[str, str]] = {}
    stanza: dict[str, str] = {}
    start = 1

    def flush() -> None:
        if not stanza:
            return
        if "Package" not in stanza or "Version" not in stanza:
            raise ParseError("stanza without Package or Version", "apt-cache show", start)
        out[(stanza["Package"], stanza["Version"])] = (
            stanza.get("Priority", ""),
            stanza.get("Section", ""),
        )

    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            flush()
            stanza = {}
            start = no + 1
            continue
        if line[0] in " \t":
            if not stanza:
                raise ParseError("continuation line outside a stanza", "apt-cache show", no,
                                 line)
            continue
        m = _FIELD.match(line)
        if not m:
            raise ParseError("not a 'Field: value' line", "apt-cache show", no, line)
        stanza[m.group(1)] = (m.group(2) or "").strip()
    flush()
    return out


# ---------------------------------------------------------------------------------------------
# apt-get update
# ---------------------------------------------------------------------------------------------

_LOCK = re.compile(r"^E: Could not get lock (\S+?)\.? It is held by process (\d+) \(([^)]*)\)")


def parse_update(exit_status: int, stdout: str, stderr: str) -> RefreshResult:
    """Summarise an ``apt-get update``: ok, or the first error/warning apt printed."""
    problems = [
        line.strip()
        for line in (stderr + "\n" + stdout).splitlines()
        if line.startswith(("E: ", "W: ", "Err:"))
    ]
    for line in problems:
        if m := _LOCK.match(line):
            return RefreshResult(
                attempted=True,
                ok=False,
                message=(
                    f"package lists not refreshed: {m.group(1)} is held by process "
                    f"{m.group(2)} ({m.group(3)}); scanned with the lists already on the node"
                ),
            )
    if exit_status == 0 and not any(p.startswith(("E: ", "Err:")) for p in problems):
        warnings = [p for p in problems if p.startswith("W: ")]
        return RefreshResult(attempted=True, ok=True, message="; ".join(warnings[:3]))
    detail = "; ".join(problems[:3]) or f"apt-get update exited {exit_status}"
    return RefreshResult(attempted=True, ok=False, message=f"package lists not refreshed: {detail}")
