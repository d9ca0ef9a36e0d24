"""The one Protocol every package manager implements, and the records it speaks in.

A :class:`Probe` pairs a command a scan sends with the parser of what it prints; every probe of
a manager is listed in :attr:`PackageManagerSupport.probes`, so the golden test parses each
capture with the very parser the collector uses and checks each capture's command against the
probe's. :class:`ProbeOutputs` holds what the probes of one node printed; a parser that needs an
earlier probe's facts (the boot id, the installed packages) reads them from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from patchfleet.domain.baseline import PatchSource
from patchfleet.domain.facts import NodeFacts, OsInfo, PackageManager, RefreshResult
from patchfleet.parsers.restarts import RestartState
from patchfleet.transport.base import Command, CommandResult, Transport

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Probe(Generic[T]):
    """A command a scan sends, paired with the parser of its output."""

    command: Command
    """The command; for probes that take arguments, the command without them."""
    parse: Callable[[CommandResult, ProbeOutputs], T] | None
    """Reads the probe's result (and earlier probes' parses from the outputs); None for a
    probe captured for reference whose output no scan reads yet."""
    build: Callable[[Sequence[str]], Command] | None = None
    """For probes with arguments (package names, patch ids): the command for these words,
    validated; ``command`` rendered, a space and the words give the same string."""
    judges_exit: bool = False
    """The parser reads the exit status itself (refreshes: a failed one is only a warning)."""
    scanned: bool = True
    """False: captured on the test nodes for the golden files, but not sent by a scan."""
    needs_package: str = ""
    """Sent only to nodes where this package is installed (when the caller knows what is):
    needrestart, whose absence a restricted sudo cannot tell from a refusal."""

    def __post_init__(self) -> None:
        if not self.command.name:
            raise ValueError(f"probe {self.command.argv[0]!r} needs a command name")

    @property
    def name(self) -> str:
        return self.command.name

    def read(self, result: CommandResult, outputs: ProbeOutputs | None = None) -> T:
        """Parse ``result`` (one run of this probe's command); ``outputs`` holds the earlier
        probes of the node, for parsers that need their facts."""
        if self.parse is None:
            raise ValueError(f"probe {self.name} has no parser")
        return self.parse(result, outputs if outputs is not None else ProbeOutputs())


def on_stdout(parse: Callable[[str], T]) -> Callable[[CommandResult, ProbeOutputs], T]:
    """A probe parser that reads only the probe's standard output."""
    return lambda result, _outputs: parse(result.stdout)


class ProbeOutputs:
    """What the probes sent to one node printed, by probe name, and their parses (each parsed
    once, on first use)."""

    def __init__(self, results: Mapping[str, CommandResult] | None = None) -> None:
        self._results: dict[str, CommandResult] = dict(results or {})
        self._parsed: dict[str, object] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._results

    def result(self, name: str) -> CommandResult:
        return self._results[name]

    def add(self, probe: Probe[T], result: CommandResult) -> T:
        """Record ``result`` as ``probe``'s output and return its parse."""
        self._results[probe.name] = result
        self._parsed.pop(probe.name, None)
        return self.parsed(probe)

    def parsed(self, probe: Probe[T]) -> T:
        if probe.name not in self._parsed:
            self._parsed[probe.name] = probe.read(self._results[probe.name], self)
        return cast(T, self._parsed[probe.name])


@dataclass(frozen=True, slots=True)
class CollectOptions:
    refresh: bool = True
    """Refresh the package metadata first (apt-get update, dnf makecache, zypper refresh), as
    AWS does. Needs root or sudo on the node."""
    lock_timeout: int = 60
    """Seconds to wait for a held package-manager lock (apt's DPkg::Lock::Timeout; dnf retries
    with backoff; zypper's ZYPP_LOCK_TIMEOUT) before the refresh is given up."""
    source: PatchSource | None = None
    """The baseline's alternative source for this node's product: it replaces the node's
    repositories for this scan (:mod:`patchfleet.managers.sources`) and is always refreshed
    (its metadata starts empty); a refresh that fails is a ``SOURCE_FAILED`` node."""


Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """One package to bring to exactly ``version``: dpkg's ``[epoch:]upstream[-revision]`` or
    rpm's ``[E:]V-R`` (as :class:`~patchfleet.domain.facts.InstalledPackage` spells them)."""

    name: str
    arch: str
    version: str


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """What to install on one node: exact versions, and names the resolver must not touch
    (rejected patches under ``BLOCK``). An InstallPlan converts into this."""

    packages: tuple[PackageSpec, ...]
    block: tuple[str, ...] = ()
    lock_timeout: int = 60
    """Seconds to wait for the package manager's lock (apt DPkg::Lock::Timeout, zypper
    ZYPP_LOCK_TIMEOUT, dnf retries with backoff)."""
    source: PatchSource | None = None
    """The baseline's alternative source: refreshed, then the install resolves against it
    instead of the node's repositories (:mod:`patchfleet.managers.sources`)."""


@dataclass(frozen=True, slots=True)
class InstallOutcome:
    ok: bool
    reason: str | None = None
    package_errors: dict[str, str] = field(default_factory=dict)
    """name -> why this package was not installed (held, not found...), when known."""
    output_tail: str = ""
    reboot_required: bool = False
    """The OS says a reboot is needed (zypper 102, /var/run/reboot-required, needs-restarting)."""
    unblock_pending: tuple[str, ...] = ()
    """Names patchfleet blocked and could not unblock (connection lost): lift on reconnect."""
    attempted: tuple[PackageSpec, ...] = ()
    duration: float = 0.0


InstalledVersions = dict[tuple[str, str], str]
"""(name, arch) -> installed version."""


class PackageManagerSupport(Protocol):
    """Everything patchfleet knows about one package manager. One module per manager implements
    it (:mod:`patchfleet.managers.apt`, ``dnf``, ``zypper``); :mod:`patchfleet.managers.registry`
    finds it for a node's :class:`PackageManager`."""

    @property
    def manager(self) -> PackageManager: ...

    @property
    def probes(self) -> tuple[Probe[Any], ...]:
        """Every scan probe, in the order a scan sends them (os-release and the refresh first,
        probes with arguments last), plus those captured for reference (``scanned=False``)."""

    @property
    def restart_probes(self) -> tuple[Probe[RestartState | None], ...]:
        """Post-install: what still runs replaced files on this family's nodes."""

    @property
    def own_updaters(self) -> tuple[str, ...]:
        """Post-install: the auto-updaters of this family (others' are left out of reports)."""

    def judge_exit(self, node_id: str, probe: Probe[Any], result: CommandResult, *,
                   waited: float) -> tuple[str, ...]:
        """Raise the NodeError an unaccepted exit status of ``probe`` means (``waited``: the
        seconds already spent retrying a held lock), or return warnings to record."""

    async def refresh(self, transport: Transport, *, node_sudo: bool,
                      options: CollectOptions) -> RefreshResult:
        """Refresh the repository metadata; a failure is a warning, never an exception."""

    async def collect(self, transport: Transport, node_id: str, host: str, os: OsInfo, *,
                      node_sudo: bool = False, options: CollectOptions | None = None,
                      progress: Progress | None = None) -> NodeFacts:
        """All facts the node offers, for one scan."""

    async def installed(self, transport: Transport) -> InstalledVersions:
        """The installed packages, for an install's before/after comparison."""

    def install_command(self, specs: Iterable[PackageSpec], *, block: Iterable[str] = (),
                        lock_timeout: int = 60) -> Command:
        """The command that upgrades to exactly these versions (never a distribution upgrade);
        ``block`` only where the manager excludes names on the install command itself."""

    def block_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        """Hold or lock rejected packages before an install; None when ``install_command``
        excludes them itself."""

    def unblock_command(self, names: Iterable[str], lock_timeout: int) -> Command | None:
        """Lift the holds or locks :meth:`block_command` set."""

    def classify_failure(self, result: CommandResult, lock_timeout: int
                         ) -> tuple[str, dict[str, str]]:
        """The failure reason of an install result (``LOCKED: ...``, ``COMMAND_FAILED: ...``)
        and, when the output names them, why single packages were not installed."""

    async def reboot_required(self, transport: Transport, result: CommandResult) -> bool:
        """Whether the OS asks for a reboot after the successful install ``result``."""

    async def install(self, transport: Transport, request: InstallRequest,
                      blocked_by_us: list[str]) -> InstallOutcome:
        """Block, install and classify; names blocked here are appended to ``blocked_by_us``
        before the block runs (the caller always lifts them). Raises NodeError for a node
        problem before the install (a connection lost, a hold list unreadable)."""
