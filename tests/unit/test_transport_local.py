"""LocalTransport: /bin/sh on this machine, same semantics as SSH."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import AuthError, CommandError, CommandTimeout, OutputLimitError
from patchfleet.transport import Command, LocalTransport
from patchfleet.transport.connector import KeyRing, open_transport


def local_node(**overrides: Any) -> ResolvedNode:
    fields: dict[str, Any] = {
        "id": "local",
        "host": "localhost",
        "port": 22,
        "user": "root",
        "identity_file": None,
        "known_hosts": "~/.ssh/known_hosts",
        "host_key_policy": "strict",
        "sudo": False,
        "connect_timeout": 10.0,
        "command_timeout": 20.0,
        "max_output_bytes": 1 << 20,
        "tags": {},
        "local": True,
    }
    fields.update(overrides)
    return ResolvedNode(**fields)


def _running(marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                out.append(int(d.name))
    return out


@contextlib.contextmanager
def reap(marker: str) -> Iterator[None]:
    try:
        yield
    finally:
        for pid in _running(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_gone(marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while _running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _running(marker)


async def test_output_and_exit_status() -> None:
    cmd = Command(("sh", "-c", "echo out; echo err >&2; exit 4"))
    async with LocalTransport(local_node()) as t:
        result = await t.run(cmd)
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 4)
    assert result.command == cmd.render(sudo=False)


async def test_c_locale_and_utf8_replacement() -> None:
    async with LocalTransport(local_node()) as t:
        env = await t.run(Command(("sh", "-c", "echo $LC_ALL $LANG $DEBIAN_FRONTEND")))
        raw = await t.run(Command(("printf", "caf\\303\\251 \\377")))
    assert env.stdout == "C C noninteractive\n"
    assert raw.stdout == "café \ufffd"


async def test_stdin_is_closed() -> None:
    async with LocalTransport(local_node()) as t:
        result = await t.run(Command(("cat",), timeout=5))
    assert result.stdout == "" and result.exit_status == 0


async def test_timeout_kills_the_whole_process_group() -> None:
    marker = "sleep 1000.321"
    with reap(marker):
        script = "sleep 1000.321 & sleep 1000.3210; wait"
        async with LocalTransport(local_node()) as t:
            started = time.monotonic()
            with pytest.raises(CommandTimeout, match=r"did not finish within 0.5s"):
                await t.run(Command(("sh", "-c", script), timeout=0.5))
            assert time.monotonic() - started < 3
        assert _wait_gone(marker, 3) == []


async def test_node_command_timeout_is_the_default() -> None:
    with reap("sleep 1000.322"):
        async with LocalTransport(local_node(command_timeout=0.3)) as t:
            with pytest.raises(CommandTimeout, match="command_timeout"):
                await t.run(Command(("sleep", "1000.322")))


async def test_output_limit_stops_the_command() -> None:
    async with LocalTransport(local_node(max_output_bytes=50_000)) as t:
        exact = await t.run(Command(("head", "-c", "50000", "/dev/zero")))
        assert len(exact.stdout) == 50_000
        with pytest.raises(OutputLimitError, match="max_output_bytes"):
            await t.run(Command(("sh", "-c", "yes patchfleet-output-limit")))
    assert _wait_gone("yes patchfleet-output-limit", 3) == []


async def test_cancellation_stops_the_command() -> None:
    marker = "sleep 1000.323"
    with reap(marker):
        async with LocalTransport(local_node()) as t:
            task = asyncio.create_task(t.run(Command(("sleep", "1000.323"))))
            deadline = time.monotonic() + 30  # an event, bounded generously: CI cores are shared
            while not _running(marker) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert _wait_gone(marker, 30) == []


async def test_is_root_is_the_effective_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    t = LocalTransport(local_node(sudo=True))
    assert t.is_root == (os.geteuid() == 0)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert not t.is_root
    assert t.uses_sudo
    assert not LocalTransport(local_node(sudo=False)).uses_sudo


async def test_privileged_commands_go_through_sudo_when_not_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A fake `sudo` on PATH that records its arguments and refuses like a real one without
    # NOPASSWD.
    fake = tmp_path / "sudo"
    fake.write_text(
        '#!/bin/sh\nprintf "%s " "$@" > "$0.args"\n'
        'echo "sudo: a password is required" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    priv = Command(("apt-get", "update"), privileged=True)
    async with LocalTransport(local_node(sudo=True)) as t:
        with pytest.raises(AuthError, match="NOPASSWD"):
            await t.run(priv)
    assert (tmp_path / "sudo.args").read_text().startswith("-n LC_ALL=C")


async def test_missing_sudo_is_a_command_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sudo anywhere
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    async with LocalTransport(local_node(sudo=True)) as t:
        with pytest.raises(CommandError, match="sudo is not installed"):
            await t.run(Command(("apt-get", "update"), privileged=True))


def test_open_transport_picks_local_for_the_local_node() -> None:
    assert isinstance(open_transport(local_node(), KeyRing(use_agent=False)), LocalTransport)
