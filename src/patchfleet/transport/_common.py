"""What every transport does the same way: bounded output, decoding, sudo failures."""

from __future__ import annotations

import signal
from types import TracebackType

from patchfleet.errors import AuthError, CommandError, OutputLimitError
from patchfleet.transport.base import Command, CommandResult

_SUDO_PASSWORD = ("sudo: a password is required", "sudo: a terminal is required")
_SUDO_DENIED = (
    "is not in the sudoers file",
    "is not allowed to execute",
    "is not allowed to run sudo",
    "may not run sudo",
)
_SUDO_ENV = "you are not allowed to set the following environment variables"
_SUDO_MISSING = ("sudo: not found", "sudo: command not found", "sudo: No such file")


class ClosingContext:
    """``async with transport:`` closes the transport on the way out, whatever happened."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class OutputBuffer:
    """stdout and stderr of one command, refusing to grow past ``limit`` bytes in total."""

    __slots__ = ("limit", "stderr", "stdout")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stdout = bytearray()
        self.stderr = bytearray()

    @property
    def size(self) -> int:
        return len(self.stdout) + len(self.stderr)

    def add(self, data: bytes, *, stderr: bool) -> bool:
        """Keep ``data``; False (and nothing kept) once the total would pass the limit."""
        if self.size + len(data) > self.limit:
            return False
        (self.stderr if stderr else self.stdout).extend(data)
        return True

    def result(self, command: str, exit_status: int, duration: float) -> CommandResult:
        return CommandResult(
            command=command,
            exit_status=exit_status,
            stdout=decode(self.stdout),
            stderr=decode(self.stderr),
            duration=duration,
        )


def decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def output_limit_error(label: str, where: str, limit: int, node_id: str) -> OutputLimitError:
    return OutputLimitError(
        f"{label} on {where} printed more than {limit} bytes (max_output_bytes); the command "
        "was stopped. Raise max_output_bytes in the inventory defaults if this much output is "
        "expected",
        node_id,
    )


def signal_exit_status(name: str) -> int:
    """A process killed by signal ``name`` ('KILL' or 'SIGKILL') reports minus its number,
    as :mod:`subprocess` does."""
    sig = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return -int(signal.Signals[sig])
    except KeyError:
        return -255


def check_sudo(
    command: Command, result: CommandResult, *, sudo_used: bool, user: str, node_id: str
) -> None:
    """Raise when sudo itself, not the command, failed: that is a setup problem, not output."""
    if not (sudo_used and command.privileged) or result.exit_status == 0:
        return
    err = result.stderr
    if any(s in err for s in _SUDO_PASSWORD):
        raise AuthError(
            f"sudo refused to run {command.label} for user {user!r} without a password "
            f"(patchfleet runs 'sudo -n'): sudoers has no NOPASSWD rule for exactly "
            f"{_wanted(command)}; install the rules 'patchfleet sudoers' prints on the node "
            f"(or grant '{user} ALL=(root) NOPASSWD: ALL'), or connect as root"
            f"{_root_only(command)}",
            node_id,
        )
    if any(s in err for s in _SUDO_DENIED):
        raise AuthError(
            f"user {user!r} may not use sudo to run {command.label}; install the rules "
            "'patchfleet sudoers' prints in /etc/sudoers.d/patchfleet on the node, or connect "
            f"as root{_root_only(command)}",
            node_id,
        )
    if _SUDO_ENV in err:
        raise AuthError(
            f"sudo would not pass patchfleet's environment to {command.label} for user "
            f"{user!r} ({err.strip().splitlines()[-1][:200]}); the sudoers rules from "
            "'patchfleet sudoers' keep those variables (env_keep): install them on the node",
            node_id,
        )
    if result.exit_status == 127 and any(s in err for s in _SUDO_MISSING):
        raise CommandError(
            f"sudo is not installed, so user {user!r} cannot run {command.label} as root; "
            "install sudo on the node, or connect as root",
            node_id,
        )


_ROOT_ONLY = {"source-prepare", "source-cleanup"}
"""Commands no sudoers rule can name: a baseline's alternative source writes repository
configuration as root, which is root-equivalent whatever the rule."""


def _wanted(command: Command) -> str:
    return repr(" ".join(command.argv[:command.variable_from])[:200])


def _root_only(command: Command) -> str:
    if command.name in _ROOT_ONLY:
        return (" (a baseline's alternative sources need root or unrestricted sudo: 'patchfleet "
                "sudoers' cannot grant them)")
    return ""
