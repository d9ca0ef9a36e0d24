"""What every transport offers: run one command on one node and return its output.

A :class:`Command` is an argv of validated parts. It is rendered to one shell string with
:func:`shlex.join`, always with ``LC_ALL=C LANG=C LANGUAGE=C`` (and the rest of
:data:`COMMAND_ENV`) so that what parsers read is English and stable. Nothing else ever reaches
a node's shell.

A privileged command for a user who is not root becomes ``sudo -n VAR=value... -- PROGRAM
ARGS``: sudo itself sets the environment (so sudoers sees and can name ``PROGRAM ARGS``
exactly, no ``env`` or ``sh -c`` in between; the variables must be in the sudoers
``env_keep`` list, which ``patchfleet sudoers`` prints), and the program is found on sudo's
``secure_path``. :data:`SUDO_UNSAFE_ENV` is never passed through sudo.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from patchfleet.errors import ConfigError

if TYPE_CHECKING:
    from patchfleet.domain.inventory import ResolvedNode

# Environment forced on every command: C locale and UTC for parseable output, no interactive
# frontends.
COMMAND_ENV: tuple[tuple[str, str], ...] = (
    ("LC_ALL", "C"),
    ("LANG", "C"),
    ("LANGUAGE", "C"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
    ("NEEDRESTART_SUSPEND", "1"),
    ("COLUMNS", "1000"),
    ("TZ", "UTC"),
)
SUDO_UNSAFE_ENV = frozenset({"DEBIAN_FRONTEND"})
"""Variables a restricted sudo must not let its caller set: debconf evaluates
``DEBIAN_FRONTEND`` as Perl (``use Debconf::FrontEnd::$type``), so keeping it in env_keep would
make the install user root. Under sudo, debconf falls back to its Teletype frontend and, with
stdin closed, takes every question's default: the answers ``noninteractive`` gives."""
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Command:
    """A command for a node, built from parts that are each shell-quoted when rendered.

    ``privileged`` commands get ``sudo -n --`` for non-root users. ``ok_exit`` lists exit codes
    that are not failures for this command (apt-get update returns 100 on a partial refresh,
    ``needs-restarting -r`` returns 1 when a reboot is needed, ...).
    """

    argv: tuple[str, ...]
    privileged: bool = False
    ok_exit: frozenset[int] = frozenset({0})
    timeout: float | None = None
    env: tuple[tuple[str, str], ...] = field(default=())
    name: str = ""
    drop_env: frozenset[str] = frozenset()
    """Names of :data:`COMMAND_ENV` left out for this command (needrestart must not see
    ``NEEDRESTART_SUSPEND``)."""
    variable_from: int | None = None
    """Index in ``argv`` where the words that change from run to run begin (package specs,
    lock names); None: the whole argv is fixed. ``patchfleet sudoers`` names the fixed part
    exactly and matches the rest by :attr:`variable_pattern`."""
    variable_pattern: str = ""
    """The regular expression that ``argv[variable_from:]`` joined by single spaces matches
    (the variable words are validated by the builders; sudoers checks them again)."""

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("a command needs at least a program name")
        for part in self.argv:
            if "\x00" in part:
                raise ConfigError(f"command part {part!r} contains a NUL byte")
        for key, _ in self.env:
            if not _ENV_NAME.match(key):
                raise ConfigError(f"{key!r} is not a valid environment variable name")

    def environment(self, *, sudo: bool) -> tuple[tuple[str, str], ...]:
        """The variables the program runs with (through sudo: without the unsafe ones)."""
        drop = self.drop_env | (SUDO_UNSAFE_ENV if sudo and self.privileged else frozenset())
        return tuple((k, v) for k, v in (*COMMAND_ENV, *self.env) if k not in drop)

    def render(self, *, sudo: bool) -> str:
        """The exact string sent to the node's shell."""
        env = [f"{k}={v}" for k, v in self.environment(sudo=sudo)]
        if sudo and self.privileged:
            return shlex.join(["sudo", "-n", *env, "--", *self.argv])
        return shlex.join(["env", *env, *self.argv])

    @property
    def label(self) -> str:
        return self.name or self.argv[0]


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    def ok_for(self, command: Command) -> bool:
        return self.exit_status in command.ok_exit


class Transport(Protocol):
    """One open channel to one node. Use as an async context manager."""

    node_id: str

    @property
    def is_root(self) -> bool:
        """Whether commands run as root without sudo."""
        ...

    async def run(self, command: Command) -> CommandResult:
        """Run one command. Raises a :class:`patchfleet.errors.NodeError` subclass on connection
        loss, timeout or output over the limit; a non-zero exit is *returned*, not raised."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Connector(Protocol):
    """How a run reaches its nodes: ``node -> Transport``, not yet connected (``async with``).

    One connector serves a whole run and owns what its transports share (the SSH keys);
    it is created by the code that starts the run (a flow, a task, the CLI, a test, a
    benchmark) and passed down to every operation, so a replayed or simulated fleet is
    swapped in by passing another connector.
    """

    def open(self, node: ResolvedNode) -> Transport:
        """A transport to ``node``; connecting happens on ``async with``."""
        ...

    def close(self) -> None:
        """Release what the connector holds (keys, agent connection); idempotent."""
        ...


def script(body: str, *args: str) -> tuple[str, ...]:
    """argv for a fixed ``sh -c`` script from this code base, with positional args ``$1..``.

    Only constant scripts written in patchfleet's probes may be passed here; values from
    outside go in ``args``, which the shell receives quoted, never spliced into ``body``.
    """
    return ("sh", "-c", body, "patchfleet", *args)


def argv(*parts: str | Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        else:
            out.extend(p)
    return tuple(out)
