"""What an Install run will do on one node, decided before anything runs (spec §1.3, §2.2, §2.4).

:func:`plan_install` turns the evaluation of a node into exact, pinned package specs:

- **Baseline install.** Every MISSING record, at the version evaluation approved (its
  ``available_version``), so the package manager cannot pick anything newer than the baseline
  approves. Specs per tool: apt ``name=version`` (``name:arch=version`` for a foreign arch;
  ``all`` packages and the native arch need none), dnf/yum ``name-[epoch:]version-release.arch``
  (a NEVRA, which dnf and yum both accept), zypper ``name.arch=[epoch:]version-release`` (a
  capability with an exact edition, which ``zypper install`` resolves to that one version).
- **InstallOverrideList** (spec §1.3 step 1): the packages and versions the list selects
  (:mod:`patchfleet.domain.install_override`) *instead of* the baseline's; approval rules,
  approved and rejected lists are skipped, so nothing is blocked either.
- **BLOCK.** With ``rejected_patches_action: BLOCK`` the installed or available packages whose
  name matches ``rejected_patches`` are listed in :attr:`InstallPlan.block`, for the executor to
  hold / exclude / lock during the install: a rejected package is never installed, not even as a
  dependency (spec §1.3). ``ALLOW_AS_DEPENDENCY`` blocks nothing.
- **No major OS upgrade** (spec §2.2). patchfleet's rule: a distribution release package
  (``base-files``, or a name ending in ``-release`` such as ``system-release``,
  ``redhat-release``, ``rocky-release``, ``sles-release``; not ``lsb-release``, a tool) is never
  installed at a version whose major number (leading digits, epoch ignored) differs from the
  installed one. Such items go to :attr:`InstallPlan.refused` with the reason, and are not
  installed; minor upgrades (9.4 -> 9.5) go ahead.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from patchfleet.domain.baseline import Baseline, RejectedPatchesAction
from patchfleet.domain.facts import NodeFacts, PackageManager
from patchfleet.domain.install_override import InstallOverrideList, resolve_override
from patchfleet.domain.records import PatchRecord, PatchState
from patchfleet.domain.versions import parse_evr
from patchfleet.errors import ConfigError

__all__ = [
    "InstallItem",
    "InstallPlan",
    "ItemReason",
    "check_override_combination",
    "is_release_package",
    "package_spec",
    "plan_install",
]


class ItemReason(StrEnum):
    MISSING = "MISSING"
    OVERRIDE = "INSTALL_OVERRIDE_LIST"


@dataclass(frozen=True, slots=True)
class InstallItem:
    name: str
    arch: str
    from_version: str | None
    to_version: str
    spec: str
    """The argument to pass to the package manager, pinned to ``to_version``."""
    reason: ItemReason
    classification: str | None = None
    advisory_ids: tuple[str, ...] = ()
    held: bool = False


@dataclass(frozen=True, slots=True)
class RefusedItem:
    name: str
    arch: str
    from_version: str | None
    to_version: str
    reason: str


@dataclass(frozen=True, slots=True)
class InstallPlan:
    node_id: str
    package_manager: PackageManager
    items: tuple[InstallItem, ...]
    block: tuple[str, ...] = ()
    """Package names to hold (apt-mark hold), exclude (dnf --exclude) or lock (zypper addlock)
    for the duration of the install."""
    refused: tuple[RefusedItem, ...] = ()
    unmatched_override: tuple[str, ...] = ()
    """InstallOverrideList entries that selected nothing on this node."""

    @property
    def specs(self) -> tuple[str, ...]:
        return tuple(i.spec for i in self.items)

    @property
    def empty(self) -> bool:
        return not self.items

    def describe(self) -> list[str]:
        """One line per decision, for a dry run."""
        lines = []
        for i in self.items:
            detail = [i.reason.value]
            if i.classification:
                detail.append(i.classification)
            detail += i.advisory_ids
            held = " [held]" if i.held else ""
            lines.append(
                f"would install {i.name} {i.from_version or '(none)'} -> {i.to_version}"
                f" ({', '.join(detail)}){held}"
            )
        lines += [
            f"would not install {r.name} {r.from_version} -> {r.to_version}: {r.reason}"
            for r in self.refused
        ]
        if self.block:
            lines.append(f"would block (rejected, BLOCK): {', '.join(self.block)}")
        lines += [f"override entry {u!r} selects nothing" for u in self.unmatched_override]
        if not self.items:
            lines.append("nothing to install")
        return lines


def _native_arch(facts: NodeFacts) -> str:
    """dpkg's own arch; else the most common arch other than ``all``."""
    for p in facts.installed:
        if p.name == "dpkg":
            return p.arch
    counts = Counter(p.arch for p in facts.installed if p.arch not in ("all", ""))
    return counts.most_common(1)[0][0] if counts else ""


def _apt_spec(name: str, arch: str, version: str, native: str) -> str:
    foreign = arch not in ("", "all", native)
    return f"{name}:{arch}={version}" if foreign else f"{name}={version}"


def _edition(version: str) -> str:
    """``[epoch:]version-release``, the epoch only when it is not 0."""
    evr = parse_evr(version)
    vr = f"{evr.version}-{evr.release}" if evr.release is not None else evr.version
    return f"{evr.epoch_int}:{vr}" if evr.epoch_int else vr


def _nevra_spec(name: str, arch: str, version: str, native: str) -> str:
    edition = _edition(version)
    return f"{name}-{edition}.{arch}" if arch else f"{name}-{edition}"


def _zypper_spec(name: str, arch: str, version: str, native: str) -> str:
    edition = _edition(version)
    return f"{name}.{arch}={edition}" if arch else f"{name}={edition}"


@dataclass(frozen=True, slots=True)
class _Packaging:
    """How one package manager names an exact package version in its install arguments."""

    spec: Callable[[str, str, str, str], str]
    """(name, arch, version, native arch) -> the pinned install argument."""
    multiarch: bool
    """dpkg multiarch: a foreign arch is spelled out, so the node's native arch is needed."""
    rpm_names: bool
    """rejected_patches also match ``name.arch`` and ``name-version-release.arch``."""


_RPM = _Packaging(_nevra_spec, multiarch=False, rpm_names=True)
_PACKAGING: Mapping[PackageManager, _Packaging] = {
    PackageManager.APT: _Packaging(_apt_spec, multiarch=True, rpm_names=False),
    PackageManager.DNF: _RPM,
    PackageManager.YUM: _RPM,
    PackageManager.ZYPPER: _Packaging(_zypper_spec, multiarch=False, rpm_names=True),
}


def package_spec(manager: PackageManager, name: str, arch: str, version: str, native: str) -> str:
    """The pinned install argument for one package version (see the module docstring)."""
    return _PACKAGING[manager].spec(name, arch, version, native)


_MAJOR = re.compile(r"^(\d+)")


def is_release_package(name: str) -> bool:
    return name == "base-files" or (name.endswith("-release") and name != "lsb-release")


def _major(version: str) -> str | None:
    upstream = version.split(":", 1)[1] if ":" in version else version
    m = _MAJOR.match(upstream)
    return m.group(1) if m else None


def _major_upgrade(name: str, old: str | None, new: str) -> bool:
    if not is_release_package(name) or old is None:
        return False
    return _major(old) != _major(new)


def _block_names(facts: NodeFacts, baseline: Baseline) -> tuple[str, ...]:
    if baseline.rejected_patches_action is not RejectedPatchesAction.BLOCK:
        return ()
    patterns = [
        re.compile(fnmatch.translate(e[:-4] if e.endswith(".rpm") else e))
        for e in baseline.rejected_patches
    ]
    if not patterns:
        return ()
    rpm = _PACKAGING[facts.os.package_manager].rpm_names
    subjects: dict[str, set[str]] = {}

    def add(name: str, arch: str, version: str | None) -> None:
        s = subjects.setdefault(name, {name})
        if rpm and arch:
            s.add(f"{name}.{arch}")
            if version:
                evr = parse_evr(version)
                vr = f"{evr.version}-{evr.release}" if evr.release is not None else evr.version
                s.add(f"{name}-{vr}.{arch}")

    for p in facts.installed:
        add(p.name, p.arch, p.version)
    for c in facts.candidates:
        add(c.name.split(":", 1)[0], "", None)
    for u in facts.updates:
        add(u.package.name, u.package.arch, u.package.evr)
    for a in facts.advisories:
        for ref in a.packages:
            add(ref.name, ref.arch, ref.evr)
    return tuple(
        sorted(n for n, subs in subjects.items() if any(p.match(s) for p in patterns for s in subs))
    )


def plan_install(
    facts: NodeFacts,
    records: Iterable[PatchRecord],
    baseline: Baseline,
    override: InstallOverrideList | None = None,
) -> InstallPlan:
    """The install plan for one node: ``records`` are its evaluation under ``baseline``."""
    manager = facts.os.package_manager
    native = _native_arch(facts) if _PACKAGING[manager].multiarch else ""
    items: list[InstallItem] = []
    refused: list[RefusedItem] = []
    unmatched: tuple[str, ...] = ()

    def add(item: InstallItem) -> None:
        if _major_upgrade(item.name, item.from_version, item.to_version):
            refused.append(
                RefusedItem(
                    item.name,
                    item.arch,
                    item.from_version,
                    item.to_version,
                    "a distribution release package changing major version: patchfleet never "
                    "performs a major OS upgrade; upgrade the OS separately",
                )
            )
        else:
            items.append(item)

    if override is not None:
        resolution = resolve_override(facts, override)
        unmatched = resolution.unmatched
        for s in resolution.selections:
            spec = package_spec(manager, s.name, s.arch, s.version, native)
            add(
                InstallItem(
                    s.name, s.arch, s.installed_version, s.version, spec, ItemReason.OVERRIDE
                )
            )
        block: tuple[str, ...] = ()
    else:
        for r in records:
            if r.state is not PatchState.MISSING or r.available_version is None:
                continue
            spec = package_spec(manager, r.package, r.arch, r.available_version, native)
            add(
                InstallItem(
                    r.package,
                    r.arch,
                    r.installed_version,
                    r.available_version,
                    spec,
                    ItemReason.MISSING,
                    r.classification,
                    r.advisory_ids,
                    r.held,
                )
            )
        block = _block_names(facts, baseline)
    items.sort(key=lambda i: (i.name, i.arch))
    return InstallPlan(facts.node_id, manager, tuple(items), block, tuple(refused), unmatched)


def check_override_combination(baseline_override: Any, install_override: Any) -> None:
    """AWS fails the document when both are set (spec §2.4); so does patchfleet, up front."""
    if baseline_override and install_override:
        raise ConfigError(
            "BaselineOverride and InstallOverrideList cannot be used together (AWS fails the "
            "run); drop one: the override list installs exactly its patches, the baseline "
            "override changes what the baseline approves",
            source="install",
            field="install_override_list",
        )
