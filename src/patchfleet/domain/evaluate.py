"""Baseline x facts -> one PatchRecord per installed package (spec §1.3–1.5, §4.1).

:func:`evaluate` picks the evaluator by package manager: apt here, dnf/yum/zypper in
:mod:`patchfleet.domain.evaluate_rpm` (which reuses this module's filter and rule helpers).

patchfleet's reading of AWS for apt nodes, step by step (the README repeats it for users):

1. Only packages dpkg reports as ``installed`` are considered.
2. Each approval rule looks at one version of a package: with ``enable_non_security: false`` the
   highest version newer than the installed one that a security origin offers; with ``true``
   apt's candidate version, if newer. The rule approves it when it passes the global filters and
   the rule's filters: PRODUCT against the node's product (``Debian12``), PRIORITY against the
   version's Priority, SECTION against its Section (``contrib/net`` also matches ``net``). Values
   within a filter are ORed, filters ANDed, ``*`` wildcards allowed, case ignored. A version with
   no Priority/Section metadata uses the installed package's.
3. ``approved_patches`` (package names, wildcards) are approved whatever the filters say, at
   apt's candidate (``approved_patches_enable_non_security``) or the highest security version.
4. ``rejected_patches`` are removed from the approved set.
5. Of several approved versions the highest wins; its compliance level is the highest level
   among the rules (and the approved list) that approved that version.
6. States: rejected and installed -> INSTALLED_REJECTED under BLOCK, else INSTALLED_OTHER. An
   approved version newer than the installed one -> MISSING (held packages too; the record's
   ``held`` says so). Otherwise INSTALLED when the installed version itself would be approved (a
   rule whose filters pass on it and, without ``enable_non_security``, a security origin offers
   it; or the name is in ``approved_patches``), else INSTALLED_OTHER.
7. patchfleet extension: a package the OS lists in ``/var/run/reboot-required.pkgs`` (binary or
   source name) while a reboot is required becomes INSTALLED_PENDING_REBOOT instead of
   INSTALLED / INSTALLED_OTHER.
8. Exact names in ``approved_patches`` that are not installed get a NOT_APPLICABLE record.

Debian and Ubuntu publish no release dates, so ``approve_after_days`` / ``approve_until_date``
only take effect when the caller passes ``first_seen`` dates; without them approval is
immediate, as in AWS.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from patchfleet.domain.baseline import (
    Baseline,
    OperatingSystem,
    OsFamily,
    PatchFilter,
    PatchRule,
    RejectedPatchesAction,
)
from patchfleet.domain.facts import (
    InstalledPackage,
    NodeFacts,
    PackageCandidates,
    PackageManager,
    PackageOrigin,
    PackageVersion,
)
from patchfleet.domain.records import LEVEL_ORDER, ComplianceLevel, PatchRecord, PatchState
from patchfleet.domain.versions import dpkg_compare
from patchfleet.errors import ConfigError, UnsupportedOSError

__all__ = [
    "FirstSeen",
    "check_baseline_fits",
    "evaluate",
    "evaluate_apt",
    "evaluation_warnings",
]

FirstSeen = Mapping[tuple[str, str], datetime | None]
"""(package, version) -> when patchfleet first saw that version offered to the node."""

_SECURITY = "Security"


def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(value.lower()))


class _Names:
    """Package-name patterns (approved / rejected lists): ``*`` wildcards, case-sensitive as
    Debian names are lower-case anyway."""

    def __init__(self, names: Iterable[str]) -> None:
        self.exact = frozenset(n for n in names if "*" not in n)
        self.patterns = tuple(re.compile(fnmatch.translate(n)) for n in names if "*" in n)

    def __contains__(self, name: object) -> bool:
        if name in self.exact:
            return True
        return isinstance(name, str) and any(p.match(name) for p in self.patterns)


class _Filters:
    """One filter group, compiled: each key's value patterns."""

    def __init__(self, filters: Iterable[PatchFilter]) -> None:
        self.filters = tuple((f.key, tuple(_pattern(v) for v in f.values)) for f in filters)

    def matches(self, subjects: Mapping[str, Sequence[str]], skip: Container[str] = ()) -> bool:
        """Every filter matches one of its key's subjects. Keys in ``skip`` are not checked; a
        key with no subjects (data the OS doesn't have) never matches."""
        for key, patterns in self.filters:
            if key in skip:
                continue
            lowered = [s.lower() for s in subjects.get(key, ())]
            if not any(p.match(s) for p in patterns for s in lowered):
                return False
        return True

    def passes(self, product: str, priority: str, section: str) -> bool:
        return self.matches(
            {
                "PRODUCT": (product,),
                "PRIORITY": (priority,),
                "SECTION": (section, section.rsplit("/", 1)[-1]),
            }
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    filters: _Filters
    level: ComplianceLevel
    non_security: bool
    after_days: int | None
    until: datetime | None

    @classmethod
    def of(cls, rule: PatchRule) -> _Rule:
        until = None
        if rule.approve_until_date is not None:
            d = rule.approve_until_date
            until = datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC)
        return cls(
            _Filters(rule.patch_filters),
            rule.compliance_level,
            rule.enable_non_security,
            rule.approve_after_days,
            until,
        )


def _highest_level(levels: Iterable[ComplianceLevel]) -> ComplianceLevel | None:
    ranked = sorted(levels, key=LEVEL_ORDER.index)
    return ranked[0] if ranked else None


def _newest(versions: Iterable[PackageVersion]) -> PackageVersion | None:
    best: PackageVersion | None = None
    for v in versions:
        if best is None or dpkg_compare(v.version, best.version) > 0:
            best = v
    return best


def _origin(version: PackageVersion | None) -> PackageOrigin | None:
    if version is None or not version.origins:
        return None
    for o in version.origins:
        if o.security:
            return o
    return version.origins[0]


class _AptEvaluator:
    def __init__(
        self,
        facts: NodeFacts,
        baseline: Baseline,
        now: datetime,
        first_seen: FirstSeen | None,
    ) -> None:
        self.facts = facts
        self.baseline = baseline
        self.now = now if now.tzinfo else now.replace(tzinfo=UTC)
        self.first_seen = first_seen
        self.product = facts.os.product
        self.global_filters = _Filters(baseline.global_filters)
        self.rules = tuple(_Rule.of(r) for r in baseline.approval_rules)
        self.approved = _Names(baseline.approved_patches)
        self.rejected = _Names(baseline.rejected_patches)
        self.block = baseline.rejected_patches_action is RejectedPatchesAction.BLOCK
        self.reboot = frozenset(facts.reboot.packages) if facts.reboot.required else frozenset()
        self.candidates: dict[str, PackageCandidates] = {c.name: c for c in facts.candidates}

    def _candidates_of(self, pkg: InstalledPackage) -> PackageCandidates | None:
        return self.candidates.get(f"{pkg.name}:{pkg.arch}") or self.candidates.get(pkg.name)

    def _date_ok(self, rule: _Rule, pkg: InstalledPackage, version: str) -> bool:
        if self.first_seen is None or (rule.after_days is None and rule.until is None):
            return True
        seen = self.first_seen.get((pkg.name, version)) or self.now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if rule.after_days is not None:
            return seen + timedelta(days=rule.after_days) <= self.now
        return rule.until is not None and seen <= rule.until

    def _passes(self, filters: _Filters, pkg: InstalledPackage, v: PackageVersion) -> bool:
        priority = v.priority or pkg.priority
        section = v.section or pkg.section
        return filters.passes(self.product, priority, section)

    def evaluate(self) -> tuple[PatchRecord, ...]:
        records = [self._package(pkg) for pkg in self.facts.installed if pkg.status == "installed"]
        records.sort(key=lambda r: (r.package, r.arch))
        installed_names = {p.name for p in self.facts.installed if p.status == "installed"}
        for name in sorted(self.approved.exact - installed_names):
            if name not in self.rejected:
                records.append(
                    PatchRecord(
                        package=name,
                        arch="",
                        installed_version=None,
                        available_version=None,
                        state=PatchState.NOT_APPLICABLE,
                    )
                )
        return tuple(records)

    def _package(self, pkg: InstalledPackage) -> PatchRecord:
        cands = self._candidates_of(pkg)
        newer = [
            v
            for v in (cands.versions if cands else ())
            if v.version != pkg.version and dpkg_compare(v.version, pkg.version) > 0
        ]
        security_best = _newest(v for v in newer if v.security)
        candidate_best: PackageVersion | None = None
        cv = cands.candidate_version if cands else None
        if cands and cv and dpkg_compare(cv, pkg.version) > 0:
            candidate_best = cands.version(cv) or PackageVersion(cv)
        installed_v = (cands.version(pkg.version) if cands else None) or PackageVersion(
            pkg.version, installed=True
        )
        rejected = pkg.name in self.rejected

        # Each approval: (version, compliance level of what approved it).
        approvals: list[tuple[PackageVersion, ComplianceLevel]] = []
        if not rejected:
            for rule in self.rules:
                v = candidate_best if rule.non_security else security_best
                if (
                    v is not None
                    and self._passes(self.global_filters, pkg, v)
                    and self._passes(rule.filters, pkg, v)
                    and self._date_ok(rule, pkg, v.version)
                ):
                    approvals.append((v, rule.level))
            if pkg.name in self.approved:
                b = self.baseline
                v = candidate_best if b.approved_patches_enable_non_security else security_best
                if v is not None:
                    approvals.append((v, b.approved_patches_compliance_level))

        level: ComplianceLevel | None = None
        relevant = installed_v
        if rejected:
            state = PatchState.INSTALLED_REJECTED if self.block else PatchState.INSTALLED_OTHER
        elif approvals:
            relevant = _newest(v for v, _ in approvals) or installed_v
            level = _highest_level(lv for v, lv in approvals if v.version == relevant.version)
            state = PatchState.MISSING
        else:
            level = self._installed_level(pkg, installed_v)
            state = PatchState.INSTALLED if level is not None else PatchState.INSTALLED_OTHER

        if state in (PatchState.INSTALLED, PatchState.INSTALLED_OTHER) and (
            pkg.name in self.reboot or (pkg.source_name and pkg.source_name in self.reboot)
        ):
            state = PatchState.INSTALLED_PENDING_REBOOT
        if state.non_compliant and level is None:
            level = ComplianceLevel.UNSPECIFIED

        available: str | None = None
        if state is PatchState.MISSING:
            available = relevant.version
        elif candidate_best is not None:
            available = candidate_best.version
        priority = relevant.priority or pkg.priority
        section = relevant.section or pkg.section
        origin = _origin(relevant)
        return PatchRecord(
            package=pkg.name,
            arch=pkg.arch,
            installed_version=pkg.version,
            available_version=available,
            state=state,
            classification=_SECURITY if relevant.security else None,
            severity=priority or None,
            priority=priority or None,
            section=section or None,
            compliance_level=level,
            source_package=pkg.source_name or None,
            repository=origin.display if origin else None,
            held=pkg.held,
            security=relevant.security,
        )

    def _installed_level(
        self, pkg: InstalledPackage, installed_v: PackageVersion
    ) -> ComplianceLevel | None:
        """The compliance level the installed version would be approved with, or None."""
        levels = []
        if pkg.name in self.approved:
            levels.append(self.baseline.approved_patches_compliance_level)
        if self._passes(self.global_filters, pkg, installed_v):
            levels += [
                rule.level
                for rule in self.rules
                if (rule.non_security or installed_v.security)
                and self._passes(rule.filters, pkg, installed_v)
            ]
        return _highest_level(levels)


def check_baseline_fits(facts: NodeFacts, baseline: Baseline, family: OsFamily) -> None:
    """Raise ConfigError unless ``baseline`` is of ``family`` and, when the node's OS is one AWS
    names, of that very OS (a Rocky baseline never judges a RHEL node)."""
    if baseline.family is not family or (
        facts.os.operating_system in OperatingSystem.__members__
        and baseline.operating_system != facts.os.operating_system
    ):
        raise ConfigError(
            f"baseline {baseline.name!r} is for {baseline.operating_system.value}, but node "
            f"{facts.node_id!r} runs {facts.os.operating_system or facts.os.pretty_name}; use a "
            f"baseline whose operating_system is {facts.os.operating_system}",
            source=baseline.name,
            field="operating_system",
        )


def evaluate_apt(
    facts: NodeFacts,
    baseline: Baseline,
    now: datetime,
    first_seen: FirstSeen | None = None,
) -> tuple[PatchRecord, ...]:
    """Evaluate an apt node (Debian, Ubuntu, Raspbian) against a baseline of its OS.

    ``first_seen`` gives the dates that ``approve_after_days`` / ``approve_until_date`` count
    from; None (the default) approves immediately, as AWS does for apt.
    """
    check_baseline_fits(facts, baseline, OsFamily.APT)
    return _AptEvaluator(facts, baseline, now, first_seen).evaluate()


_RPM_MANAGERS = (PackageManager.DNF, PackageManager.YUM, PackageManager.ZYPPER)


def evaluate(
    facts: NodeFacts,
    baseline: Baseline,
    now: datetime,
    first_seen: FirstSeen | None = None,
) -> tuple[PatchRecord, ...]:
    """Per-package states of one node under ``baseline``, by the node's package manager."""
    if facts.os.package_manager == PackageManager.APT:
        return evaluate_apt(facts, baseline, now, first_seen)
    if facts.os.package_manager in _RPM_MANAGERS:
        # Imported here: evaluate_rpm builds on this module's helpers.
        from patchfleet.domain.evaluate_rpm import evaluate_rpm

        return evaluate_rpm(facts, baseline, now, first_seen)
    raise UnsupportedOSError(
        f"{facts.os.pretty_name or facts.os.id} uses {facts.os.package_manager.value}, which "
        "patchfleet cannot evaluate; supported: apt, dnf, yum, zypper",
        node_id=facts.node_id,
    )


def evaluation_warnings(facts: NodeFacts) -> tuple[str, ...]:
    """What evaluation had to disregard in ``facts`` (for example an advisory with an unknown
    severity, treated as no advisory). Depends on the facts only, not on the baseline."""
    if facts.os.package_manager in _RPM_MANAGERS:
        from patchfleet.domain.evaluate_rpm import rpm_evaluation_warnings

        return rpm_evaluation_warnings(facts)
    return ()
