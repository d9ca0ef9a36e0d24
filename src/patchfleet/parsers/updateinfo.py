"""Parse repositories' ``updateinfo.xml`` as the ``dnf-updateinfo-xml`` and ``zypper-updateinfo``
probes print it: per repository a header ``=== repo ID: PATH`` followed by the XML verbatim, or
``=== repo ID: none`` (the repository has no updateinfo), ``: no cache`` or
``: unsupported compression PATH``.

The XML is read the way libsolv (under both dnf and zypper) reads it: dates are epoch seconds
or ``YYYY-MM-DD[ HH:MM[:SS]]`` in UTC; ``reboot_suggested`` is true when its text starts with
``1``, ``T`` or ``t``; ``src``/``nosrc`` packages are not installable and are left out. A date
libsolv could not read either (it then uses 0, which dnf shows as 1970) becomes the epoch here
too, so evaluation treats the notice as malformed, and is reported in :attr:`Dump.problems`.
Elements libsolv does not know raise :class:`ParseError`; so do notices without an id or type.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from patchfleet.domain.facts import Advisory, RpmRef
from patchfleet.errors import ParseError
from patchfleet.parsers.rpm import check_ref, parse_epoch

_HEADER = re.compile(r"^=== repo (?P<repo>\S+): (?P<what>.+)$")
_STATES = ("none", "no cache")
_UNSUPPORTED = "unsupported compression "
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_UPDATE_CHILDREN = frozenset({
    "id", "title", "issued", "updated", "rights", "release", "pushcount", "severity", "summary",
    "description", "solution", "message", "references", "pkglist",
})
_PACKAGE_CHILDREN = frozenset({"filename", "sum", "reboot_suggested", "restart_suggested",
                               "relogin_suggested"})
_NOT_INSTALLABLE = frozenset({"src", "nosrc"})


@dataclass(frozen=True, slots=True)
class Dump:
    """What the probe printed: advisories by id (merged across repositories), each
    repository's state (``ok``, ``none``, ``no cache``, ``unsupported compression``), the
    repository each advisory came from first, and problems worth a node warning."""

    advisories: dict[str, Advisory]
    repos: dict[str, str]
    origin: dict[tuple[str, str], Advisory]  # (repo, id) -> that repository's notice
    problems: tuple[str, ...]


def parse_date(text: str) -> datetime | None:
    """A libsolv date; None when absent or zero, the epoch when unreadable."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC) if int(text) else None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return _EPOCH


def _document_open(sections: list[tuple[str, str, int, list[str]]]) -> bool:
    """Whether the last repository's XML has started and not yet ended."""
    if not sections or sections[-1][1] != "ok":
        return False
    tail = "\n".join(sections[-1][3][-3:]).rstrip()
    return bool(tail) and not tail.endswith(("</updates>", "<updates/>"))


def parse_dump(text: str, tool: str) -> Dump:
    """Every repository's notices from the probe's output."""
    sections: list[tuple[str, str, int, list[str]]] = []
    for no, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m and _document_open(sections):
            m = None  # a description line that looks like a header
        if m:
            what = m["what"]
            state = what if what in _STATES else (
                "unsupported compression" if what.startswith(_UNSUPPORTED) else "ok")
            sections.append((m["repo"], state, no, []))
        elif not sections:
            raise ParseError("expected '=== repo ID: PATH' first", tool, no, line)
        elif sections[-1][1] != "ok":
            raise ParseError(f"text after '=== repo {sections[-1][0]}: {sections[-1][1]}'",
                             tool, no, line)
        else:
            sections[-1][3].append(line)

    advisories: dict[str, Advisory] = {}
    origin: dict[tuple[str, str], Advisory] = {}
    repos: dict[str, str] = {}
    problems: list[str] = []
    for repo, state, no, lines in sections:
        if state != "ok":
            repos.setdefault(repo, state)
            continue
        repos[repo] = "ok"
        for adv, bad_dates in _parse_document(repo, "\n".join(lines), tool, no):
            problems += bad_dates
            origin.setdefault((repo, adv.id), adv)
            seen = advisories.get(adv.id)
            if seen is None:
                advisories[adv.id] = adv
                continue
            if (seen.type, seen.severity, seen.issued, seen.updated) != (
                    adv.type, adv.severity, adv.issued, adv.updated):
                problems.append(f"advisory {adv.id} differs between repositories (type, "
                                f"severity or dates); the first one read is kept")
            extra = tuple(p for p in adv.packages if p not in seen.packages)
            advisories[adv.id] = replace(
                seen,
                packages=seen.packages + extra,
                cves=tuple(dict.fromkeys(seen.cves + adv.cves)),
                bugzillas=tuple(dict.fromkeys(seen.bugzillas + adv.bugzillas)),
                reboot_suggested=seen.reboot_suggested or adv.reboot_suggested,
            )
    return Dump(advisories, repos, origin, tuple(problems))


def _parse_document(repo: str, xml: str, tool: str, header_no: int
                    ) -> list[tuple[Advisory, list[str]]]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        line = header_no + (err.position[0] if err.position else 0)
        raise ParseError(f"updateinfo of {repo} is not XML ({err})", tool, line) from None
    if root.tag != "updates":
        raise ParseError(f"updateinfo of {repo}: root <{root.tag}>, expected <updates>", tool)
    out = []
    for update in root:
        if update.tag != "update":
            raise ParseError(f"updateinfo of {repo}: unexpected <{update.tag}>", tool)
        out.append(_update(repo, update, tool))
    return out


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _update(repo: str, u: ET.Element, tool: str) -> tuple[Advisory, list[str]]:
    adv_id = _text(u.find("id"))
    where = f"updateinfo of {repo}, advisory {adv_id or '(no id)'}"
    if not adv_id:
        raise ParseError(f"{where}: no <id>", tool)
    typ = u.get("type", "")
    if not typ:
        raise ParseError(f"{where}: no type=", tool)
    for child in u:
        if child.tag not in _UPDATE_CHILDREN:
            raise ParseError(f"{where}: unexpected <{child.tag}>", tool)
    problems = []
    dates: dict[str, datetime | None] = {}
    for tag in ("issued", "updated"):
        el = u.find(tag)
        raw = el.get("date", "") if el is not None else ""
        dates[tag] = parse_date(raw)
        if dates[tag] == _EPOCH:
            problems.append(f"advisory {adv_id} ({repo}): {tag} date {raw!r} is not a date")
    cves: list[str] = []
    bugs: list[str] = []
    refs = u.find("references")
    for ref in refs if refs is not None else ():
        if ref.tag != "reference":
            raise ParseError(f"{where}: unexpected <{ref.tag}> in <references>", tool)
        kind, ref_id = ref.get("type", ""), ref.get("id", "")
        if kind == "cve" and ref_id:
            cves.append(ref_id)
        elif kind == "bugzilla" and ref_id:
            bugs.append(ref_id)
    packages, reboot = _packages(u.find("pkglist"), where, tool)
    advisory = Advisory(
        id=adv_id,
        type=typ,
        severity=_text(u.find("severity")),
        title=_text(u.find("title")),
        issued=dates["issued"],
        updated=dates["updated"],
        cves=tuple(dict.fromkeys(cves)),
        bugzillas=tuple(dict.fromkeys(bugs)),
        packages=packages,
        reboot_suggested=reboot,
    )
    return advisory, problems


def _packages(pkglist: ET.Element | None, where: str, tool: str
              ) -> tuple[tuple[RpmRef, ...], bool]:
    refs: list[RpmRef] = []
    reboot = False
    for collection in pkglist if pkglist is not None else ():
        if collection.tag != "collection":
            raise ParseError(f"{where}: unexpected <{collection.tag}> in <pkglist>", tool)
        for child in collection:
            if child.tag in ("name", "module"):
                continue  # module streams: dnf's own queries already honour enabled streams
            if child.tag != "package":
                raise ParseError(f"{where}: unexpected <{child.tag}> in <collection>", tool)
            for sub in child:
                if sub.tag not in _PACKAGE_CHILDREN:
                    raise ParseError(f"{where}: unexpected <{sub.tag}> in <package>", tool)
            arch = child.get("arch", "")
            if arch in _NOT_INSTALLABLE:
                continue
            ref = RpmRef(
                name=child.get("name", ""),
                epoch=parse_epoch(child.get("epoch", ""), tool),
                version=child.get("version", ""),
                release=child.get("release", ""),
                arch=arch,
            )
            try:
                check_ref(ref, tool)
            except ParseError as err:
                raise ParseError(f"{where}: {err.args[0]}", tool) from None
            if ref not in refs:
                refs.append(ref)
            flag = _text(child.find("reboot_suggested"))
            reboot = reboot or flag[:1] in ("1", "T", "t")
    return tuple(refs), reboot
