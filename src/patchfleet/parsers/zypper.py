"""Parse what zypper prints with ``--xmlout``: package updates, patches, patch details,
``needs-rebooting``, ``refresh``, and the exit codes that mean something else than "failed".

zypper's XML is a ``<stream>`` of ``<message type="info|warning|error">`` and ``<progress>``
elements around the command's own element (``<update-status>`` for ``list-updates`` and
``list-patches``). ``zypper info`` has no XML of its own: its text arrives inside ``<message>``
elements, one per patch. Dates are UTC (``issue-date time_t``). Elements or attributes a parser
does not know raise :class:`ParseError`.

Decisions (the README repeats them):

- A patch's ``issue-date`` is libsolv's timestamp for the notice, the later of its ``issued`` and
  ``updated`` dates, so it lands in :attr:`Advisory.updated` (as dnf's ``Updated``).
- Patches in status ``not-needed`` (none of their packages is installed) are dropped, as dnf
  never lists notices for packages that are not installed. ``needed`` and ``unwanted`` (locked
  by the admin) are not installed; ``applied`` is installed.
- A patch's packages are read from its ``Conflicts`` (``name.arch < evr``). libzypp adds a
  ``name.noarch`` twin of every arch-specific entry (so that an arch change still conflicts);
  the twin is dropped when the same name and version is listed for a real arch.
- ``restart`` (the updateinfo ``reboot_suggested`` flag) is :attr:`Advisory.reboot_suggested`;
  ``interactive`` is :attr:`Advisory.interactive` (zypper skips such patches unless
  ``--with-interactive``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from patchfleet.domain.facts import Advisory, AvailableUpdate, RebootState, RefreshResult, RpmRef
from patchfleet.errors import CommandError, LockError, NodeError, ParseError
from patchfleet.parsers import updateinfo
from patchfleet.parsers.rpm import check_ref, parse_epoch

# zypper's exit codes (zypper(8) "EXIT CODES"), those a scan meets.
EXIT_OK = 0
EXIT_ZYPP_ERROR = 4
EXIT_NO_REPOS = 6
EXIT_LOCKED = 7
EXIT_REBOOT_NEEDED = 102
EXIT_RESTART_NEEDED = 103
EXIT_CAP_NOT_FOUND = 104
EXIT_REPOS_SKIPPED = 106
_INFO_EXITS = frozenset({EXIT_OK, EXIT_REBOOT_NEEDED, EXIT_RESTART_NEEDED, EXIT_REPOS_SKIPPED})

_LOCKED = re.compile(r"System management is locked by the application with pid (\d+) \(([^)]*)\)")


@dataclass(frozen=True, slots=True)
class Message:
    type: str  # info, warning, error
    text: str


@dataclass(frozen=True, slots=True)
class Stream:
    """A parsed ``<stream>``: its messages in order and the command's own elements."""

    messages: tuple[Message, ...]
    elements: tuple[ET.Element, ...]

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(m.text for m in self.messages if m.type == "error")

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(m.text for m in self.messages if m.type == "warning")


def parse_stream(text: str, tool: str, known: Iterable[str] = ()) -> Stream:
    """The ``<stream>`` zypper printed; ``known`` names the command's own elements."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        line_no = err.position[0] if err.position else None
        lines = text.splitlines()
        line = lines[line_no - 1] if line_no and line_no <= len(lines) else None
        raise ParseError(f"not zypper XML output ({err})", tool, line_no, line) from None
    if root.tag != "stream":
        raise ParseError(f"root element is <{root.tag}>, expected <stream>", tool)
    allowed = set(known)
    messages: list[Message] = []
    elements: list[ET.Element] = []
    for child in root:
        if child.tag == "message":
            kind = child.get("type", "")
            if kind not in ("info", "warning", "error"):
                raise ParseError(f"message of unknown type {kind!r}", tool)
            messages.append(Message(kind, child.text or ""))
        elif child.tag == "progress":
            continue
        elif child.tag in allowed:
            elements.append(child)
        else:
            raise ParseError(f"unexpected element <{child.tag}>", tool)
    return Stream(tuple(messages), tuple(elements))


def _detail(stream: Stream | None, stdout: str, stderr: str) -> str:
    texts = list(stream.errors) if stream else []
    if not texts:
        texts = [ln for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()][-3:]
    return " | ".join(" ".join(t.split()) for t in texts)[:500]


def check_exit(tool: str, exit_status: int, stdout: str, stderr: str, node_id: str | None = None
               ) -> tuple[Stream | None, tuple[str, ...]]:
    """Raise the NodeError an exit code means, or return the stream and warnings to record.

    7 (locked) is a :class:`LockError` naming the holder; 6 (no repositories), 4 (libzypp
    error), 104 (not found) and anything else unknown are :class:`CommandError`. 106 (some
    repositories skipped) and 103 (zypper itself has an update) are warnings: the output is
    complete for the other repositories. 102 (reboot needed) is not an error.
    """
    stream: Stream | None
    try:
        stream = parse_stream(stdout, tool) if stdout.strip() else None
    except ParseError:
        stream = None
    message = f"{tool}: " + _detail(stream, stdout, stderr)
    if exit_status == EXIT_LOCKED:
        m = _LOCKED.search((stdout + stderr).replace("\n", " "))
        holder = f" by {m[2] or 'an application'} (pid {m[1]})" if m else ""
        raise LockError(f"{tool}: zypper is locked{holder}; another package manager run is in "
                        "progress on the node", node_id)
    err: NodeError | None = None
    if exit_status == EXIT_NO_REPOS:
        err = CommandError(f"{tool}: no repositories are defined on the node (zypper exit 6)",
                           node_id)
    elif exit_status == EXIT_CAP_NOT_FOUND:
        err = CommandError(f"{message} (zypper exit 104: not found)", node_id)
    elif exit_status not in _INFO_EXITS:
        err = CommandError(f"{message} (zypper exit {exit_status})", node_id)
    if err is not None:
        raise err
    warnings: list[str] = []
    if exit_status == EXIT_REPOS_SKIPPED:
        warnings.append(f"{tool}: some repositories were skipped (zypper exit 106): "
                        + _detail(stream, stdout, stderr))
    elif exit_status == EXIT_RESTART_NEEDED:
        warnings.append(f"{tool}: zypper has an update for itself (exit 103)")
    return stream, tuple(warnings)


def _ref(name: str, edition: str, arch: str, tool: str) -> RpmRef:
    epoch_text, colon, vr = edition.rpartition(":")
    version, dash, release = vr.rpartition("-")
    if not dash or not version or not release:
        raise ParseError(f"edition {edition!r} of {name} is not [E:]V-R", tool)
    epoch = parse_epoch(epoch_text, tool) if colon else 0
    return check_ref(RpmRef(name, epoch, version, release, arch), tool)


def _attr(el: ET.Element, name: str, tool: str) -> str:
    value = el.get(name)
    if value is None:
        raise ParseError(f"<{el.tag}> without {name}= ({ET.tostring(el)[:200]!r})", tool)
    return value


def _bool(el: ET.Element, name: str, tool: str) -> bool:
    value = _attr(el, name, tool)
    if value not in ("true", "false"):
        raise ParseError(f"{name}={value!r} is not true/false", tool)
    return value == "true"


def _update_list(stream: Stream, tool: str) -> list[ET.Element]:
    if len(stream.elements) != 1:
        raise ParseError(f"expected one <update-status>, got {len(stream.elements)}", tool)
    status = stream.elements[0]
    updates: list[ET.Element] = []
    for child in status:
        if child.tag not in ("update-list", "blocked-update-list"):
            raise ParseError(f"unexpected <{child.tag}> in <update-status>", tool)
        # blocked-update-list: pending patches zypper holds back until the update stack is
        # patched (list-patches without --all); still pending, so they count like the others.
        for update in child:
            if update.tag != "update":
                raise ParseError(f"unexpected <{update.tag}> in <{child.tag}>", tool)
            updates.append(update)
    return updates


# ---------------------------------------------------------------------------------------------
# zypper --xmlout list-updates
# ---------------------------------------------------------------------------------------------

LU_TOOL = "zypper list-updates"


def parse_list_updates(text: str) -> tuple[AvailableUpdate, ...]:
    """``<update kind="package" name edition edition-old arch>`` with ``<source alias>``."""
    stream = parse_stream(text, LU_TOOL, ("update-status",))
    out: list[AvailableUpdate] = []
    if not stream.elements:
        _no_status(stream, LU_TOOL)
        return ()
    for u in _update_list(stream, LU_TOOL):
        if _attr(u, "kind", LU_TOOL) != "package":
            raise ParseError(f"update of kind {u.get('kind')!r} in a package list", LU_TOOL)
        name = _attr(u, "name", LU_TOOL)
        ref = _ref(name, _attr(u, "edition", LU_TOOL), _attr(u, "arch", LU_TOOL), LU_TOOL)
        old = _attr(u, "edition-old", LU_TOOL)
        if not old:
            raise ParseError(f"update of {name} without edition-old (not installed?)", LU_TOOL)
        source = u.find("source")
        repo = source.get("alias", "") if source is not None else ""
        if not repo:
            raise ParseError(f"update of {name} without a repository alias", LU_TOOL)
        out.append(AvailableUpdate(package=ref, repository=repo,
                                   installed_evr=_ref(name, old, ref.arch, LU_TOOL).evr))
    return tuple(out)


def _no_status(stream: Stream, tool: str) -> None:
    """No ``<update-status>``: only acceptable when zypper said why in an error message."""
    if not stream.errors:
        raise ParseError("no <update-status> element and no error message", tool)


# ---------------------------------------------------------------------------------------------
# zypper --xmlout list-patches --all
# ---------------------------------------------------------------------------------------------

LP_TOOL = "zypper list-patches"
# optional: needed, but an optional-category patch zypper installs only with --with-optional.
_STATUSES = {"needed": False, "applied": True, "unwanted": False, "optional": False,
             "not-needed": None}
_ISSUE_TYPES = frozenset({"cve", "bugzilla", "self", "jira", "fate", "other"})
_PATCH_CHILDREN = frozenset({"summary", "description", "license", "source", "issue-date",
                             "issue-list", "status-since"})


@dataclass(frozen=True, slots=True)
class PatchEntry:
    """One patch of ``list-patches``, before its packages are known."""

    name: str
    edition: str
    status: str
    repo: str
    advisory: Advisory


def parse_list_patches(text: str) -> tuple[PatchEntry, ...]:
    """Every patch zypper knows, with its status; ``not-needed`` ones are kept here (the
    caller drops them) so that a test can see them."""
    stream = parse_stream(text, LP_TOOL, ("update-status",))
    if not stream.elements:
        _no_status(stream, LP_TOOL)
        return ()
    out: list[PatchEntry] = []
    for u in _update_list(stream, LP_TOOL):
        if _attr(u, "kind", LP_TOOL) != "patch":
            raise ParseError(f"update of kind {u.get('kind')!r} in a patch list", LP_TOOL)
        out.append(_patch(u))
    return tuple(out)


def _patch(u: ET.Element) -> PatchEntry:
    name = _attr(u, "name", LP_TOOL)
    status = _attr(u, "status", LP_TOOL)
    if status not in _STATUSES:
        raise ParseError(f"patch {name}: unknown status {status!r}", LP_TOOL)
    issued: datetime | None = None
    cves: list[str] = []
    bugs: list[str] = []
    for child in u:
        if child.tag not in _PATCH_CHILDREN:
            raise ParseError(f"patch {name}: unexpected <{child.tag}>", LP_TOOL)
        if child.tag == "issue-date":
            stamp = _attr(child, "time_t", LP_TOOL)
            if not stamp.isdigit():
                raise ParseError(f"patch {name}: issue-date {stamp!r} is not a number", LP_TOOL)
            issued = datetime.fromtimestamp(int(stamp), UTC) if int(stamp) else None
        elif child.tag == "issue-list":
            for issue in child:
                kind = _attr(issue, "type", LP_TOOL)
                if issue.tag != "issue" or kind not in _ISSUE_TYPES:
                    raise ParseError(f"patch {name}: unexpected issue {kind!r}", LP_TOOL)
                if kind == "cve":
                    cves.append(_attr(issue, "id", LP_TOOL))
                elif kind == "bugzilla":
                    bugs.append(_attr(issue, "id", LP_TOOL))
    summary = u.find("summary")
    source = u.find("source")
    repo = source.get("alias", "") if source is not None else ""
    if not repo:
        raise ParseError(f"patch {name} without a repository alias", LP_TOOL)
    advisory = Advisory(
        id=name,
        type=_attr(u, "category", LP_TOOL),
        severity=_attr(u, "severity", LP_TOOL),
        title=(summary.text or "") if summary is not None else "",
        updated=issued,
        cves=tuple(dict.fromkeys(cves)),
        bugzillas=tuple(dict.fromkeys(bugs)),
        reboot_suggested=_bool(u, "restart", LP_TOOL),
        interactive=_bool(u, "interactive", LP_TOOL),
        installed=status == "applied",
    )
    return PatchEntry(name, _attr(u, "edition", LP_TOOL), status, repo, advisory)


# ---------------------------------------------------------------------------------------------
# zypper --xmlout info -t patch NAME...
# ---------------------------------------------------------------------------------------------

INFO_TOOL = "zypper info -t patch"
_INFO_FIELD = re.compile(r"^(?P<key>[A-Z][A-Za-z ]*?) *: ?(?P<value>.*)$")
_CONFLICT = re.compile(r"^ {4}(?P<name>\S+) < (?P<evr>\S+)$")
# libzypp writes a noarch capability without its arch ("fake-tzdata < 1.1-1"), so the text after
# the last dot is an arch only when it is one.
_ARCHES = frozenset({
    "noarch", "x86_64", "i386", "i486", "i586", "i686", "athlon", "aarch64", "aarch64_ilp32",
    "armv6hl", "armv7hl", "armv7l", "ppc", "ppc64", "ppc64le", "ppc64p7", "s390", "s390x",
    "riscv64", "loongarch64", "x86_64_v2", "x86_64_v3", "x86_64_v4",
})
_SRC_CONFLICT = re.compile(r"^ {4}srcpackage:\S+ < \S+$")
_COUNT = re.compile(r"^\[(\d+)\]$")


def parse_patch_info(text: str) -> dict[str, tuple[RpmRef, ...]]:
    """Patch name -> the package versions it brings, from each patch's ``Conflicts``."""
    stream = parse_stream(text, INFO_TOOL)
    out: dict[str, tuple[RpmRef, ...]] = {}
    for message in stream.messages:
        lines = message.text.splitlines()
        if message.type != "info" or not lines or not lines[0].startswith("Repository"):
            if message.type == "info" and message.text in _PREAMBLE:
                continue
            if message.type == "warning":
                continue
            raise ParseError(f"unexpected {message.type} message", INFO_TOOL, None,
                             message.text[:200])
        name, refs = _info_block(lines)
        if name in out and out[name] != refs:
            raise ParseError(f"patch {name} shown twice with different packages", INFO_TOOL)
        out[name] = refs
    return out


_PREAMBLE = frozenset({"Loading repository data...", "Reading installed packages..."})


def _info_block(lines: list[str]) -> tuple[str, tuple[RpmRef, ...]]:
    fields: dict[str, str] = {}
    current = ""
    refs: list[tuple[str, str, str]] = []
    expected: int | None = None
    for no, line in enumerate(lines, 1):
        if line.startswith("    "):
            if current == "Conflicts":
                if m := _CONFLICT.match(line):
                    name, dot, arch = m["name"].rpartition(".")
                    if not dot or arch not in _ARCHES:
                        name, arch = m["name"], "noarch"
                    refs.append((name, arch, m["evr"]))
                elif not _SRC_CONFLICT.match(line):
                    raise ParseError("not a 'name.arch < version' conflict", INFO_TOOL, no, line)
            elif current not in ("Description", "Provides", "Requires", "Obsoletes",
                                 "Recommends", "Suggests", "Supplements", "Enhances"):
                raise ParseError(f"indented line under {current!r}", INFO_TOOL, no, line)
            continue
        m = _INFO_FIELD.match(line)
        if not m:
            if not line.strip():
                continue
            raise ParseError("not a 'Field : value' line", INFO_TOOL, no, line)
        current = m["key"]
        fields[current] = m["value"]
        if current == "Conflicts":
            c = _COUNT.match(m["value"].strip())
            if not c:
                raise ParseError("expected 'Conflicts : [N]'", INFO_TOOL, no, line)
            expected = int(c[1])
    name = fields.get("Name")
    if not name:
        raise ParseError("patch details without a Name", INFO_TOOL, 1, lines[0])
    if expected is None:
        raise ParseError(f"patch {name} has no Conflicts list", INFO_TOOL)
    return name, _drop_noarch_twins(name, refs)


def _drop_noarch_twins(patch: str, refs: list[tuple[str, str, str]]) -> tuple[RpmRef, ...]:
    real = {(n, evr) for n, arch, evr in refs if arch != "noarch"}
    out: list[RpmRef] = []
    for n, arch, evr in refs:
        if arch == "noarch" and (n, evr) in real:
            continue
        ref = _ref(n, evr, arch, INFO_TOOL)
        if ref not in out:
            out.append(ref)
    return tuple(out)


def patches(
    entries: Iterable[PatchEntry],
    dump: updateinfo.Dump,
    details: Mapping[str, tuple[RpmRef, ...]] | None = None,
) -> tuple[Advisory, ...]:
    """Patches as :class:`Advisory`: status, category, severity and flags from
    ``list-patches``; packages and dates from the repository's updateinfo.xml (``dump``), or
    for a patch whose repository's updateinfo was not read, packages from ``zypper info``
    (``details``) and the date from ``list-patches``. ``not-needed`` patches are dropped."""
    out: list[Advisory] = []
    for e in entries:
        if e.status == "not-needed":
            continue
        a = e.advisory
        notice = dump.origin.get((e.repo, e.name))
        if notice is not None:
            out.append(replace(a, issued=notice.issued, updated=notice.updated,
                               packages=notice.packages,
                               cves=tuple(dict.fromkeys(a.cves + notice.cves)),
                               bugzillas=tuple(dict.fromkeys(a.bugzillas + notice.bugzillas)),
                               reboot_suggested=a.reboot_suggested or notice.reboot_suggested))
            continue
        refs = (details or {}).get(e.name)
        if refs is None:
            raise ParseError(f"patch {e.name} ({e.repo}) is in no updateinfo.xml read and has "
                             "no details from zypper info", LP_TOOL)
        out.append(replace(a, packages=refs))
    return tuple(sorted(out, key=lambda a: a.id))


def undescribed(entries: Iterable[PatchEntry], dump: updateinfo.Dump) -> list[str]:
    """Names of kept patches whose repository's updateinfo.xml was not read."""
    return sorted({e.name for e in entries
                   if e.status != "not-needed" and (e.repo, e.name) not in dump.origin})


# ---------------------------------------------------------------------------------------------
# zypper --xmlout needs-rebooting
# ---------------------------------------------------------------------------------------------

NR_TOOL = "zypper needs-rebooting"
_NR_TEXT = {
    "Core libraries or services have been updated.": True,
    "Reboot is required to ensure that your system benefits from these updates.": True,
    "No core libraries or services have been updated.": False,
    "Reboot is probably not necessary.": False,
}


def parse_needs_rebooting(exit_status: int, stdout: str, boot_id: str) -> RebootState:
    """Exit 102 when a reboot is needed, 0 when not (plain text, or ``--xmlout`` messages).
    zypper names no package."""
    if stdout.lstrip().startswith("<?xml"):
        stream = parse_stream(stdout, NR_TOOL)
        for m in stream.messages:
            if m.type != "info":
                raise ParseError(f"unexpected {m.type} message", NR_TOOL, None, m.text[:200])
        lines = [line for m in stream.messages for line in m.text.splitlines()]
    else:
        lines = stdout.splitlines()
    verdicts = set()
    for no, line in enumerate(lines, 1):
        text = " ".join(line.split())
        if not text:
            continue
        if text not in _NR_TEXT:
            raise ParseError("unexpected line", NR_TOOL, no, line)
        verdicts.add(_NR_TEXT[text])
    if len(verdicts) != 1:
        raise ParseError("no verdict, or contradicting ones", NR_TOOL)
    required = verdicts.pop()
    if exit_status != (EXIT_REBOOT_NEEDED if required else EXIT_OK):
        raise ParseError(f"exit status {exit_status} contradicts the verdict", NR_TOOL)
    return RebootState(boot_id=boot_id, required=required)


# ---------------------------------------------------------------------------------------------
# zypper --xmlout refresh
# ---------------------------------------------------------------------------------------------

REF_TOOL = "zypper refresh"


def parse_refresh(exit_status: int, stdout: str, stderr: str) -> RefreshResult:
    """A refresh's outcome. A lock or failing repository is a warning: the scan goes on with
    the metadata the node has (as for apt)."""
    text = (stdout + "\n" + stderr).replace("\n", " ")
    if exit_status == EXIT_LOCKED:
        m = _LOCKED.search(text)
        holder = f" by {m[2] or 'an application'} (pid {m[1]})" if m else ""
        return RefreshResult(attempted=True, ok=False,
                             message=f"repository metadata not refreshed: zypper is locked"
                                     f"{holder}; scanned with the metadata already on the node")
    stream: Stream | None
    try:
        stream = parse_stream(stdout, REF_TOOL)
    except ParseError:
        stream = None
    if exit_status == EXIT_OK and stream is not None and not stream.errors:
        return RefreshResult(attempted=True, ok=True, message="; ".join(stream.warnings[:3]))
    detail = _detail(stream, stdout, stderr) or f"zypper refresh exited {exit_status}"
    return RefreshResult(attempted=True, ok=False,
                         message=f"repository metadata not refreshed: {detail} (zypper exit "
                                 f"{exit_status}); scanned with the metadata already on the node")
