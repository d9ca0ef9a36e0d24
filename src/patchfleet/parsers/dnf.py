"""Parse what dnf (4.x) prints: available upgrades, updateinfo advisories, ``needs-restarting -r``
and ``makecache``. (The boot probe both rpm families send is :mod:`patchfleet.parsers.boot`.)

All output is read in the C locale with ``TZ=UTC`` (transports force both), so the dates dnf
prints in local time are UTC. Unknown lines raise :class:`ParseError`.

What dnf 4's command line does not show, and so patchfleet does not know for dnf nodes: an
advisory's ``issued`` date apart from its ``updated`` one (``updateinfo info`` prints
``updated``, or ``issued`` when the notice has no ``updated``; both land in
:attr:`Advisory.updated`), and the per-package ``reboot_suggested`` flag. Reboots are detected
with ``needs-restarting -r`` and the boot time instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from patchfleet.domain.facts import (
    Advisory,
    AvailableUpdate,
    InstalledPackage,
    RebootState,
    RefreshResult,
    RpmRef,
)
from patchfleet.domain.versions import rpm_compare
from patchfleet.errors import ParseError
from patchfleet.parsers import updateinfo
from patchfleet.parsers.rpm import check_ref, parse_epoch

_DATE = "%Y-%m-%d %H:%M:%S"
# dnf banners that -q does not always silence; they carry no facts.
_BANNERS = (re.compile(r"^Last metadata expiration check: .* ago on .*\.$"),)


def _is_banner(line: str) -> bool:
    return any(b.match(line) for b in _BANNERS)


def parse_nevra(text: str, tool: str, line_no: int | None = None, line: str = "") -> RpmRef:
    """``name-[epoch:]version-release.arch`` as dnf prints it."""
    head, dot, arch = text.rpartition(".")
    parts = head.rsplit("-", 2)
    if not dot or len(parts) != 3:
        raise ParseError(f"not a NEVRA: {text!r}", tool, line_no, line)
    name, ev, release = parts
    epoch_text, colon, version = ev.rpartition(":")
    epoch = parse_epoch(epoch_text, tool, line_no, line) if colon else 0
    return check_ref(RpmRef(name, epoch, version, release, arch), tool, line_no, line)


def parse_date(text: str, tool: str, line_no: int | None = None, line: str = ""
               ) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` printed in UTC; the epoch itself (no date in the notice) is None."""
    try:
        value = datetime.strptime(text, _DATE).replace(tzinfo=UTC)
    except ValueError:
        raise ParseError(f"not a date: {text!r}", tool, line_no, line) from None
    return None if value.timestamp() == 0 else value


# ---------------------------------------------------------------------------------------------
# dnf updateinfo list --all
# ---------------------------------------------------------------------------------------------

LIST_TOOL = "dnf updateinfo list"
_LIST_LINE = re.compile(r"^(?P<mark>i | {2})(?P<id>\S+) +(?P<label>\S+) +(?P<nevra>\S+)$")
_SEC_LABEL = re.compile(r"^(?P<severity>Critical|Important|Moderate|Low|Unknown)/Sec\.$")
_TYPE_LABELS = frozenset({"bugfix", "enhancement", "newpackage", "unknown"})


@dataclass(frozen=True, slots=True)
class AdvisoryPackage:
    """One line of ``updateinfo list --all``: an advisory, one package in it, and whether a
    version at least as new as that package is installed."""

    advisory_id: str
    type: str
    package: RpmRef
    installed: bool


def parse_updateinfo_list(text: str) -> tuple[AdvisoryPackage, ...]:
    out: list[AdvisoryPackage] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or _is_banner(line):
            continue
        m = _LIST_LINE.match(line)
        if not m:
            raise ParseError("expected 'i|  ADVISORY TYPE NEVRA' (was --all given?)",
                             LIST_TOOL, no, line)
        label = m["label"]
        if _SEC_LABEL.match(label):
            typ = "security"
        elif label in _TYPE_LABELS:
            typ = label
        else:
            raise ParseError(f"unknown advisory type {label!r}", LIST_TOOL, no, line)
        out.append(AdvisoryPackage(m["id"], typ, parse_nevra(m["nevra"], LIST_TOOL, no, line),
                                   m["mark"] == "i "))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# dnf updateinfo info --all
# ---------------------------------------------------------------------------------------------

INFO_TOOL = "dnf updateinfo info"
_RULE = "=" * 79
_LABEL_WIDTH = 11  # len("Description"), the widest label; dnf right-aligns labels to it
_LABELS = frozenset({"Update ID", "Type", "Updated", "Bugs", "CVEs", "Description", "Severity",
                     "Rights", "Files", "Installed"})
_TYPES = frozenset({"security", "bugfix", "enhancement", "newpackage", "unknown"})


@dataclass
class AdvisoryInfo:
    """One block of ``updateinfo info``."""

    id: str = ""
    title: str = ""
    type: str = ""
    updated: datetime | None = None
    severity: str = ""
    bugzillas: list[str] = field(default_factory=list)
    cves: list[str] = field(default_factory=list)
    installed: bool | None = None


def _fields(lines: list[tuple[int, str]]) -> list[tuple[int, str, str, str]]:
    """(line number, line, label, value); continuation lines repeat the label above them."""
    out: list[tuple[int, str, str, str]] = []
    label = ""
    for no, line in lines:
        head, sep, value = line[:_LABEL_WIDTH], line[_LABEL_WIDTH:_LABEL_WIDTH + 2], line[13:]
        if sep.rstrip() != ":" or (sep == ":" and value) or len(head) != _LABEL_WIDTH:
            raise ParseError("expected a 'Label: value' line", INFO_TOOL, no, line)
        if head.strip():
            label = head.strip()
            if label not in _LABELS:
                raise ParseError(f"unknown field {label!r}", INFO_TOOL, no, line)
        elif not label:
            raise ParseError("continuation line before any field", INFO_TOOL, no, line)
        out.append((no, line, label, value))
    return out


def _info_block(title: str, lines: list[tuple[int, str]]) -> AdvisoryInfo:
    info = AdvisoryInfo(title=title)
    for no, line, label, value in _fields(lines):
        if label == "Update ID":
            info.id = value
        elif label == "Type":
            if value not in _TYPES:
                raise ParseError(f"unknown advisory type {value!r}", INFO_TOOL, no, line)
            info.type = value
        elif label == "Updated":
            info.updated = parse_date(value, INFO_TOOL, no, line)
        elif label == "Severity":
            info.severity = value
        elif label == "CVEs":
            info.cves.append(value)
        elif label == "Bugs":
            info.bugzillas.append(value.split(" - ", 1)[0])
        elif label == "Installed":
            if value not in ("true", "false"):
                raise ParseError("expected 'Installed: true|false'", INFO_TOOL, no, line)
            info.installed = value == "true"
        # Description, Rights and Files are free text or shown with -v only: not facts we keep.
    if not info.id or not info.type:
        raise ParseError(f"advisory {title!r} has no Update ID or Type", INFO_TOOL)
    return info


def parse_updateinfo_info(text: str) -> dict[str, AdvisoryInfo]:
    """Advisory id -> details. dnf prints one block per (advisory, installed) pair, so an
    advisory whose packages are partly installed appears twice; the blocks are merged."""
    lines = [(no, line) for no, line in enumerate(text.splitlines(), 1) if not _is_banner(line)]
    out: dict[str, AdvisoryInfo] = {}
    i = 0
    while i < len(lines):
        no, line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line != _RULE or i + 2 >= len(lines) or lines[i + 2][1] != _RULE:
            raise ParseError("expected a '====' rule, the title and another rule", INFO_TOOL,
                             no, line)
        title_no, title_line = lines[i + 1]
        if not title_line.startswith("  "):
            raise ParseError("expected the advisory title indented by two spaces", INFO_TOOL,
                             title_no, title_line)
        j = i + 3
        while j < len(lines) and lines[j][1].strip():
            j += 1
        block = _info_block(title_line[2:], lines[i + 3 : j])
        seen = out.get(block.id)
        if seen is None:
            out[block.id] = block
        else:
            if (seen.type, seen.updated, seen.severity) != (block.type, block.updated,
                                                             block.severity):
                raise ParseError(f"advisory {block.id} is printed twice with different details",
                                 INFO_TOOL, no, line)
            if block.installed is not None and seen.installed is not None:
                seen.installed = seen.installed and block.installed
        i = j
    return out


def advisories(listed: Sequence[AdvisoryPackage], dump: updateinfo.Dump
               ) -> tuple[Advisory, ...]:
    """The notices dnf lists for installed package names (``updateinfo list --all``), read from
    the repositories' updateinfo.xml (``dump``), ``installed`` when dnf marks every listed
    package ``i``. The two must agree: every listed advisory and package is in the XML."""
    rows: dict[str, list[AdvisoryPackage]] = {}
    for p in listed:
        rows.setdefault(p.advisory_id, []).append(p)
    out: list[Advisory] = []
    for adv_id in sorted(rows):
        notice = dump.advisories.get(adv_id)
        if notice is None:
            unread = [f"{r} ({s})" for r, s in sorted(dump.repos.items()) if s != "ok"]
            hint = f"; repositories whose updateinfo was not read: {', '.join(unread)}" if (
                unread) else ""
            raise ParseError(f"dnf lists advisory {adv_id}, which no cached updateinfo.xml "
                             f"holds{hint}", LIST_TOOL)
        for r in rows[adv_id]:
            if r.package not in notice.packages:
                raise ParseError(f"dnf lists {r.package.nvra} under {adv_id}, whose "
                                 "updateinfo.xml does not name it", LIST_TOOL)
        out.append(replace(notice, installed=all(r.installed for r in rows[adv_id])))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# needs-restarting -r
# ---------------------------------------------------------------------------------------------

NR_TOOL = "needs-restarting -r"
_NR_YES = "Core libraries or services have been updated since boot-up:"
_NR_NO = "No core libraries or services have been updated since boot-up."
_NR_TAIL = (
    "Reboot is required to fully utilize these updates.",
    "Reboot should not be necessary.",
)
_NR_MORE = re.compile(r"^More information: \S+$")
_NR_PKG = re.compile(r"^  \* (\S+)$")


def parse_needs_restarting(exit_status: int, stdout: str, boot_id: str) -> RebootState:
    """Exit 1 and a package list when a reboot is required, exit 0 otherwise."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines or lines[0] not in (_NR_YES, _NR_NO):
        raise ParseError("expected the 'core libraries' verdict first", NR_TOOL, 1,
                         lines[0] if lines else "")
    required = lines[0] == _NR_YES
    if required != (exit_status == 1) or exit_status not in (0, 1):
        raise ParseError(f"exit status {exit_status} contradicts the verdict", NR_TOOL, 1,
                         lines[0])
    packages: list[str] = []
    for no, line in enumerate(lines[1:], 2):
        if m := _NR_PKG.match(line):
            if not required:
                raise ParseError("package listed although no reboot is needed", NR_TOOL, no, line)
            packages.append(m[1])
        elif line not in _NR_TAIL and not _NR_MORE.match(line):
            raise ParseError("unexpected line", NR_TOOL, no, line)
    if required and not packages:
        raise ParseError("a reboot is required but no package is named", NR_TOOL)
    return RebootState(boot_id=boot_id, required=required, packages=tuple(packages))


# ---------------------------------------------------------------------------------------------
# available upgrades (dnf repoquery --upgrades)
# ---------------------------------------------------------------------------------------------

RQ_TOOL = "dnf repoquery --upgrades"


def latest_installed(installed: Iterable[InstalledPackage]) -> dict[tuple[str, str], str]:
    """(name, arch) -> the newest installed EVR (several for install-only packages)."""
    out: dict[tuple[str, str], str] = {}
    for p in installed:
        key = (p.name, p.arch)
        if key not in out or rpm_compare(p.version, out[key]) > 0:
            out[key] = p.version
    return out


def parse_upgrades(text: str, installed: Iterable[InstalledPackage]
                   ) -> tuple[AvailableUpdate, ...]:
    """Tab-separated ``name epoch version release arch repoid buildtime`` lines.

    The installed EVR is the newest installed version of the same name and arch, or of the
    same name when dnf upgrades across arches (noarch <-> x86_64)."""
    newest = latest_installed(installed)
    by_name: dict[str, str] = {}
    for (name, _arch), version in newest.items():
        by_name.setdefault(name, version)
    out: list[AvailableUpdate] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or _is_banner(line):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise ParseError(f"expected 7 tab-separated fields, got {len(fields)}", RQ_TOOL, no,
                             line)
        name, epoch, version, release, arch, repo, built = fields
        ref = check_ref(RpmRef(name, parse_epoch(epoch, RQ_TOOL, no, line), version, release,
                               arch), RQ_TOOL, no, line)
        current = newest.get((name, arch)) or by_name.get(name)
        if current is None:
            raise ParseError(f"upgrade for {name}.{arch}, which is not installed", RQ_TOOL, no,
                             line)
        if not repo:
            raise ParseError("upgrade without a repository", RQ_TOOL, no, line)
        out.append(AvailableUpdate(package=ref, repository=repo, installed_evr=current,
                                   build_time=_build_time(built, no, line)))
    return tuple(out)


def _build_time(text: str, no: int, line: str) -> datetime | None:
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC) if int(text) else None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise ParseError(f"build time {text!r} is not a date", RQ_TOOL, no, line) from None


# ---------------------------------------------------------------------------------------------
# dnf makecache
# ---------------------------------------------------------------------------------------------

_LOCK_PATTERNS = (
    re.compile(r"Waiting for process with pid (\d+) to finish"),
    re.compile(r"already locked by (\d+)"),
    re.compile(r"[Ll]ock .*(?:held|running) .*pid (\d+)"),
)
_REPO_FAIL = re.compile(r"^(?:Error: )?Failed to download metadata for repo '([^']+)'(?:: (.*))?$")


def parse_makecache(exit_status: int, stdout: str, stderr: str) -> RefreshResult:
    """Summarise a metadata refresh: ok, the lock holder, or the repositories that failed."""
    text = stderr + "\n" + stdout
    for pattern in _LOCK_PATTERNS:
        if (m := pattern.search(text)) and exit_status != 0:
            return RefreshResult(
                attempted=True, ok=False,
                message=(f"repository metadata not refreshed: the package manager is locked "
                         f"by process {m[1]}; scanned with the metadata already on the node"),
            )
    failed = []
    for line in text.splitlines():
        if m := _REPO_FAIL.match(line.strip()):
            failed.append(m[1] + (f" ({m[2]})" if m[2] else ""))
    if exit_status == 0:
        skipped = "; ".join(f"repository {f} skipped" for f in failed[:3])
        return RefreshResult(attempted=True, ok=True, message=skipped)
    errors = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("Error", "Curl"))]
    detail = (", ".join(failed[:3]) and f"repositories failing: {', '.join(failed[:3])}") or (
        "; ".join(errors[:3]) or f"dnf makecache exited {exit_status}")
    return RefreshResult(attempted=True, ok=False,
                         message=f"repository metadata not refreshed: {detail}; scanned with "
                                 "the metadata already on the node")
