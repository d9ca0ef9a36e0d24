"""InstallOverrideList (spec §3.1, §1.3 step 1): install exactly these patches, not the baseline's.

The file is YAML with a ``patches:`` list; each entry has an ``id`` and an optional ``title``;
other keys (and other top-level keys) are ignored, as AWS ignores them: this is AWS's file
format, and a list written for AWS-RunPatchBaseline must work unchanged (the one file patchfleet
reads that does not reject unknown keys; duplicate keys are still errors). The file is read by
:mod:`patchfleet.config.overrides`; this module validates the data and applies it::

    patches:
      - id: 'kernel.x86_64'
      - id: 'bind*.x86_64'
        title: '32:9.8.2-0.62.rc1.57.amzn1'

patchfleet's reading, for Linux nodes:

- ``id`` is matched, ``*`` wildcards anywhere, case-sensitively, against each installed package's
  ``name.arch`` (and, as a convenience, its bare ``name``: ``openssl`` selects every arch).
- ``title`` filters versions, ``*`` wildcards anywhere. It is matched against the AWS form
  ``{name}.{arch}:{epoch}:{version}-{release}`` (rpm; epoch 0 written) or
  ``{name}.{arch}:{version}`` (apt), and also against the version alone
  (``{epoch}:{version}-{release}`` and ``{version}-{release}`` for rpm; the dpkg version for
  apt), since AWS's own example writes only the version.
- Candidates are the versions above the installed one that the node's repositories offer: apt's
  ``apt-cache policy`` versions; rpm's newest available update plus every version an updateinfo
  notice / zypper patch lists for that name and arch. Without a title the target is apt's
  candidate (what apt would pick under its pinning) or rpm's newest available version; with a
  title, the newest candidate that matches it.
- Only installed packages are upgraded; the list never installs a package that is not there.
  An entry that selects nothing is reported in :attr:`OverrideResolution.unmatched`.
- After the install, a rescan evaluates the node against its baseline as usual: a version
  installed only because the list asked for it is not approved by the baseline and so reports
  INSTALLED_OTHER (spec §4.1), or MISSING if the baseline approves an even newer version.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchfleet.domain.baseline import OsFamily
from patchfleet.domain.evaluate.rules import FAMILY_OF_MANAGER
from patchfleet.domain.facts import InstalledPackage, NodeFacts
from patchfleet.domain.model_errors import short_repr
from patchfleet.domain.versions import dpkg_compare, parse_evr, rpm_compare
from patchfleet.errors import ConfigError

__all__ = [
    "InstallOverrideList",
    "OverridePatch",
    "OverrideResolution",
    "OverrideSelection",
    "parse_install_override",
    "resolve_override",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OverridePatch(_Lenient):
    id: str = Field(min_length=1)
    """Linux: ``name.arch``, ``*`` wildcards allowed."""
    title: str | None = None
    """Optional version filter, ``*`` wildcards allowed."""

    @field_validator("id", "title", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        # YAML turns unquoted 1.0 into a float and 12345 into an int; ids and titles are text.
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, str):
            v = v.strip()
            if not v:
                raise ValueError("must not be empty")
        return v


class InstallOverrideList(_Lenient):
    patches: list[OverridePatch]


def parse_install_override(data: Any, source: str) -> InstallOverrideList:
    """Validate a parsed InstallOverrideList; errors name ``source`` and the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            "an InstallOverrideList must be a mapping with a 'patches:' list of {id, title}",
            source=source,
        )
    try:
        return InstallOverrideList.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            if e["type"] == "missing":
                msg = "required field is missing"
            elif e["type"] == "value_error":
                msg = str((e.get("ctx") or {}).get("error", e["msg"]))
            else:
                msg = f"{e['msg']} (got {short_repr(e.get('input'))})"
            lines.append((loc, msg))
        if len(lines) == 1:
            raise ConfigError(lines[0][1], source=source, field=lines[0][0]) from None
        raise ConfigError("; ".join(f"{f}: {m}" for f, m in lines), source=source) from None


@dataclass(frozen=True, slots=True)
class OverrideSelection:
    """One installed package the list selects, and the exact version to install."""

    name: str
    arch: str
    installed_version: str
    version: str
    """apt: the dpkg version; rpm: ``[E:]V-R`` with the epoch left out when 0."""
    patch_id: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class OverrideResolution:
    selections: tuple[OverrideSelection, ...]
    unmatched: tuple[str, ...]
    """Entries (``id`` or ``id title``) that selected no installed package with a newer version."""


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _newest_installed(installed: Iterable[InstalledPackage], rpm: bool) -> list[InstalledPackage]:
    best: dict[tuple[str, str], InstalledPackage] = {}
    cmp = rpm_compare if rpm else dpkg_compare
    for p in installed:
        if not rpm and p.status != "installed":
            continue
        key = (p.name, p.arch)
        if key not in best or cmp(p.version, best[key].version) > 0:
            best[key] = p
    return sorted(best.values(), key=lambda p: (p.name, p.arch))


def _title_subjects(pkg: InstalledPackage, version: str, rpm: bool) -> tuple[str, ...]:
    if not rpm:
        return (f"{pkg.name}.{pkg.arch}:{version}", version)
    evr = parse_evr(version)
    vr = f"{evr.version}-{evr.release}" if evr.release is not None else evr.version
    full = f"{evr.epoch_int}:{vr}"
    return (f"{pkg.name}.{pkg.arch}:{full}", full, vr)


def _candidates(facts: NodeFacts, pkg: InstalledPackage, rpm: bool) -> tuple[list[str], str | None]:
    """(versions above the installed one, the default target without a title)."""
    if not rpm:
        cands = {c.name: c for c in facts.candidates}
        c = cands.get(f"{pkg.name}:{pkg.arch}") or cands.get(pkg.name)
        if c is None:
            return [], None
        newer = [
            v.version
            for v in c.versions
            if v.from_repository and dpkg_compare(v.version, pkg.version) > 0
        ]
        cv = c.candidate_version
        default = cv if cv and dpkg_compare(cv, pkg.version) > 0 else None
        return newer, default
    versions: set[str] = set()
    for u in facts.updates:
        if u.package.name == pkg.name and u.package.arch == pkg.arch:
            versions.add(u.package.evr)
    for a in facts.advisories:
        for ref in a.packages:
            if ref.name == pkg.name and ref.arch == pkg.arch:
                versions.add(ref.evr)
    newer = [v for v in versions if rpm_compare(v, pkg.version) > 0]
    default = None
    for v in newer:
        if default is None or rpm_compare(v, default) > 0:
            default = v
    return newer, default


def resolve_override(facts: NodeFacts, override: InstallOverrideList) -> OverrideResolution:
    """The exact (name, arch, version) to install on this node for each package the list
    selects. When several entries select one package, the first entry that yields a version
    wins (list order is the author's priority)."""
    rpm = FAMILY_OF_MANAGER[facts.os.package_manager] is not OsFamily.APT
    cmp = rpm_compare if rpm else dpkg_compare
    chosen: dict[tuple[str, str], OverrideSelection] = {}
    unmatched: list[str] = []
    installed = _newest_installed(facts.installed, rpm)
    for entry in override.patches:
        id_rx = _rx(entry.id)
        title_rx = _rx(entry.title) if entry.title else None
        hit = False
        for pkg in installed:
            if not (id_rx.match(f"{pkg.name}.{pkg.arch}") or id_rx.match(pkg.name)):
                continue
            newer, default = _candidates(facts, pkg, rpm)
            target: str | None
            if title_rx is None:
                target = default
            else:
                target = None
                for v in newer:
                    if any(title_rx.match(s) for s in _title_subjects(pkg, v, rpm)) and (
                        target is None or cmp(v, target) > 0
                    ):
                        target = v
            if target is None:
                continue
            hit = True
            chosen.setdefault(
                (pkg.name, pkg.arch),
                OverrideSelection(pkg.name, pkg.arch, pkg.version, target, entry.id, entry.title),
            )
        if not hit:
            unmatched.append(f"{entry.id} {entry.title}" if entry.title else entry.id)
    selections = tuple(sorted(chosen.values(), key=lambda s: (s.name, s.arch)))
    return OverrideResolution(selections, tuple(unmatched))
