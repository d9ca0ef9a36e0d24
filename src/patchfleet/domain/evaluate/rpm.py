"""Baseline x facts for rpm nodes: dnf/yum (Amazon Linux, RHEL, Rocky, Alma, Oracle, CentOS,
Fedora) and zypper (SLES), spec §1.2–1.8 and §4.1.

patchfleet's reading of AWS for rpm nodes (the README repeats it for users):

1. **Patches.** One record per installed package name and arch (every row of ``rpm -qa``; rpm
   has no half-installed state). Where several versions share a name and arch (install-only
   kernels, gpg-pubkey), the newest installed version stands for them: kernel 1.0 and 1.1
   installed with 1.2 available is one MISSING ``kernel`` record, like any other package.
2. **Notices.** An updateinfo notice (dnf/yum) or zypper patch *applies* to an installed package
   when it lists the same name and arch (noarch only matches noarch) at a version above the
   installed one and not above the newest version the repositories offer (a notice for a
   version the repos don't carry is ignored). It *covers* the package when it lists a version
   at or below the installed one (the fix is installed).
3. **Classification and severity.** The notice type becomes the AWS CLASSIFICATION value:
   security, bugfix, enhancement, newpackage, recommended -> Security, Bugfix, Enhancement,
   Newpackage, Recommended; on SUSE also optional, feature, document, yast -> Optional, Feature,
   Document, Yast (SUSE repos written in RHEL style say bugfix/enhancement: mapped as dnf).
   Severities are matched case-insensitively as Critical, Important, Moderate, Low; Medium and
   Moderate match each other (Amazon Linux says Medium, external repos Moderate); an empty,
   ``None`` or ``unspecified`` severity is no severity, matched by the SEVERITY value ``None``
   (Amazon Linux 2023) and by ``*``.
4. **Malformed notices** (a type or severity outside those lists, a date before 1971 or more
   than a day after the facts were collected) count as no notice for their packages, as AWS
   does (spec §1.4); :func:`rpm_evaluation_warnings` names each one.
5. **Rules.** A rule approves a package when some applicable notice passes the global filters
   and the rule's filters (PRODUCT against the node's product, CLASSIFICATION, SEVERITY; values
   ORed, filters ANDed, ``*`` wildcards, case ignored) and its release date passes the rule's
   delay: ``release + approve_after_days <= now``, or ``release <= approve_until_date
   23:59:59 UTC``. The release date is the notice's ``updated`` date, else ``issued``, else the
   build time of that version (the scan knows it for the newest available version), else
   (patchfleet extension, a baseline with ``staged_approval``) the first-seen date of that
   version, else the newest version's build time (an older version was built before it, so the
   delay is never met earlier than AWS would meet it), else none: no delay (spec §1.8).
6. **Which version.** With ``enable_non_security: false`` a rule approves the highest version
   listed by its passing notices: AWS runs ``dnf upgrade-minimal``, which installs the smallest
   version that fixes the approved notices, not the newest. With ``enable_non_security: true``
   it approves the newest available version (AWS then runs ``dnf upgrade``, spec §2.2), and a
   package with no applicable notice qualifies too: CLASSIFICATION and SEVERITY filters don't
   drop it (spec §1.6) and its release date is the build time of the newest version (then
   first-seen, then none). A package
   whose applicable notices all fail the rule's filters is not approved by that rule.
7. **SUSE and non-security.** AWS says security and non-security patches are both installed on
   SLES without the non-security switch. patchfleet reads that as: every zypper patch category
   is a notice (a rule with CLASSIFICATION Recommended approves recommended patches with
   ``enable_non_security: false``, as Bugfix notices are on dnf), and ``enable_non_security:
   true`` additionally approves package updates that belong to no patch. The same rule on every
   rpm OS.
8. **approved_patches** are approved whatever the rules, global filters and delays say, with
   ``approved_patches_compliance_level``: a Bugzilla id (digits), a CVE id or an advisory / patch
   id approves the packages of the matching applicable notices at the versions those notices
   list; a package name or NEVRA (``name-version-release.arch``, epoch not written, SUSE's
   ``.rpm`` suffix allowed) with at most one ``*`` is matched against the bare name, ``name.arch``
   and the NEVRA of each candidate version. Matching the name approves the highest candidate,
   matching a NEVRA that version. Candidates are the applicable notices' versions, plus the
   newest available version with ``approved_patches_enable_non_security``.
9. **rejected_patches** (names and NEVRAs with one ``*``; SUSE also patch ids) take the versions
   they match out of the approved set; a lower approved version still counts. A rejected patch id
   takes its notice out entirely.
10. **States.** An approved version above the installed one -> MISSING at the highest approved
    version, with the highest compliance level among what approved that version. Otherwise an
    installed version matched by ``rejected_patches`` (or the version a rejected SUSE patch
    lists) -> INSTALLED_REJECTED under BLOCK, INSTALLED_OTHER under ALLOW_AS_DEPENDENCY.
    Otherwise INSTALLED when the installed version is covered by a notice that passes a rule's
    filters, or by ``approved_patches`` (name, NEVRA, or an id of a covering notice), or an
    ``enable_non_security`` rule's filters pass for a package in no notice (it has no
    classification or severity: only ``*`` passes those); else
    INSTALLED_OTHER. Release dates don't matter once a version is installed (as for apt).
11. **Pending reboot** (patchfleet extension with ``os_reboot_signals``, as for apt): an
    INSTALLED / INSTALLED_OTHER package
    becomes INSTALLED_PENDING_REBOOT while the OS says a reboot is required, if the OS names it
    (binary or source name; ``dnf needs-restarting -r`` prints names like ``kernel``,
    ``glibc``) or, when the OS names no package (``zypper needs-rebooting``), if it was installed
    after the node booted and is one of :data:`REBOOT_PACKAGES` (dnf-plugins-core's
    needs-restarting list plus osconfig's). No OS signal, no pending reboot: install times alone
    never make one.
12. **NOT_APPLICABLE**: exact package names or NEVRAs in ``approved_patches`` whose package is
    not installed.
13. **Columns.** ``classification`` / ``severity`` / ``release_date`` come from the most
    important notice behind the record (Security first, then severity, then the latest date):
    for MISSING the approving notices; for INSTALLED the covering notices that approved it; for
    the other states the pending applicable notices, else the newest covering ones.
    ``advisory_ids`` / ``cve_ids`` list the same notices (MISSING: every applicable notice the
    approved version fixes), sorted. ``security`` is classification Security; ``repository``
    the repo of the newest available version.
14. **Obsoletes.** A package of another name that obsoletes an installed one is not a patch
    (AWS does no obsoletes replacement, spec §2.2); the facts list updates by installed name, so
    such packages never appear.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from patchfleet.domain.baseline import Baseline, OsFamily, RejectedPatchesAction
from patchfleet.domain.evaluate.rules import (
    Filters,
    FirstSeen,
    Rule,
    check_baseline_fits,
    highest_level,
    node_family,
)
from patchfleet.domain.facts import Advisory, AvailableUpdate, InstalledPackage, NodeFacts
from patchfleet.domain.records import ComplianceLevel, PatchRecord, PatchState
from patchfleet.domain.versions import Evr, parse_evr, rpm_compare

__all__ = ["REBOOT_PACKAGES", "evaluate_rpm", "rpm_evaluation_warnings"]

_YUM_TYPES = {
    "security": "Security",
    "bugfix": "Bugfix",
    "enhancement": "Enhancement",
    "newpackage": "Newpackage",
    "recommended": "Recommended",
}
_SUSE_TYPES = {
    **_YUM_TYPES,
    "optional": "Optional",
    "feature": "Feature",
    "document": "Document",
    "yast": "Yast",
}
_FAMILY_TYPES = {OsFamily.SUSE: _SUSE_TYPES}  # every other rpm family: _YUM_TYPES
_SEVERITIES = {
    "critical": "Critical",
    "important": "Important",
    "moderate": "Moderate",
    "medium": "Medium",
    "low": "Low",
}
_NO_SEVERITY = frozenset({"", "none", "unspecified"})
_SEVERITY_RANK = {"Critical": 4, "Important": 3, "Moderate": 2, "Medium": 2, "Low": 1}
_SEVERITY_SUBJECTS = {
    "Moderate": ("Moderate", "Medium"),
    "Medium": ("Medium", "Moderate"),
}
_SECURITY = "Security"
_NOTICE_KEYS = frozenset({"CLASSIFICATION", "SEVERITY"})
_EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)

REBOOT_PACKAGES: tuple[str, ...] = (
    "kernel",
    "kernel-*",
    "glibc",
    "linux-firmware",
    "kernel-firmware*",
    "microcode_ctl",
    "ucode-*",
    "systemd",
    "dbus",
    "dbus-1",
    "dbus-broker",
    "dbus-daemon",
    "openssl-libs",
    "libopenssl*",
    "gnutls",
)
"""Packages whose install after the last boot means a reboot is pending, when the OS names
none. ``kernel-*`` leaves out the build and tools packages listed in :data:`_NOT_REBOOT`."""
_NOT_REBOOT = re.compile(
    r"kernel-(?:.*-)?(?:devel|headers|tools|tools-libs|doc|source|srpm-macros)"
)
_REBOOT_RE = re.compile("|".join(fnmatch.translate(p) for p in REBOOT_PACKAGES))

_BUGZILLA_RE = re.compile(r"\d+")
_CVE_RE = re.compile(r"CVE-\d{4}-\d+", re.IGNORECASE)
# RHSA-2017:0864, ALAS2023-2024-123, SUSE-SLE-Module-Basesystem-15-SP5-2024-1234,
# FAKESA-2025:0003-2. A NEVRA always ends in ".arch", so it never looks like one.
_ADVISORY_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9.]+)*-\d{4}[:-]\d+(?:-\d+)?")
_NEVRA_RE = re.compile(r"(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.-]+)")


_parse: Callable[[str], Evr] = functools.lru_cache(maxsize=65536)(parse_evr)


@functools.lru_cache(maxsize=65536)
def _cmp(a: str, b: str) -> int:
    """rpm_compare on EVR strings, memoised: a node compares thousands, many repeatedly."""
    return 0 if a == b else rpm_compare(_parse(a), _parse(b))


_key: Callable[[str], Any] = functools.cmp_to_key(_cmp)


def _utc(when: datetime | None) -> datetime | None:
    """In UTC; a naive time is taken to be UTC already (the collector runs tools with TZ=UTC)."""
    if when is None:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Notice:
    """A well-formed advisory, normalised to the AWS values of the node's OS family."""

    advisory: Advisory
    classification: str
    severity: str | None
    released: datetime | None  # updated, else issued (UTC)

    @property
    def id(self) -> str:
        return self.advisory.id

    @property
    def severity_subjects(self) -> tuple[str, ...]:
        if self.severity is None:
            return ("None",)
        return _SEVERITY_SUBJECTS.get(self.severity, (self.severity,))

    @property
    def importance(self) -> tuple[bool, int, datetime, str]:
        return (
            self.classification == _SECURITY,
            _SEVERITY_RANK.get(self.severity or "", 0),
            self.released or _EARLIEST,
            self.id,
        )


def _normalise(advisory: Advisory, family: OsFamily, collected_at: datetime) -> _Notice | str:
    """The notice in AWS terms, or why it is malformed."""
    types = _FAMILY_TYPES.get(family, _YUM_TYPES)
    classification = types.get(advisory.type.strip().lower())
    if classification is None:
        return f"type {advisory.type!r} is not one of {', '.join(types)}"
    raw = advisory.severity.strip().lower()
    severity: str | None = None
    if raw not in _NO_SEVERITY:
        severity = _SEVERITIES.get(raw)
        if severity is None:
            return (
                f"severity {advisory.severity!r} is not one of Critical, Important, Moderate, "
                "Medium, Low, None"
            )
    latest = collected_at + timedelta(days=1)
    for label, value in (("issued", advisory.issued), ("updated", advisory.updated)):
        when = _utc(value)
        if when is not None and not _EARLIEST <= when <= latest:
            return f"{label} date {when.isoformat()} is not a plausible release date"
    released = _utc(advisory.updated) or _utc(advisory.issued)
    return _Notice(advisory, classification, severity, released)


def _installed_keys(facts: NodeFacts) -> set[tuple[str, str]]:
    return {(p.name, p.arch) for p in facts.installed}


def rpm_evaluation_warnings(facts: NodeFacts) -> tuple[str, ...]:
    """One line per malformed advisory that lists an installed package: evaluation treats its
    packages as in no advisory (spec §1.4). Independent of the baseline."""
    family = node_family(facts)
    collected_at = _utc(facts.collected_at) or facts.collected_at
    installed = _installed_keys(facts)
    warnings = set()
    for advisory in facts.advisories:
        if not any((r.name, r.arch) in installed for r in advisory.packages):
            continue
        problem = _normalise(advisory, family, collected_at)
        if isinstance(problem, str):
            warnings.add(
                f"advisory {advisory.id}: {problem}; its packages are evaluated as if no "
                "advisory listed them"
            )
    return tuple(sorted(warnings))


def _nvras(name: str, arch: str, evr: str) -> tuple[str, ...]:
    """``name-version-release.arch``, plus the form with the epoch when there is one."""
    v = _parse(evr)
    vr = f"{v.version}-{v.release}" if v.release is not None else v.version
    plain = f"{name}-{vr}.{arch}"
    if v.epoch_int:
        return (plain, f"{name}-{v.epoch_int}:{vr}.{arch}")
    return (plain,)


class _PackagePatterns:
    """Package names and NEVRAs from approved/rejected lists, each with at most one ``*``."""

    def __init__(self, entries: Iterable[str]) -> None:
        cleaned = [e[:-4] if e.endswith(".rpm") else e for e in entries]
        self.patterns = tuple(re.compile(fnmatch.translate(e)) for e in cleaned)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def name(self, name: str, arch: str) -> bool:
        subjects = (name, f"{name}.{arch}")
        return any(p.match(s) for p in self.patterns for s in subjects)

    def version(self, name: str, arch: str, evr: str) -> bool:
        subjects = _nvras(name, arch, evr)
        return any(p.match(s) for p in self.patterns for s in subjects)

    def any(self, name: str, arch: str, evr: str) -> bool:
        return self.name(name, arch) or self.version(name, arch, evr)


@dataclass(frozen=True, slots=True)
class _IdList:
    """Advisory / patch ids, CVE ids and Bugzilla ids from an approved or rejected list."""

    advisories: frozenset[str]
    cves: frozenset[str]
    bugzillas: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.advisories or self.cves or self.bugzillas)

    def matches(self, notice: _Notice) -> bool:
        if not self:
            return False
        a = notice.advisory
        return (
            a.id.lower() in self.advisories
            or any(c.upper() in self.cves for c in a.cves)
            or any(b in self.bugzillas for b in a.bugzillas)
        )


def _split_list(
    entries: Sequence[str], known_ids: frozenset[str], ids_allowed: bool
) -> tuple[_IdList, _PackagePatterns, tuple[str, ...]]:
    """(ids, package patterns, exact package entries) of an approved/rejected list."""
    advisories: set[str] = set()
    cves: set[str] = set()
    bugzillas: set[str] = set()
    packages: list[str] = []
    for e in entries:
        if e.lower() in known_ids:
            advisories.add(e.lower())
        elif _CVE_RE.fullmatch(e):
            if ids_allowed:
                cves.add(e.upper())
        elif ids_allowed and _BUGZILLA_RE.fullmatch(e):
            bugzillas.add(e)
        elif _ADVISORY_RE.fullmatch(e):
            advisories.add(e.lower())
        else:
            packages.append(e)
    ids = _IdList(frozenset(advisories), frozenset(cves), frozenset(bugzillas))
    exact = tuple(p for p in packages if "*" not in p)
    return ids, _PackagePatterns(packages), exact


@dataclass(frozen=True, slots=True)
class _Entry:
    """One package of a notice, for one installed name.arch."""

    notice: _Notice
    evr: str


@dataclass(frozen=True, slots=True)
class _Approval:
    version: str
    level: ComplianceLevel
    notices: tuple[_Notice, ...]  # the notices that made it approved (may be empty)
    released: datetime | None


def _newest_installed(packages: Iterable[InstalledPackage]) -> list[InstalledPackage]:
    best: dict[tuple[str, str], InstalledPackage] = {}
    for p in packages:
        key = (p.name, p.arch)
        if key not in best or _cmp(p.version, best[key].version) > 0:
            best[key] = p
    return [best[k] for k in sorted(best)]


def _primary(notices: Iterable[_Notice]) -> _Notice | None:
    return max(notices, key=lambda n: n.importance, default=None)


def _unique(notices: Iterable[_Notice]) -> tuple[_Notice, ...]:
    seen: dict[str, _Notice] = {}
    for n in notices:
        seen.setdefault(n.id, n)
    return tuple(seen.values())


class _RpmEvaluator:
    def __init__(
        self,
        facts: NodeFacts,
        baseline: Baseline,
        now: datetime,
        first_seen: FirstSeen | None,
    ) -> None:
        self.facts = facts
        self.baseline = baseline
        self.now = _utc(now) or now
        self.first_seen = first_seen
        family = node_family(facts)
        self.product = facts.os.product
        self.global_filters = Filters(baseline.global_filters)
        self.rules = tuple(Rule.of(r) for r in baseline.approval_rules)
        self.block = baseline.rejected_patches_action is RejectedPatchesAction.BLOCK

        collected_at = _utc(facts.collected_at) or facts.collected_at
        self.entries: dict[tuple[str, str], list[_Entry]] = {}
        known_ids: set[str] = set()
        for advisory in facts.advisories:
            known_ids.add(advisory.id.lower())
            notice = _normalise(advisory, family, collected_at)
            if isinstance(notice, str):
                continue
            for ref in advisory.packages:
                self.entries.setdefault((ref.name, ref.arch), []).append(_Entry(notice, ref.evr))
        ids = frozenset(known_ids)
        self.approved_ids, self.approved, self.approved_exact = _split_list(
            baseline.approved_patches, ids, ids_allowed=True
        )
        # AWS takes patch ids in rejected_patches only on SUSE; validation keeps the yum
        # family's list to package names.
        self.rejected_ids, self.rejected, _ = _split_list(
            baseline.rejected_patches, ids, ids_allowed=False
        )
        self.updates: dict[tuple[str, str], AvailableUpdate] = {}
        for u in facts.updates:
            key = (u.package.name, u.package.arch)
            if key not in self.updates or (_cmp(u.package.evr, self.updates[key].package.evr) > 0):
                self.updates[key] = u
        self.reboot_names = frozenset(facts.reboot.packages)
        self.boot_time = _utc(facts.boot_time)
        self._passed: dict[tuple[int, str], bool] = {}  # (rule, notice id): filters pass

    # --- filters and dates --------------------------------------------------------------------

    def _passes(self, rule: Rule, notice: _Notice | None) -> bool:
        """Global filters and the rule's filters; ``None``: a package in no notice."""
        if notice is None:
            return self._filters_pass(rule, None)
        key = (id(rule), notice.id)
        passed = self._passed.get(key)
        if passed is None:
            passed = self._passed[key] = self._filters_pass(rule, notice)
        return passed

    def _filters_pass(self, rule: Rule, notice: _Notice | None) -> bool:
        subjects: dict[str, tuple[str, ...]]
        if notice is None:
            # As AWS (dnf upgrade --security --sec-severity ...): a package in no notice has no
            # classification or severity, so only a lone '*' passes those filters.
            subjects = {"PRODUCT": (self.product,)}
            return (self.global_filters.matches(subjects)
                    and rule.filters.matches(subjects))
        subjects = {
            "PRODUCT": (self.product,),
            "CLASSIFICATION": (notice.classification,),
            "SEVERITY": notice.severity_subjects,
        }
        return self.global_filters.matches(subjects) and rule.filters.matches(subjects)

    def _released(
        self, notice: _Notice | None, update: AvailableUpdate | None, name: str, version: str
    ) -> datetime | None:
        if notice is not None and notice.released is not None:
            return notice.released
        built = _utc(update.build_time) if update is not None else None
        if built is not None and update is not None and _cmp(update.package.evr, version) == 0:
            return built  # the build time of this very version
        if self.first_seen is not None and self.baseline.staged_approval:
            return _utc(self.first_seen.get((name, version))) or self.now
        return built  # an older version was built before the newest; None: AWS, no delay

    def _date_ok(self, rule: Rule, released: datetime | None) -> bool:
        return released is None or rule.released_in_time(released, self.now)

    def _version_rejected(self, name: str, arch: str, evr: str) -> bool:
        return bool(self.rejected) and self.rejected.any(name, arch, evr)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self) -> tuple[PatchRecord, ...]:
        installed = _newest_installed(self.facts.installed)
        records = [self._package(p) for p in installed]
        records += self._not_applicable(installed)
        return tuple(records)

    def _not_applicable(self, installed: Sequence[InstalledPackage]) -> list[PatchRecord]:
        names = {p.name for p in installed}
        name_arches = {f"{p.name}.{p.arch}" for p in installed}
        missing: set[tuple[str, str]] = set()
        for entry in self.approved_exact:
            e = entry[:-4] if entry.endswith(".rpm") else entry
            if e in names or e in name_arches:
                continue
            m = _NEVRA_RE.fullmatch(e)
            if m is None:
                name, arch = e, ""
                if self.rejected.name(name, arch):
                    continue
            else:
                name, arch = m["name"], m["arch"]
                evr = f"{m['version']}-{m['release']}"
                if name in names or self._version_rejected(name, arch, evr):
                    continue
            missing.add((name, arch))
        return [
            PatchRecord(
                package=name,
                arch=arch,
                installed_version=None,
                available_version=None,
                state=PatchState.NOT_APPLICABLE,
            )
            for name, arch in sorted(missing)
        ]

    def _package(self, pkg: InstalledPackage) -> PatchRecord:
        key = (pkg.name, pkg.arch)
        update = self.updates.get(key)
        if update is not None and _cmp(update.package.evr, pkg.version) <= 0:
            update = None
        newest = update.package.evr if update is not None else None
        applicable_all: list[_Entry] = []
        covering_all: list[_Entry] = []
        for e in self.entries.get(key, ()):
            if _cmp(e.evr, pkg.version) <= 0:
                covering_all.append(e)
            elif newest is not None and _cmp(e.evr, newest) <= 0:
                applicable_all.append(e)
        applicable = [e for e in applicable_all if not self.rejected_ids.matches(e.notice)]
        covering = [e for e in covering_all if not self.rejected_ids.matches(e.notice)]
        in_no_notice = not applicable_all and not covering_all

        approvals = self._rule_approvals(pkg, update, applicable, not applicable_all)
        approvals += self._list_approvals(pkg, update, applicable)

        level: ComplianceLevel | None = None
        shown: Sequence[_Notice] = ()
        listed: Sequence[_Notice] = ()
        released: datetime | None = None
        available = newest
        if approvals:
            version = max((a.version for a in approvals), key=_key)
            chosen = [a for a in approvals if a.version == version]
            level = highest_level(a.level for a in chosen)
            shown = _unique(n for a in chosen for n in a.notices)
            listed = _unique(e.notice for e in applicable if _cmp(e.evr, version) <= 0)
            primary = _primary(shown)
            if primary is not None:
                released = self._released(primary, update, pkg.name, version)
            else:
                released = next((a.released for a in chosen if a.released), None)
            available = version
            state = PatchState.MISSING
        elif self._installed_rejected(pkg, covering_all):
            state = PatchState.INSTALLED_REJECTED if self.block else PatchState.INSTALLED_OTHER
            shown = listed = self._pending_or_installed(applicable_all, covering_all)
        else:
            level, approving = self._installed_level(pkg, covering, in_no_notice)
            if level is not None:
                state = PatchState.INSTALLED
                shown = listed = _newest_notices(approving)
            else:
                state = PatchState.INSTALLED_OTHER
                shown = listed = self._pending_or_installed(applicable_all, covering_all)

        if state in (PatchState.INSTALLED, PatchState.INSTALLED_OTHER) and self._pending_reboot(
            pkg
        ):
            state = PatchState.INSTALLED_PENDING_REBOOT
        if state.non_compliant and level is None:
            level = ComplianceLevel.UNSPECIFIED

        primary = _primary(shown)
        if state is not PatchState.MISSING and primary is not None:
            released = primary.released
        classification = primary.classification if primary else None
        return PatchRecord(
            package=pkg.name,
            arch=pkg.arch,
            installed_version=pkg.version,
            available_version=available,
            state=state,
            classification=classification,
            severity=primary.severity if primary else None,
            advisory_ids=tuple(sorted({n.id for n in listed})),
            cve_ids=tuple(sorted({c for n in listed for c in n.advisory.cves})),
            release_date=released,
            compliance_level=level,
            source_package=pkg.source_name or None,
            repository=update.repository if update is not None else None,
            security=classification == _SECURITY,
        )

    def _pick(self, pkg: InstalledPackage, versions: Iterable[str]) -> str | None:
        """The highest version that rejected_patches leaves approved."""
        allowed = [v for v in versions if not self._version_rejected(pkg.name, pkg.arch, v)]
        return max(allowed, key=_key) if allowed else None

    def _rule_approvals(
        self,
        pkg: InstalledPackage,
        update: AvailableUpdate | None,
        applicable: Sequence[_Entry],
        in_no_notice: bool,
    ) -> list[_Approval]:
        approvals: list[_Approval] = []
        for rule in self.rules:
            passing = [
                e
                for e in applicable
                if self._passes(rule, e.notice)
                and self._date_ok(rule, self._released(e.notice, update, pkg.name, e.evr))
            ]
            if passing:
                versions = {e.evr for e in passing}
                if rule.non_security and update is not None:
                    versions.add(update.package.evr)
                version = self._pick(pkg, versions)
                if version is None:
                    continue
                notices = _unique(e.notice for e in passing if _cmp(e.evr, version) <= 0)
                primary = _primary(notices)
                released = self._released(primary, update, pkg.name, version)
                approvals.append(_Approval(version, rule.level, notices, released))
            elif rule.non_security and in_no_notice and update is not None:
                version = update.package.evr
                released = self._released(None, update, pkg.name, version)
                if (
                    self._passes(rule, None)
                    and self._date_ok(rule, released)
                    and not self._version_rejected(pkg.name, pkg.arch, version)
                ):
                    approvals.append(_Approval(version, rule.level, (), released))
        return approvals

    def _list_approvals(
        self,
        pkg: InstalledPackage,
        update: AvailableUpdate | None,
        applicable: Sequence[_Entry],
    ) -> list[_Approval]:
        b = self.baseline
        candidates: dict[str, list[_Notice]] = {}
        for e in applicable:
            candidates.setdefault(e.evr, []).append(e.notice)
        if b.approved_patches_enable_non_security and update is not None:
            candidates.setdefault(update.package.evr, [])
        versions: set[str] = {e.evr for e in applicable if self.approved_ids.matches(e.notice)}
        if self.approved.name(pkg.name, pkg.arch):
            versions.update(candidates)
        elif self.approved:
            versions.update(v for v in candidates if self.approved.version(pkg.name, pkg.arch, v))
        version = self._pick(pkg, versions)
        if version is None:
            return []
        notices = _unique(n for v, ns in candidates.items() if _cmp(v, version) <= 0 for n in ns)
        released = self._released(_primary(notices), update, pkg.name, version)
        return [_Approval(version, b.approved_patches_compliance_level, notices, released)]

    def _installed_rejected(self, pkg: InstalledPackage, covering_all: Sequence[_Entry]) -> bool:
        if self._version_rejected(pkg.name, pkg.arch, pkg.version):
            return True
        return any(
            _cmp(e.evr, pkg.version) == 0 and self.rejected_ids.matches(e.notice)
            for e in covering_all
        )

    def _installed_level(
        self, pkg: InstalledPackage, covering: Sequence[_Entry], in_no_notice: bool
    ) -> tuple[ComplianceLevel | None, list[_Entry]]:
        """The level the installed version is approved with (None: not approved), and the
        covering notices that approve it."""
        levels: list[ComplianceLevel] = []
        approving: list[_Entry] = []
        by_list = [e for e in covering if self.approved_ids.matches(e.notice)]
        if by_list or (self.approved and self.approved.any(pkg.name, pkg.arch, pkg.version)):
            levels.append(self.baseline.approved_patches_compliance_level)
            approving += by_list
        for rule in self.rules:
            passing = [e for e in covering if self._passes(rule, e.notice)]
            if passing:
                levels.append(rule.level)
                approving += passing
            elif rule.non_security and in_no_notice and self._passes(rule, None):
                levels.append(rule.level)
        return highest_level(levels), approving

    @staticmethod
    def _pending_or_installed(
        applicable: Sequence[_Entry], covering: Sequence[_Entry]
    ) -> tuple[_Notice, ...]:
        if applicable:
            return _unique(e.notice for e in applicable)
        return _newest_notices(covering)

    def _pending_reboot(self, pkg: InstalledPackage) -> bool:
        if not (self.facts.reboot.required and self.baseline.os_reboot_signals):
            return False
        if self.reboot_names:
            return pkg.name in self.reboot_names or bool(
                pkg.source_name and pkg.source_name in self.reboot_names
            )
        if self.boot_time is None:
            return False
        installed_at = _utc(pkg.install_time)
        return (
            installed_at is not None
            and installed_at > self.boot_time
            and _REBOOT_RE.match(pkg.name) is not None
            and _NOT_REBOOT.fullmatch(pkg.name) is None
        )


def _newest_notices(entries: Sequence[_Entry]) -> tuple[_Notice, ...]:
    """The notices of the highest version among ``entries`` (the latest fix installed)."""
    if not entries:
        return ()
    top = max((e.evr for e in entries), key=_key)
    return _unique(e.notice for e in entries if _cmp(e.evr, top) == 0)


def evaluate_rpm(
    facts: NodeFacts,
    baseline: Baseline,
    now: datetime,
    first_seen: FirstSeen | None = None,
) -> tuple[PatchRecord, ...]:
    """Evaluate a dnf, yum or zypper node against a baseline of its OS (rules in the module
    docstring). ``first_seen`` (package, version) -> date is the last fallback for a release
    date, after the notice's dates and the package's build time."""
    check_baseline_fits(facts, baseline, node_family(facts))
    return _RpmEvaluator(facts, baseline, now, first_seen).evaluate()
