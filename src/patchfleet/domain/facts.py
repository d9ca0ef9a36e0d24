"""Typed facts gathered from one node: what parsers produce and evaluation consumes.

Plain frozen dataclasses (not pydantic): they are built by the thousand per node and cross Prefect
task boundaries, so they must be cheap and picklable. Nothing here talks to a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PackageManager(StrEnum):
    APT = "apt"
    DNF = "dnf"
    YUM = "yum"
    ZYPPER = "zypper"


@dataclass(frozen=True, slots=True)
class OsInfo:
    """What /etc/os-release says, plus what patchfleet derives from it.

    ``operating_system`` is the AWS OperatingSystem enum value (``DEBIAN``, ``UBUNTU``, ...) that
    picks the baseline; ``product`` the AWS PRODUCT filter value (``Debian12``, ``Ubuntu22.04``).
    """

    id: str
    version_id: str
    name: str
    pretty_name: str
    version_codename: str
    id_like: tuple[str, ...]
    operating_system: str
    product: str
    package_manager: PackageManager


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """One installed binary package (dpkg: a row of dpkg-query; rpm: a row of rpm -qa).

    ``version`` is the full version as the package manager compares it: dpkg's
    ``[epoch:]upstream[-revision]``, rpm's ``[E:]V-R`` (epoch left out when 0).
    """

    name: str
    arch: str
    version: str
    source_name: str
    source_version: str
    status: str  # dpkg db:Status-Status, e.g. "installed", "half-configured"
    held: bool = False
    priority: str = ""
    section: str = ""
    install_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class PackageOrigin:
    """One repository release a package version is available from.

    For apt these are the fields of a Release file as ``apt-cache policy`` shows them
    (o=, l=, a=, n=, c=) plus the site. ``security`` is decided once, by the parser, with the rule
    in :func:`patchfleet.parsers.apt.is_security_origin`.
    """

    origin: str = ""
    label: str = ""
    archive: str = ""  # a= (suite), e.g. "stable-security", "jammy-security"
    codename: str = ""  # n=, e.g. "bookworm-security"
    component: str = ""
    site: str = ""
    security: bool = False

    @property
    def display(self) -> str:
        """A short name for reports: ``Debian-Security:bookworm-security``."""
        name = self.label or self.origin or self.site or "local"
        where = self.codename or self.archive
        return f"{name}:{where}" if where else name


@dataclass(frozen=True, slots=True)
class PackageVersion:
    """One version of a package that the node's repositories (or dpkg status) offer."""

    version: str
    origins: tuple[PackageOrigin, ...] = ()
    installed: bool = False
    priority: str = ""
    section: str = ""

    @property
    def security(self) -> bool:
        return any(o.security for o in self.origins)

    @property
    def from_repository(self) -> bool:
        """False when the only source is dpkg's status file (installed locally, in no repo)."""
        return bool(self.origins)


@dataclass(frozen=True, slots=True)
class PackageCandidates:
    """Everything apt knows about one installed package's versions (``apt-cache policy``)."""

    name: str
    installed_version: str | None
    candidate_version: str | None
    versions: tuple[PackageVersion, ...] = ()

    def version(self, version: str) -> PackageVersion | None:
        for v in self.versions:
            if v.version == version:
                return v
        return None


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One ``Inst`` line of ``apt-get -s dist-upgrade``: what the resolver would do."""

    name: str
    arch: str
    old_version: str | None  # None: a new install (pulled in as a dependency)
    new_version: str
    origins: tuple[str, ...]  # "Label:Version/Suite" exactly as apt printed them

    @property
    def is_new_install(self) -> bool:
        return self.old_version is None


@dataclass(frozen=True, slots=True)
class RpmRef:
    """One rpm package version: name, epoch, version, release, arch (a NEVRA)."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str

    @property
    def evr(self) -> str:
        """``E:V-R`` with the epoch left out when it is 0 (what rpm prints)."""
        vr = f"{self.version}-{self.release}"
        return f"{self.epoch}:{vr}" if self.epoch else vr

    @property
    def nvra(self) -> str:
        """``name-version-release.arch``: the form AWS's approved/rejected lists use."""
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"


@dataclass(frozen=True, slots=True)
class AvailableUpdate:
    """The newest version of an installed rpm package that the node's repositories offer."""

    package: RpmRef
    repository: str
    installed_evr: str
    build_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Advisory:
    """One updateinfo notice (dnf/yum) or zypper patch, with the packages it updates.

    ``type`` is the raw type or category as the repository states it (``security``,
    ``bugfix``, ``enhancement``, ``newpackage``, ``recommended``, ``optional``, ``feature``,
    ``document``, ``yast``); ``severity`` the raw severity (``Critical``, ``Important``,
    ``Moderate``, ``Low``, ``None`` or empty). Dates are UTC. ``installed`` is true when every
    package of the notice is installed at or above its version (dnf ``i``, zypper ``applied``).
    """

    id: str
    type: str
    severity: str = ""
    title: str = ""
    issued: datetime | None = None
    updated: datetime | None = None
    cves: tuple[str, ...] = ()
    bugzillas: tuple[str, ...] = ()
    packages: tuple[RpmRef, ...] = ()
    reboot_suggested: bool = False
    interactive: bool = False
    installed: bool = False


@dataclass(frozen=True, slots=True)
class RebootState:
    """Whether the OS says a reboot is pending, and which packages asked for it."""

    boot_id: str
    required: bool
    packages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """Outcome of refreshing the package lists (``apt-get update``) before the scan."""

    attempted: bool
    ok: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """Everything a scan learned about one node. Input of baseline evaluation."""

    node_id: str
    host: str
    os: OsInfo
    installed: tuple[InstalledPackage, ...]
    candidates: tuple[PackageCandidates, ...]
    planned: tuple[PlannedChange, ...]
    reboot: RebootState
    refresh: RefreshResult
    collected_at: datetime
    warnings: tuple[str, ...] = field(default=())
    updates: tuple[AvailableUpdate, ...] = field(default=())
    """rpm families: the newest available version of each upgradable package."""
    advisories: tuple[Advisory, ...] = field(default=())
    """rpm families: updateinfo notices / zypper patches, installed and available."""
    boot_time: datetime | None = None
    """When the node booted (UTC), to tell packages installed since the boot."""
