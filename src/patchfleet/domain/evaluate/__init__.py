"""Baseline x facts -> one PatchRecord per installed package (spec §1.3–1.5, §4.1).

:func:`evaluate` picks the evaluator by the node's baseline family: apt in
:mod:`~patchfleet.domain.evaluate.apt`, dnf/yum/zypper in :mod:`~patchfleet.domain.evaluate.rpm`;
both build on the shared rule machinery of :mod:`~patchfleet.domain.evaluate.rules`. Each
module's docstring spells out patchfleet's reading of AWS for its package managers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from patchfleet.domain.baseline import Baseline, OsFamily
from patchfleet.domain.evaluate.apt import evaluate_apt
from patchfleet.domain.evaluate.rpm import REBOOT_PACKAGES, evaluate_rpm, rpm_evaluation_warnings
from patchfleet.domain.evaluate.rules import (
    FAMILY_OF_MANAGER,
    FirstSeen,
    check_baseline_fits,
    node_family,
)
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import PatchRecord

__all__ = [
    "REBOOT_PACKAGES",
    "FirstSeen",
    "check_baseline_fits",
    "evaluate",
    "evaluate_apt",
    "evaluate_rpm",
    "evaluation_warnings",
    "rpm_evaluation_warnings",
]


def _no_warnings(facts: NodeFacts) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class _Evaluator:
    """One family's evaluator and the warnings about facts it disregards."""

    evaluate: Callable[[NodeFacts, Baseline, datetime, FirstSeen | None], tuple[PatchRecord, ...]]
    warnings: Callable[[NodeFacts], tuple[str, ...]]


_RPM = _Evaluator(evaluate_rpm, rpm_evaluation_warnings)
_EVALUATORS: Mapping[OsFamily, _Evaluator] = {
    OsFamily.APT: _Evaluator(evaluate_apt, _no_warnings),
    OsFamily.YUM: _RPM,
    OsFamily.SUSE: _RPM,
}


def evaluate(
    facts: NodeFacts,
    baseline: Baseline,
    now: datetime,
    first_seen: FirstSeen | None = None,
) -> tuple[PatchRecord, ...]:
    """Per-package states of one node under ``baseline``, by the node's package manager."""
    return _EVALUATORS[node_family(facts)].evaluate(facts, baseline, now, first_seen)


def evaluation_warnings(facts: NodeFacts) -> tuple[str, ...]:
    """What evaluation had to disregard in ``facts`` (for example an advisory with an unknown
    severity, treated as no advisory). Depends on the facts only, not on the baseline."""
    family = FAMILY_OF_MANAGER.get(facts.os.package_manager)
    evaluator = _EVALUATORS.get(family) if family is not None else None
    return evaluator.warnings(facts) if evaluator is not None else ()
