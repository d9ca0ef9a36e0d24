"""The baseline machinery every evaluator shares: compiled patch filters, approval rules with
their release-date delay, the highest compliance level, and which baseline family judges a node.

Evaluators differ in what a filter looks at (apt: a version's Priority and Section; rpm: a
notice's classification and severity) and where a release date comes from; how filters match
and how a delay counts are the same for all, and live here.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from patchfleet.domain.baseline import (
    EXACT_FILTER_KEYS,
    Baseline,
    OperatingSystem,
    OsFamily,
    PatchFilter,
    PatchRule,
)
from patchfleet.domain.facts import NodeFacts, PackageManager
from patchfleet.domain.records import LEVEL_ORDER, ComplianceLevel
from patchfleet.errors import ConfigError, UnsupportedOSError

__all__ = [
    "FAMILY_OF_MANAGER",
    "Filters",
    "FirstSeen",
    "Rule",
    "check_baseline_fits",
    "highest_level",
    "node_family",
]

FirstSeen = Mapping[tuple[str, str], datetime | None]
"""(package, version) -> when patchfleet first saw that version offered to the node."""

FAMILY_OF_MANAGER: Mapping[PackageManager, OsFamily] = {
    PackageManager.APT: OsFamily.APT,
    PackageManager.DNF: OsFamily.YUM,
    PackageManager.YUM: OsFamily.YUM,
    PackageManager.ZYPPER: OsFamily.SUSE,
}
"""The baseline family (and so the evaluator and filter values) of each package manager."""


def node_family(facts: NodeFacts) -> OsFamily:
    """The baseline family that judges the node; UnsupportedOSError for a package manager
    patchfleet cannot evaluate."""
    family = FAMILY_OF_MANAGER.get(facts.os.package_manager)
    if family is None:
        raise UnsupportedOSError(
            f"{facts.os.pretty_name or facts.os.id} uses {facts.os.package_manager.value}, "
            f"which patchfleet cannot evaluate; supported: {', '.join(FAMILY_OF_MANAGER)}",
            node_id=facts.node_id,
        )
    return family


@dataclass(frozen=True, slots=True)
class _Values:
    """One filter's values, case ignored. For :data:`EXACT_FILTER_KEYS` as AWS compares them: exact,
    and a lone ``*`` matches anything, missing metadata too (``Opt*`` matches only ``Opt*``).
    Other keys (PRODUCT, CLASSIFICATION, ...) also take ``*`` inside a value
    (``RockyLinux9.*``)."""

    any: bool
    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, key: str, values: Iterable[str]) -> _Values:
        lowered = tuple(v.lower() for v in values)
        globbing = key not in EXACT_FILTER_KEYS
        return cls("*" in lowered,
                   frozenset(v for v in lowered if not (globbing and "*" in v)),
                   tuple(re.compile(fnmatch.translate(v)) for v in lowered
                         if globbing and "*" in v and v != "*"))

    def match(self, subject: str) -> bool:
        s = subject.lower()
        return self.any or s in self.exact or any(p.match(s) for p in self.patterns)


class Filters:
    """One filter group, compiled: each key's values."""

    def __init__(self, filters: Iterable[PatchFilter]) -> None:
        self.filters = tuple((f.key, _Values.of(f.key, f.values)) for f in filters)

    def matches(self, subjects: Mapping[str, Sequence[str]], skip: Container[str] = ()) -> bool:
        """Every filter matches one of its key's subjects. Keys in ``skip`` are not checked; a
        key with no subjects (data the OS doesn't have) matches only ``*``."""
        for key, values in self.filters:
            if key in skip:
                continue
            found = subjects.get(key, ())
            if not (values.any or any(values.match(s) for s in found)):
                return False
        return True

    def passes(self, product: str, priority: str, section: str) -> bool:
        """The apt subjects, compared as AWS does: ``contrib/net`` is matched by the SECTION
        value ``contrib/net`` (or ``*``), not by ``net``."""
        return self.matches({"PRODUCT": (product,), "PRIORITY": (priority,),
                             "SECTION": (section,)})


@dataclass(frozen=True, slots=True)
class Rule:
    """One approval rule, compiled; ``until`` is the start (00:00 UTC) of the day after
    approve_until_date: a patch released at any moment of that date is approved."""

    filters: Filters
    level: ComplianceLevel
    non_security: bool
    after_days: int | None
    until: datetime | None

    @classmethod
    def of(cls, rule: PatchRule) -> Rule:
        until = None
        if rule.approve_until_date is not None:
            d = rule.approve_until_date
            until = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
        return cls(
            Filters(rule.patch_filters),
            rule.compliance_level,
            rule.enable_non_security,
            rule.approve_after_days,
            until,
        )

    @property
    def delayed(self) -> bool:
        return self.after_days is not None or self.until is not None

    def released_in_time(self, released: datetime, now: datetime) -> bool:
        """As AWS: released strictly more than ``approve_after_days`` x 24 h before ``now``, or
        released before the day after ``approve_until_date``; True for a rule with no delay."""
        if self.after_days is not None:
            return released + timedelta(days=self.after_days) < now
        if self.until is not None:
            return released < self.until
        return True


def highest_level(levels: Iterable[ComplianceLevel]) -> ComplianceLevel | None:
    """The most important of ``levels`` (CRITICAL first), None when there are none."""
    ranked = sorted(levels, key=LEVEL_ORDER.index)
    return ranked[0] if ranked else None


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
