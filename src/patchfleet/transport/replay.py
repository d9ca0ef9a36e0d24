"""Replay transport: answers commands from recorded output. The test seam for collect/evaluate.

Like httpx's ``MockTransport``: code under test talks to a real :class:`Transport`, and the
answers come from what real nodes printed, usually a golden case folder::

    tests/golden/apt/debian12-host/dpkg-query.stdout
    tests/golden/apt/debian12-host/dpkg-query.stderr
    tests/golden/apt/debian12-host/dpkg-query.exit

    transport = ReplayTransport.from_dir("node-1", "tests/golden/apt/debian12-host")

A response is found by the exact rendered command first, then by :attr:`Command.name`. An
exception instance as a response is raised instead (to test fault handling). A command with no
recorded response raises :class:`UnrecordedCommandError`, which is deliberately *not* a
NodeError: a missing capture is a bug in the test, not a node failure to be recorded.

:class:`ReplayConnector` is the connector of a replayed fleet: each node answers from its own
recorded outputs (``ReplayConnector.from_dirs({"web-1": case_dir, ...})``) or every node from
the same ones (``ReplayConnector.fleet(case_dir)``, for benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import ConfigError
from patchfleet.transport._common import ClosingContext, check_sudo, decode
from patchfleet.transport.base import Command, CommandResult

SUFFIXES = (".stdout", ".stderr", ".exit")


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one command printed and returned on a real node."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0


Response = Recorded | tuple[str, str, int] | BaseException


class UnrecordedCommandError(LookupError):
    """The replay has no response for a command the code under test sent."""


class ReplayTransport(ClosingContext):
    """A transport that never touches a node. ``calls`` lists every command run, in order."""

    def __init__(
        self,
        node_id: str,
        responses: Mapping[str, Response],
        *,
        is_root: bool = True,
        sudo: bool = False,
        user: str = "root",
        source: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.responses = dict(responses)
        self._is_root = is_root
        self._sudo = sudo
        self._user = user
        self._source = source
        self.calls: list[Command] = []
        self.closed = False

    @classmethod
    def from_dir(
        cls,
        node_id: str,
        path: str | Path,
        *,
        is_root: bool = True,
        sudo: bool = False,
        user: str = "root",
    ) -> ReplayTransport:
        """A replay of the golden case folder ``path`` (see :func:`load_replay_dir`)."""
        responses = load_replay_dir(path)
        return cls(node_id, responses, is_root=is_root, sudo=sudo, user=user, source=str(path))

    def __repr__(self) -> str:
        return f"ReplayTransport(node={self.node_id!r}, responses={len(self.responses)})"

    @property
    def is_root(self) -> bool:
        return self._is_root

    @property
    def uses_sudo(self) -> bool:
        return self._sudo and not self._is_root

    async def __aenter__(self) -> ReplayTransport:
        return self

    async def close(self) -> None:
        self.closed = True

    def _lookup(self, command: Command, rendered: str) -> Response:
        if rendered in self.responses:
            return self.responses[rendered]
        if command.name and command.name in self.responses:
            return self.responses[command.name]
        where = f" in {self._source}" if self._source else ""
        recorded = ", ".join(sorted(self.responses)) or "(none)"
        name = command.name or "(unnamed)"
        hint = f"; capture it as {command.name}.stdout/.stderr/.exit" if command.name else ""
        raise UnrecordedCommandError(
            f"replay node {self.node_id!r} has no response for command {name} "
            f"[{rendered}]{where}; recorded: {recorded}{hint}"
        )

    async def run(self, command: Command) -> CommandResult:
        rendered = command.render(sudo=self.uses_sudo)
        self.calls.append(command)
        response = self._lookup(command, rendered)
        if isinstance(response, BaseException):
            raise response
        if isinstance(response, tuple):
            response = Recorded(*response)
        result = CommandResult(
            command=rendered,
            exit_status=response.exit_status,
            stdout=response.stdout,
            stderr=response.stderr,
            duration=0.0,
        )
        check_sudo(command, result, sudo_used=self.uses_sudo, user=self._user, node_id=self.node_id)
        return result


class ReplayConnector:
    """Opens a :class:`ReplayTransport` per node; ``responses(node)`` gives its recorded
    outputs. ``is_root``, ``sudo`` and ``user`` are those of every replayed node."""

    def __init__(
        self,
        responses: Callable[[ResolvedNode], Mapping[str, Response]],
        *,
        is_root: bool = True,
        sudo: bool = False,
        user: str = "root",
    ) -> None:
        self._responses = responses
        self._is_root = is_root
        self._sudo = sudo
        self._user = user

    @classmethod
    def from_dirs(cls, dirs: Mapping[str, str | Path], *, is_root: bool = True,
                  sudo: bool = False, user: str = "root") -> ReplayConnector:
        """Node id -> case folder; each folder is read once. A node without a folder is a bug
        in the test: opening it raises :class:`UnrecordedCommandError`."""
        loaded = {node_id: load_replay_dir(path) for node_id, path in dirs.items()}

        def responses(node: ResolvedNode) -> Mapping[str, Response]:
            try:
                return loaded[node.id]
            except KeyError:
                raise UnrecordedCommandError(
                    f"replay has no recorded outputs for node {node.id!r}; "
                    f"recorded nodes: {', '.join(sorted(loaded)) or '(none)'}") from None

        return cls(responses, is_root=is_root, sudo=sudo, user=user)

    @classmethod
    def fleet(cls, *paths: str | Path, is_root: bool = True, sudo: bool = False,
              user: str = "root") -> ReplayConnector:
        """Every node answers from the same case folders ``paths`` (read once; a command
        recorded in several is answered from the last)."""
        loaded: dict[str, Recorded] = {}
        for path in paths:
            loaded.update(load_replay_dir(path))
        return cls(lambda node: loaded, is_root=is_root, sudo=sudo, user=user)

    def __repr__(self) -> str:
        return "ReplayConnector()"

    def open(self, node: ResolvedNode) -> ReplayTransport:
        return ReplayTransport(node.id, self._responses(node), is_root=self._is_root,
                               sudo=self._sudo, user=self._user)

    def close(self) -> None:
        """Nothing to release."""


def load_replay_dir(path: str | Path) -> dict[str, Recorded]:
    """Read ``<name>.stdout``, ``<name>.stderr`` and ``<name>.exit`` files into responses keyed
    by probe name. Missing stdout/stderr read as empty, a missing or empty ``.exit`` as 0;
    other files (``*.parsed.json`` ...) are ignored."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError("not a folder of recorded command outputs", source=str(root))
    parts: dict[str, dict[str, Path]] = {}
    for f in sorted(root.iterdir()):
        if f.is_file() and f.suffix in SUFFIXES:
            parts.setdefault(f.stem, {})[f.suffix] = f
    out: dict[str, Recorded] = {}
    for name, files in parts.items():
        exit_text = files[".exit"].read_text().strip() if ".exit" in files else ""
        try:
            status = int(exit_text or "0")
        except ValueError:
            raise ConfigError(
                f"exit status {exit_text!r} is not an integer", source=str(files[".exit"])
            ) from None
        out[name] = Recorded(
            stdout=decode(files[".stdout"].read_bytes()) if ".stdout" in files else "",
            stderr=decode(files[".stderr"].read_bytes()) if ".stderr" in files else "",
            exit_status=status,
        )
    if not out:
        raise ConfigError("holds no <name>.stdout/.stderr/.exit files to replay", source=str(root))
    return out
