"""Local transport: the ``local`` node, this machine, without SSH.

Each command runs as ``/bin/sh -c <rendered>`` in its own session (process group), so a
timeout or an output overflow stops the command *and* everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import time

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import CommandTimeout, ConnectError
from patchfleet.transport._common import (
    ClosingContext,
    OutputBuffer,
    check_sudo,
    output_limit_error,
)
from patchfleet.transport.base import Command, CommandResult

SHELL = "/bin/sh"
KILL_GRACE = 2.0
"""Seconds between TERM and KILL for a command that is stopped."""


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, limit: int) -> None:
        self.output = OutputBuffer(limit)
        self.over_limit = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._open = {1, 2}
        self._exited = False

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if self.over_limit:
            return
        if not self.output.add(data, stderr=fd == 2):
            self.over_limit = True
            self._finish()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if self._exited and not self._open:
            self._finish()

    def process_exited(self) -> None:
        self._exited = True
        if not self._open:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class LocalTransport(ClosingContext):
    """Runs commands on this machine. ``is_root`` is the effective uid; privileged commands
    go through ``sudo -n`` when ``node.sudo`` is set and we are not root."""

    def __init__(self, node: ResolvedNode) -> None:
        self.node = node
        self.node_id = node.id

    def __repr__(self) -> str:
        return f"LocalTransport(node={self.node_id!r})"

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def uses_sudo(self) -> bool:
        return self.node.sudo and not self.is_root

    async def __aenter__(self) -> LocalTransport:
        return self

    async def close(self) -> None:
        return None

    async def run(self, command: Command) -> CommandResult:
        label = command.label
        rendered = command.render(sudo=self.uses_sudo)
        timeout = command.timeout if command.timeout is not None else self.node.command_timeout
        limit = self.node.max_output_bytes
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            transport, pipes = await loop.subprocess_exec(
                lambda: _Pipes(limit),
                SHELL,
                "-c",
                rendered,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConnectError(
                f"cannot start {SHELL} on this machine for {label}: {exc.strerror or exc}"
                + ("; raise the open-file limit (ulimit -n)" if exc.errno == 24 else ""),
                self.node_id,
            ) from exc
        pid = transport.get_pid()
        try:
            async with asyncio.timeout(timeout):
                await pipes.done
        except TimeoutError as exc:
            await self._stop(transport, pid)
            raise CommandTimeout(
                f"{label} on this machine did not finish within {timeout:g}s (command_timeout); "
                "it was stopped",
                self.node_id,
            ) from exc
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(transport, pid))
            raise
        if pipes.over_limit:
            await self._stop(transport, pid)
            raise output_limit_error(label, "this machine", limit, self.node_id)
        status = transport.get_returncode()
        transport.close()
        if status is None:  # pragma: no cover - done implies the process exited
            status = -255
        result = pipes.output.result(rendered, status, time.perf_counter() - started)
        user = _username()
        check_sudo(command, result, sudo_used=self.uses_sudo, user=user, node_id=self.node_id)
        return result

    @staticmethod
    async def _stop(transport: asyncio.SubprocessTransport, pid: int) -> None:
        """TERM the command's process group, KILL whatever is left after a grace period."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                break
            await asyncio.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        transport.close()


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group ``pgid``.

    Zombies count as members for ``killpg(pgid, 0)``, and orphans stay zombies for as long as
    the reaper (PID 1 in containers) takes, so /proc is read instead.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())
