"""Patch baselines: AWS's baseline object in snake_case, its validation, and baseline selection.

A baseline file holds one baseline (spec §1.1)::

    name: example-debian-all-updates
    operating_system: DEBIAN
    description: Every update apt offers, security or not.
    global_filters:
      - {key: PRODUCT, values: [Debian12]}
    approval_rules:
      - patch_filters:
          - {key: PRIORITY, values: [Required, Important, Standard, Optional, Extra]}
        compliance_level: HIGH
        enable_non_security: true
    approved_patches: [openssl]
    rejected_patches: [telnet*]
    rejected_patches_action: BLOCK

Files are read by :mod:`patchfleet.config.baselines`; this module validates plain data.
Unknown keys, values outside AWS's enums, filter keys or values the OS does not have, and
``approve_after_days`` together with ``approve_until_date`` are errors that name the file, the
field path and the fix. Baselines whose name starts with ``AWS-`` are the predefined ones
patchfleet ships in ``baselines/``.

Where patchfleet departs from AWS:
- ``approve_after_days`` / ``approve_until_date`` are accepted for Debian/Ubuntu/Raspbian too (AWS
  rejects them). Evaluation ignores them there until first-seen dates exist; a rule with neither
  approves immediately on every OS.
- Filter values are validated and matched case-insensitively.
- A filter key may appear only once per filter group.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from patchfleet.domain.model_errors import short_repr
from patchfleet.domain.records import ComplianceLevel
from patchfleet.errors import ConfigError, UnknownBaselineError

__all__ = [
    "FILTER_VALUES",
    "PREDEFINED_DEFAULTS",
    "Baseline",
    "BaselineRegistry",
    "ComplianceLevel",
    "ComplianceStatus",
    "OperatingSystem",
    "OsFamily",
    "PatchFilter",
    "PatchRule",
    "PatchSource",
    "RejectedPatchesAction",
    "baseline_hash",
    "os_family",
    "parse_baseline",
]

NAME_RE = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
SOURCE_NAME_RE = re.compile(r"^[a-zA-Z0-9_\-.]{3,50}$")
APT_PATCH_NAME_RE = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9+.\-*]*$")
# Identifiers that AWS accepts in ApprovedPatches but not in RejectedPatches (yum family).
_CVE_OR_BUGZILLA = re.compile(r"^(?:\d+|CVE-\d{4}-\d+)$", re.IGNORECASE)
EXACT_FILTER_KEYS = frozenset({"PRIORITY", "SECTION"})
"""Filter keys whose values AWS compares exactly (a lone ``*`` is their only wildcard)."""
_ADVISORY_LIKE = re.compile(r"^(?:\d+|CVE-\d{4}-\d+|[A-Z][A-Z0-9]*-\d{4}[:\-]\d+)$")


class OperatingSystem(StrEnum):
    WINDOWS = "WINDOWS"
    AMAZON_LINUX = "AMAZON_LINUX"
    AMAZON_LINUX_2 = "AMAZON_LINUX_2"
    AMAZON_LINUX_2022 = "AMAZON_LINUX_2022"
    AMAZON_LINUX_2023 = "AMAZON_LINUX_2023"
    UBUNTU = "UBUNTU"
    DEBIAN = "DEBIAN"
    REDHAT_ENTERPRISE_LINUX = "REDHAT_ENTERPRISE_LINUX"
    CENTOS = "CENTOS"
    ORACLE_LINUX = "ORACLE_LINUX"
    ROCKY_LINUX = "ROCKY_LINUX"
    ALMA_LINUX = "ALMA_LINUX"
    SUSE = "SUSE"
    MACOS = "MACOS"
    RASPBIAN = "RASPBIAN"


class OsFamily(StrEnum):
    APT = "apt"
    YUM = "yum"
    SUSE = "suse"
    MACOS = "macos"
    WINDOWS = "windows"


_OS = OperatingSystem
_FAMILY: dict[OperatingSystem, OsFamily] = {
    _OS.UBUNTU: OsFamily.APT,
    _OS.DEBIAN: OsFamily.APT,
    _OS.RASPBIAN: OsFamily.APT,
    _OS.AMAZON_LINUX: OsFamily.YUM,
    _OS.AMAZON_LINUX_2: OsFamily.YUM,
    _OS.AMAZON_LINUX_2022: OsFamily.YUM,
    _OS.AMAZON_LINUX_2023: OsFamily.YUM,
    _OS.REDHAT_ENTERPRISE_LINUX: OsFamily.YUM,
    _OS.CENTOS: OsFamily.YUM,
    _OS.ORACLE_LINUX: OsFamily.YUM,
    _OS.ROCKY_LINUX: OsFamily.YUM,
    _OS.ALMA_LINUX: OsFamily.YUM,
    _OS.SUSE: OsFamily.SUSE,
    _OS.MACOS: OsFamily.MACOS,
    _OS.WINDOWS: OsFamily.WINDOWS,
}


def os_family(operating_system: OperatingSystem | str) -> OsFamily:
    return _FAMILY[OperatingSystem(operating_system)]


class RejectedPatchesAction(StrEnum):
    ALLOW_AS_DEPENDENCY = "ALLOW_AS_DEPENDENCY"
    BLOCK = "BLOCK"


class ComplianceStatus(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"


# Filter keys and values per OS (spec §1.2). ``None``: free text, at most that many characters.
_APT_PRIORITY = ("Required", "Important", "Standard", "Optional", "Extra")
_YUM_CLASSIFICATION = ("Security", "Bugfix", "Enhancement", "Recommended", "Newpackage")
_AL_SEVERITY = ("Critical", "Important", "Medium", "Low")
_RHEL_SEVERITY = ("Critical", "Important", "Moderate", "Low")
_SUSE_CLASSIFICATION = ("Security", "Recommended", "Optional", "Feature", "Document", "Yast")
_WINDOWS_CLASSIFICATION = (
    "CriticalUpdates",
    "DefinitionUpdates",
    "Drivers",
    "FeaturePacks",
    "SecurityUpdates",
    "ServicePacks",
    "Tools",
    "UpdateRollups",
    "Updates",
    "Upgrades",
)
FreeText = int
FilterSpec = dict[str, tuple[str, ...] | FreeText]

_APT_FILTERS: FilterSpec = {"PRODUCT": 128, "PRIORITY": _APT_PRIORITY, "SECTION": 64}
_AL_FILTERS: FilterSpec = {
    "PRODUCT": 128,
    "CLASSIFICATION": _YUM_CLASSIFICATION,
    "SEVERITY": _AL_SEVERITY,
}
_AL_NEW_FILTERS: FilterSpec = {**_AL_FILTERS, "SEVERITY": (*_AL_SEVERITY, "None")}
_RHEL_FILTERS: FilterSpec = {
    "PRODUCT": 128,
    "CLASSIFICATION": _YUM_CLASSIFICATION,
    "SEVERITY": _RHEL_SEVERITY,
}
FILTER_VALUES: dict[OperatingSystem, FilterSpec] = {
    _OS.UBUNTU: _APT_FILTERS,
    _OS.DEBIAN: _APT_FILTERS,
    _OS.RASPBIAN: _APT_FILTERS,
    _OS.AMAZON_LINUX: _AL_FILTERS,
    _OS.AMAZON_LINUX_2: _AL_FILTERS,
    _OS.AMAZON_LINUX_2022: _AL_NEW_FILTERS,
    _OS.AMAZON_LINUX_2023: _AL_NEW_FILTERS,
    _OS.REDHAT_ENTERPRISE_LINUX: _RHEL_FILTERS,
    _OS.CENTOS: _RHEL_FILTERS,
    _OS.ORACLE_LINUX: _RHEL_FILTERS,
    _OS.ROCKY_LINUX: _RHEL_FILTERS,
    _OS.ALMA_LINUX: _RHEL_FILTERS,
    _OS.SUSE: {
        "PRODUCT": 128,
        "CLASSIFICATION": _SUSE_CLASSIFICATION,
        "SEVERITY": _RHEL_SEVERITY,
    },
    _OS.MACOS: {
        "PRODUCT": 128,
        "CLASSIFICATION": ("softwareupdate", "installer", "brew", "brew cask"),
    },
    _OS.WINDOWS: {
        "PATCH_SET": ("OS", "APPLICATION"),
        "PRODUCT": 128,
        "PRODUCT_FAMILY": 128,
        "CLASSIFICATION": _WINDOWS_CLASSIFICATION,
        "MSRC_SEVERITY": ("Critical", "Important", "Moderate", "Low", "Unspecified"),
    },
}
"""Which filter keys each OS accepts, and their allowed values (or maximum length)."""

PREDEFINED_DEFAULTS: dict[OperatingSystem, str] = {
    _OS.DEBIAN: "AWS-DebianDefaultPatchBaseline",
    _OS.UBUNTU: "AWS-UbuntuDefaultPatchBaseline",
    _OS.RASPBIAN: "AWS-DefaultRaspbianPatchBaseline",
    _OS.AMAZON_LINUX: "AWS-AmazonLinuxDefaultPatchBaseline",
    _OS.AMAZON_LINUX_2: "AWS-AmazonLinux2DefaultPatchBaseline",
    _OS.AMAZON_LINUX_2022: "AWS-AmazonLinux2022DefaultPatchBaseline",
    _OS.AMAZON_LINUX_2023: "AWS-AmazonLinux2023DefaultPatchBaseline",
    _OS.REDHAT_ENTERPRISE_LINUX: "AWS-RedHatDefaultPatchBaseline",
    _OS.CENTOS: "AWS-CentOSDefaultPatchBaseline",
    _OS.ORACLE_LINUX: "AWS-OracleLinuxDefaultPatchBaseline",
    _OS.ROCKY_LINUX: "AWS-RockyLinuxDefaultPatchBaseline",
    _OS.ALMA_LINUX: "AWS-AlmaLinuxDefaultPatchBaseline",
    _OS.SUSE: "AWS-SuseDefaultPatchBaseline",
    _OS.MACOS: "AWS-MacOSDefaultPatchBaseline",
    _OS.WINDOWS: "AWS-DefaultPatchBaseline",
}
"""The predefined baseline AWS uses for each OS when no custom default is registered."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PatchName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PatchFilter(_Model):
    """One filter: the package passes if any value matches (``*`` wildcards)."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    values: Annotated[
        tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...],
        Field(min_length=1, max_length=20),
    ]


def _check_date(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD")
    if not isinstance(value, str | date):
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD")
    return value


class PatchRule(_Model):
    """One approval rule. Its filters are ANDed; a rule approves what passes all of them."""

    patch_filters: Annotated[tuple[PatchFilter, ...], Field(max_length=4)] = ()
    """AWS ``PatchFilterGroup.PatchFilters``: 0–4 filters."""
    compliance_level: ComplianceLevel = ComplianceLevel.UNSPECIFIED
    """Severity given to the patches this rule approves (reported when they are missing)."""
    approve_after_days: Annotated[int, Field(ge=0, le=360, strict=True)] | None = None
    """Approve a patch this many days after its release date."""
    approve_until_date: date | None = None
    """Approve patches released on or before this date (UTC, inclusive)."""
    enable_non_security: bool = False
    """Also approve updates that don't come from a security source (Linux only)."""

    @field_validator("approve_until_date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        return v if v is None else _check_date(v)

    @model_validator(mode="after")
    def _one_delay(self) -> PatchRule:
        if self.approve_after_days is not None and self.approve_until_date is not None:
            raise ValueError(
                "approve_after_days and approve_until_date are both set; keep only one of them"
            )
        return self


class PatchSource(_Model):
    """An alternative repository used instead of the node's own (Linux only, spec §1.6)."""

    name: str
    products: Annotated[
        tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...],
        Field(min_length=1, max_length=20),
    ]
    configuration: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    """A yum repo file's text, or apt sources.list lines."""

    def applies_to(self, product: str) -> bool:
        """Whether this source serves nodes of ``product`` (the AWS PRODUCT value,
        ``Debian12``, ``RockyLinux9.5``): a listed product, case ignored, ``*`` a wildcard
        (``RockyLinux9.*``, or ``*`` for every version)."""
        subject = product.lower()
        return any(fnmatch.fnmatchcase(subject, p.lower()) for p in self.products)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is not a valid source name: use 3-50 letters, digits, '_', '-', '.'"
            )
        return v


_HASHES: dict[int, tuple[Baseline, str]] = {}


def baseline_hash(baseline: Baseline) -> str:
    """A short content hash of ``baseline`` (sha256 of its canonical JSON, 16 hex digits).

    Stored beside the baseline id so a history can tell "the fleet changed" from "the baseline
    changed under the same name". Cached per baseline object: every node of a run asks.
    """
    hit = _HASHES.get(id(baseline))
    if hit is not None and hit[0] is baseline:
        return hit[1]
    digest = hashlib.sha256(baseline.model_dump_json().encode()).hexdigest()[:16]
    if len(_HASHES) >= 256:
        _HASHES.clear()
    _HASHES[id(baseline)] = (baseline, digest)
    return digest


class _Problems(ValueError):
    """Several field-level problems found by a whole-baseline check, each with its path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))
        self.problems = problems


class Baseline(_Model):
    """A patch baseline (AWS CreatePatchBaseline fields in snake_case)."""

    name: str
    """3–128 letters, digits, ``_``, ``-``, ``.``. Names starting with ``AWS-`` are predefined."""
    operating_system: OperatingSystem
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    global_filters: Annotated[tuple[PatchFilter, ...], Field(max_length=4)] = ()
    """Filters every patch must pass before any rule looks at it."""
    approval_rules: Annotated[tuple[PatchRule, ...], Field(max_length=10)] = ()
    approved_patches: Annotated[tuple[PatchName, ...], Field(max_length=50)] = ()
    """Approved even when the filters or rules would discard them (apt: bare package names)."""
    approved_patches_compliance_level: ComplianceLevel = ComplianceLevel.UNSPECIFIED
    approved_patches_enable_non_security: bool = False
    rejected_patches: Annotated[tuple[PatchName, ...], Field(max_length=50)] = ()
    """Never approved, even when a rule or ``approved_patches`` approves them."""
    rejected_patches_action: RejectedPatchesAction = RejectedPatchesAction.ALLOW_AS_DEPENDENCY
    """``BLOCK``: an installed rejected package is reported INSTALLED_REJECTED (non-compliant)."""
    available_security_updates_compliance_status: ComplianceStatus | None = None
    """Windows only."""
    sources: Annotated[tuple[PatchSource, ...], Field(max_length=20)] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    staged_approval: bool = False
    """patchfleet extension (AWS has no such setting): count ``approve_after_days`` /
    ``approve_until_date`` from the first time the fleet saw a version offered, on apt (which
    publishes no release dates) and for rpm notices with no date at all. Off, as in AWS: apt
    rules approve at once whatever their delay, and an undated rpm notice is approved."""

    os_reboot_signals: bool = False
    """patchfleet extension: a package the OS names as needing a reboot
    (``/var/run/reboot-required.pkgs``, ``needs-restarting``) is INSTALLED_PENDING_REBOOT (and
    the node NON_COMPLIANT) even when patchfleet did not install it. Off, as in AWS: "patches
    installed outside of Patch Manager are never given INSTALLED_PENDING_REBOOT"; the OS's signal
    is still stored per node (``reboot_required``, ``reboot_required_packages``)."""

    def ignored_delays(self) -> list[str]:
        """The fields whose delay AWS's behaviour ignores on this baseline (apt rules without
        ``staged_approval``), to warn about them."""
        if self.family is not OsFamily.APT or self.staged_approval:
            return []
        return [f"approval_rules.{i}.{name}" for i, r in enumerate(self.approval_rules)
                for name, value in (("approve_after_days", r.approve_after_days),
                                    ("approve_until_date", r.approve_until_date))
                if value is not None]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is not a valid baseline name: use 3-128 letters, digits, '_', '-', '.'"
            )
        return v

    def source_for(self, product: str) -> PatchSource | None:
        """The alternative source that replaces the repositories of a ``product`` node for a
        Scan or Install (spec §1.6), or None: the node's own repositories. AWS takes one
        source per product; when several list it, the first wins."""
        return next((s for s in self.sources if s.applies_to(product)), None)

    @property
    def predefined(self) -> bool:
        """True for the AWS-provided baselines (their names start with ``AWS-``)."""
        return self.name.startswith("AWS-")

    @property
    def family(self) -> OsFamily:
        return os_family(self.operating_system)

    @model_validator(mode="after")
    def _fits_os(self) -> Baseline:
        problems = _os_problems(self)
        if problems:
            raise _Problems(problems)
        return self


def _check_filters(
    filters: tuple[PatchFilter, ...], where: str, os: OperatingSystem
) -> Iterator[tuple[str, str]]:
    spec = FILTER_VALUES[os]
    seen: set[str] = set()
    for i, f in enumerate(filters):
        path = f"{where}.{i}"
        if f.key not in spec:
            yield (
                f"{path}.key",
                f"{f.key!r} is not a filter key for {os.value}; use one of {', '.join(spec)}",
            )
            continue
        if f.key in seen:
            yield f"{path}.key", f"{f.key} appears twice; put all its values in one filter"
        seen.add(f.key)
        allowed = spec[f.key]
        for j, value in enumerate(f.values):
            vpath = f"{path}.values.{j}"
            if isinstance(allowed, int):
                if len(value) > allowed:
                    yield vpath, f"{f.key} values are at most {allowed} characters"
                continue
            lowered = [a.lower() for a in allowed]
            if not fnmatch.filter(lowered, value.lower()):
                yield (
                    vpath,
                    f"{value!r} is not a {f.key} value for {os.value}; use one of "
                    f"{', '.join(allowed)} ('*' wildcards allowed)",
                )


def _check_patch_names(
    names: tuple[str, ...], where: str, os: OperatingSystem, rejected: bool
) -> Iterator[tuple[str, str]]:
    family = os_family(os)
    for i, name in enumerate(names):
        path = f"{where}.{i}"
        if family is OsFamily.APT and not APT_PATCH_NAME_RE.match(name):
            yield (
                path,
                f"{name!r} is not a bare package name; {os.value} takes package names only "
                "(no version or architecture), with '*' wildcards",
            )
        elif family in (OsFamily.YUM, OsFamily.SUSE) and name.count("*") > 1:
            yield path, f"{name!r} has more than one '*'; {os.value} allows a single wildcard"
        elif family is OsFamily.SUSE and rejected and _CVE_OR_BUGZILLA.match(name):
            yield (
                path,
                f"{name!r} is a CVE or Bugzilla ID; a SUSE rejected_patches list takes package "
                "names and patch IDs (e.g. SUSE-SLE-Module-Basesystem-15-SP6-2025-1234) only",
            )
        elif family is OsFamily.YUM and rejected and _ADVISORY_LIKE.match(name):
            yield (
                path,
                f"{name!r} looks like an advisory, CVE or Bugzilla ID; rejected_patches takes "
                "package names only",
            )
        elif family is OsFamily.MACOS and "*" in name:
            yield path, f"{name!r}: MACOS takes full package names, without wildcards"


def _os_problems(b: Baseline) -> list[tuple[str, str]]:
    os = b.operating_system
    problems = list(_check_filters(b.global_filters, "global_filters", os))
    for i, rule in enumerate(b.approval_rules):
        problems += _check_filters(rule.patch_filters, f"approval_rules.{i}.patch_filters", os)
    problems += _check_patch_names(b.approved_patches, "approved_patches", os, rejected=False)
    problems += _check_patch_names(b.rejected_patches, "rejected_patches", os, rejected=True)
    if b.available_security_updates_compliance_status is not None and os is not _OS.WINDOWS:
        problems.append(
            (
                "available_security_updates_compliance_status",
                f"applies to WINDOWS baselines only; remove it from this {os.value} baseline",
            )
        )
    if b.sources and os is _OS.WINDOWS:
        problems.append(("sources", "alternative sources are for Linux baselines only"))
    return problems


# --------------------------------------------------------------------------------------------
# Validating plain data (as read from a file)

_FIELD_NAMES = sorted(
    {n for m in (Baseline, PatchRule, PatchFilter, PatchSource) for n in m.model_fields}
)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _unknown_key_hint(key: str) -> str:
    snake = _snake(key)
    if snake != key and snake in _FIELD_NAMES:
        return (
            f"unknown key; baseline YAML uses snake_case: write {snake!r} (AWS JSON can be "
            "converted with `patchfleet baseline import`)"
        )
    close = difflib.get_close_matches(key, _FIELD_NAMES, n=1, cutoff=0.75)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key; remove it or check its spelling"


def _error_lines(err: ValidationError) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            lines += [(f"{loc}.{p}" if loc else p, m) for p, m in cause.problems]
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            msg = _unknown_key_hint(str(e["loc"][-1]))
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "enum":
            expected = (e.get("ctx") or {}).get("expected", "")
            msg = f"{short_repr(e['input'])} is not allowed; use one of {expected}"
        elif kind == "value_error":
            msg = str(cause) if cause is not None else e["msg"]
        elif kind == "too_long":
            ctx = e.get("ctx") or {}
            msg = f"at most {ctx.get('max_length')} items allowed, got {ctx.get('actual_length')}"
        elif kind == "too_short":
            msg = f"needs at least {(e.get('ctx') or {}).get('min_length')} item(s)"
        else:
            msg = f"{e['msg']} (got {short_repr(e['input'])})" if "input" in e else e["msg"]
        lines.append((loc or "(top level)", msg))
    return lines


def parse_baseline(data: Any, source: str, rename: Callable[[str], str] | None = None) -> Baseline:
    """Validate one baseline mapping; errors become a ConfigError naming ``source``.

    ``rename`` maps our field paths to the caller's spelling (the AWS JSON importer reports
    ``ApprovalRules.PatchRules.0...`` instead of ``approval_rules.0...``).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            "a baseline file must be a mapping with at least 'name' and 'operating_system'",
            source=source,
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as err:
        lines = _error_lines(err)
        if rename is not None:
            lines = [(rename(f), m) for f, m in lines]
        if len(lines) == 1:
            field, msg = lines[0]
            raise ConfigError(msg, source=source, field=field) from None
        raise ConfigError(
            "; ".join(f"{f}: {m}" for f, m in lines), source=source, field=None
        ) from None


# --------------------------------------------------------------------------------------------
# Registry and selection


class BaselineRegistry:
    """Baselines by name, with the file each came from, and the per-OS defaults.

    The default for an OS is the one registered with ``defaults`` (AWS
    RegisterDefaultPatchBaseline), else the predefined ``AWS-…`` baseline for that OS.
    """

    def __init__(
        self,
        baselines: Iterable[Baseline | tuple[Baseline, str]] = (),
        defaults: Mapping[str, str] | None = None,
    ) -> None:
        self._by_name: dict[str, Baseline] = {}
        self._source: dict[str, str] = {}
        for item in baselines:
            b, src = item if isinstance(item, tuple) else (item, "(in memory)")
            if b.name in self._by_name:
                raise ConfigError(
                    f"baseline {b.name!r} is defined twice ({self._source[b.name]} and {src}); "
                    "baseline names must be unique",
                    source=src,
                    field="name",
                )
            self._by_name[b.name] = b
            self._source[b.name] = src
        self._defaults: dict[OperatingSystem, str] = {}
        for os_name, name in (defaults or {}).items():
            self._defaults[self._os(os_name)] = name

    @staticmethod
    def _os(value: OperatingSystem | str) -> OperatingSystem:
        try:
            return OperatingSystem(value)
        except ValueError:
            raise UnknownBaselineError(
                f"{value!r} is not an operating system patchfleet knows; use one of "
                f"{', '.join(OperatingSystem)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Baseline]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def source(self, name: str) -> str:
        """The file the baseline was loaded from (or ``(in memory)``)."""
        self.get(name)
        return self._source[name]

    def get(self, name: str) -> Baseline:
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownBaselineError(
                f"baseline {name!r} is not defined{hint}; known baselines: "
                f"{', '.join(self.names()) or '(none)'}"
            ) from None

    def merged(self, other: BaselineRegistry, replace: bool = True) -> BaselineRegistry:
        """A registry with both sets. ``replace``: ``other`` wins on a shared name (a user's
        folder overriding an embedded baseline); otherwise a shared name is an error."""
        items = [(b, self._source[b.name]) for b in self if not (replace and b.name in other)]
        items += [(b, other._source[b.name]) for b in other]
        defaults = {k.value: v for k, v in [*self._defaults.items(), *other._defaults.items()]}
        return BaselineRegistry(items, defaults=defaults)

    def with_default(self, operating_system: OperatingSystem | str, name: str) -> BaselineRegistry:
        """Register ``name`` as the default baseline for an OS (RegisterDefaultPatchBaseline)."""
        os = self._os(operating_system)
        if self.get(name).operating_system is not os:
            raise ConfigError(
                f"baseline {name!r} is for {self.get(name).operating_system.value}, not "
                f"{os.value}; a default must be a baseline of that OS",
                source=self._source[name],
                field="operating_system",
            )
        items = [(b, self._source[b.name]) for b in self]
        defaults = {k.value: v for k, v in self._defaults.items()}
        defaults[os.value] = name
        return BaselineRegistry(items, defaults=defaults)

    def default_for(self, operating_system: OperatingSystem | str) -> Baseline:
        """The OS default: the registered custom default, else AWS's predefined baseline."""
        os = self._os(operating_system)
        name = self._defaults.get(os) or PREDEFINED_DEFAULTS[os]
        if name not in self._by_name:
            raise UnknownBaselineError(
                f"no default baseline for {os.value}: {name!r} is not loaded; pass a baseline "
                f"for this OS with --baseline, or add {name}.yaml. Known baselines: "
                f"{', '.join(self.names()) or '(none)'}"
            )
        return self._by_name[name]

    def select(
        self,
        operating_system: OperatingSystem | str,
        patch_group: str | None,
        patch_groups_map: Mapping[str, Mapping[str, str]] | None = None,
        explicit: str | Baseline | Iterable[Baseline] | None = None,
        explicit_source: str | None = None,
    ) -> Baseline:
        """Which baseline a node uses (spec §1.9).

        1. ``explicit`` (BaselineOverride): a baseline, a baseline name, or several baselines
           (read from a file by :func:`patchfleet.config.baselines.select_baseline`, which
           passes the file as ``explicit_source`` for messages); the one for this OS is used. A
           single baseline of another OS is an error; a multi-OS override without this OS falls
           through.
        2. The patch group's baseline for this OS (``patch_groups_map[group][OS]``).
        3. The OS default. An unknown group, or a group without this OS, falls back here.
        """
        os = self._os(operating_system)
        if explicit is not None:
            candidates = self._explicit(explicit)
            for b in candidates:
                if b.operating_system is os:
                    return b
            if len(candidates) == 1:
                b = candidates[0]
                raise ConfigError(
                    f"baseline {b.name!r} is for {b.operating_system.value} but the node runs "
                    f"{os.value}; pass one baseline per OS (a BaselineOverride array) or target "
                    f"only {b.operating_system.value} nodes",
                    source=explicit_source or (explicit if isinstance(explicit, str) else b.name),
                )
        if patch_group is not None and patch_groups_map:
            name = (patch_groups_map.get(patch_group) or {}).get(os.value)
            if name is not None:
                b = self.get(name)
                if b.operating_system is not os:
                    raise ConfigError(
                        f"patch group {patch_group!r} maps {os.value} to {name!r}, a "
                        f"{b.operating_system.value} baseline; map it to a {os.value} baseline",
                        source="patch_groups",
                        field=f"{patch_group}.{os.value}",
                    )
                return b
        return self.default_for(os)

    def _explicit(self, explicit: str | Baseline | Iterable[Baseline]) -> list[Baseline]:
        if isinstance(explicit, Baseline):
            return [explicit]
        if isinstance(explicit, str):
            return [self.get(explicit)]
        return list(explicit)
