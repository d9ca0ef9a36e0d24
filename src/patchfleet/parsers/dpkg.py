"""Parse ``dpkg-query -W`` with patchfleet's format (the dpkg probe's format).

Nine tab-separated fields per line: package, arch, version, source package, source version,
selection (``db:Status-Want``: install/hold/deinstall/purge/unknown), status
(``db:Status-Status``: installed, config-files, half-configured, ...), Priority, Section.
"""

from __future__ import annotations

from patchfleet.domain.facts import InstalledPackage
from patchfleet.domain.memo import TextMemo
from patchfleet.errors import ParseError

_WANTS = frozenset({"unknown", "install", "hold", "deinstall", "purge"})
_STATUSES = frozenset(
    {
        "not-installed",
        "config-files",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
        "installed",
    }
)


# A line parses to the same package on every node that prints it (see domain.memo).
_LINES: TextMemo[str, InstalledPackage] = TextMemo()


def parse_dpkg_query(text: str) -> tuple[InstalledPackage, ...]:
    packages: list[InstalledPackage] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        pkg = _LINES.find(line)
        if pkg is None:
            pkg = _LINES.put(line, _parse_line(no, line))
        packages.append(pkg)
    return tuple(packages)


def _parse_line(no: int, line: str) -> InstalledPackage:
    fields = line.split("\t")
    if len(fields) != 9:
        raise ParseError(f"expected 9 tab-separated fields, got {len(fields)}", "dpkg-query",
                         no, line)
    name, arch, version, src, src_version, want, status, priority, section = fields
    if not name:
        raise ParseError("empty package name", "dpkg-query", no, line)
    if want not in _WANTS:
        raise ParseError(f"unknown selection state {want!r}", "dpkg-query", no, line)
    if status not in _STATUSES:
        raise ParseError(f"unknown package status {status!r}", "dpkg-query", no, line)
    if status != "not-installed" and not version:
        raise ParseError("installed package without a version", "dpkg-query", no, line)
    return InstalledPackage(
        name=name,
        arch=arch,
        version=version,
        source_name=src or name,
        source_version=src_version or version,
        status=status,
        held=want == "hold",
        priority=priority,
        section=section,
    )
