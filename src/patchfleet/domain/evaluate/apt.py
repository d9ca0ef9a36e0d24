"""Baseline x facts for apt nodes (Debian, Ubuntu, Raspbian): one PatchRecord per installed
package (spec §1.3–1.5, §4.1). The filter and rule machinery is shared with the rpm evaluator
(:mod:`patchfleet.domain.evaluate.rules`).

patchfleet's reading of AWS for apt nodes, step by step (the README repeats it for users):

1. Only packages dpkg reports as ``installed`` are considered.
2. Each approval rule looks at one version of a package: with ``enable_non_security: false`` the
   highest version newer than the installed one that a security origin offers; with ``true``
   apt's candidate version, if newer. The rule approves it when it passes the global filters and
   the rule's filters: PRODUCT against the node's product (``Debian12``), PRIORITY against the
   version's Priority, SECTION against its Section. Values within a filter are ORed, filters
   ANDed, case ignored; PRIORITY and SECTION values are compared exactly as AWS does (only a
   lone ``*`` is a wildcard: ``net`` does not match ``contrib/net``), PRODUCT takes ``*``
   anywhere. A version with no Priority/Section metadata uses the installed package's.
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
7. patchfleet extension (a baseline with ``os_reboot_signals``; AWS never marks patches it
   did not install): a package the OS lists in ``/var/run/reboot-required.pkgs`` (binary or
   source name) while a reboot is required becomes INSTALLED_PENDING_REBOOT instead of
   INSTALLED / INSTALLED_OTHER.
8. Exact names in ``approved_patches`` that are not installed get a NOT_APPLICABLE record.

Debian and Ubuntu publish no release dates, so, as in AWS, ``approve_after_days`` /
``approve_until_date`` are ignored on apt; a baseline with ``staged_approval`` (a patchfleet
extension) counts them from the ``first_seen`` dates the caller passes, and its records carry
the first-seen date of their available version as ``release_date``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from patchfleet.domain.baseline import Baseline, OsFamily, RejectedPatchesAction
from patchfleet.domain.evaluate.rules import (
    Filters,
    FirstSeen,
    Rule,
    check_baseline_fits,
    highest_level,
)
from patchfleet.domain.facts import (
    InstalledPackage,
    NodeFacts,
    PackageCandidates,
    PackageOrigin,
    PackageVersion,
)
from patchfleet.domain.memo import IdentityMemo
from patchfleet.domain.records import ComplianceLevel, PatchRecord, PatchState
from patchfleet.domain.versions import dpkg_compare

__all__ = ["evaluate_apt"]

_SECURITY = "Security"
# (product, pending reboot) + (baseline, package, table) by identity -> its record.
_RECORDS: IdentityMemo[PatchRecord] = IdentityMemo()
# (product, reboot list) + (baseline, installed tuple, candidates tuple) -> the node's records:
# nodes whose facts share their tuples (rebuilt from the store for a what-if) are judged once.
_NODES: IdentityMemo[tuple[PatchRecord, ...]] = IdentityMemo(max_entries=4096)


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
        self.global_filters = Filters(baseline.global_filters)
        self.rules = tuple(Rule.of(r) for r in baseline.approval_rules)
        self.approved = _Names(baseline.approved_patches)
        self.rejected = _Names(baseline.rejected_patches)
        self.block = baseline.rejected_patches_action is RejectedPatchesAction.BLOCK
        self.reboot = (frozenset(facts.reboot.packages)
                       if facts.reboot.required and baseline.os_reboot_signals else frozenset())
        self.candidates: dict[str, PackageCandidates] = {c.name: c for c in facts.candidates}
        self.dated = first_seen is not None and any(rule.delayed for rule in self.rules)

    def _candidates_of(self, pkg: InstalledPackage) -> PackageCandidates | None:
        return self.candidates.get(f"{pkg.name}:{pkg.arch}") or self.candidates.get(pkg.name)

    def _date_ok(self, rule: Rule, pkg: InstalledPackage, version: str) -> bool:
        if self.first_seen is None or not rule.delayed:
            return True
        seen = self.first_seen.get((pkg.name, version)) or self.now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        return rule.released_in_time(seen, self.now)

    def _passes(self, filters: Filters, pkg: InstalledPackage, v: PackageVersion) -> bool:
        priority = v.priority or pkg.priority
        section = v.section or pkg.section
        return filters.passes(self.product, priority, section)

    def _memoised(self, pkg: InstalledPackage) -> PatchRecord:
        """``_package(pkg)``, reused for the same package, table, baseline and product on any
        node (see domain.memo). Only when no date decides: then ``now`` plays no part."""
        cands = self._candidates_of(pkg)
        rebooting = bool(self.reboot) and (
            pkg.name in self.reboot or (bool(pkg.source_name) and pkg.source_name in self.reboot))
        key = (self.product, rebooting)
        objects = (self.baseline, pkg, cands)
        record = _RECORDS.lookup(key, objects)
        if record is None:
            record = _RECORDS.store(key, objects, self._package(pkg))
        return record

    def evaluate(self) -> tuple[PatchRecord, ...]:
        if self.dated:
            return self._evaluate()
        key = (self.product, self.reboot)
        objects = (self.baseline, self.facts.installed, self.facts.candidates)
        records = _NODES.lookup(key, objects)
        if records is None:
            records = _NODES.store(key, objects, self._evaluate())
        return records

    def _evaluate(self) -> tuple[PatchRecord, ...]:
        judge = self._package if self.dated else self._memoised
        records = [judge(pkg) for pkg in self.facts.installed if pkg.status == "installed"]
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
            level = highest_level(lv for v, lv in approvals if v.version == relevant.version)
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
            release_date=self._seen(pkg, available) if self.dated and available else None,
        )

    def _seen(self, pkg: InstalledPackage, version: str) -> datetime:
        """When the fleet first saw ``version`` offered (now if never): the release date of a
        staged record."""
        seen = (self.first_seen or {}).get((pkg.name, version)) or self.now
        return seen if seen.tzinfo else seen.replace(tzinfo=UTC)

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
        return highest_level(levels)


def evaluate_apt(
    facts: NodeFacts,
    baseline: Baseline,
    now: datetime,
    first_seen: FirstSeen | None = None,
) -> tuple[PatchRecord, ...]:
    """Evaluate an apt node (Debian, Ubuntu, Raspbian) against a baseline of its OS.

    ``first_seen`` gives the dates that ``approve_after_days`` / ``approve_until_date`` count
    from, for a baseline with ``staged_approval`` (a patchfleet extension); otherwise, as AWS
    does for apt, rules approve immediately.
    """
    check_baseline_fits(facts, baseline, OsFamily.APT)
    if not baseline.staged_approval:  # AWS: no release dates on apt, delays don't apply
        first_seen = None
    return _AptEvaluator(facts, baseline, now, first_seen).evaluate()
