"""A port that answers with something other than SSH, or an sshd that sends its banner and then
stalls, is reported as exactly that, not as a firewall timeout (issue 13 #15). Real TCP servers
on loopback speak first, as such services do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from patchfleet.domain.inventory import parse_inventory
from patchfleet.errors import ConnectError
from patchfleet.transport.connector import SSHConnector


async def _speaker(first: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(first)
        await writer.drain()
        await reader.read()  # then silence until the client gives up
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[tuple[Path, Path]]:
    """An empty known_hosts and a client key (the probe happens before either is used)."""
    known, key = tmp_path / "known_hosts", tmp_path / "id_ed25519"
    known.write_text("")
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    key.chmod(0o600)
    yield known, key


@pytest.mark.parametrize(("first", "expected"), [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
     r"answers, but not with SSH \(it sent 'HTTP/1.1 400 Bad Request'\)"),
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
     r"sent its SSH banner \('SSH-2.0-OpenSSH_9.2p1 Debian-2'\) but did not complete"),
])
async def test_what_the_port_said_is_the_reason(first: bytes, expected: str,
                                                files: tuple[Path, Path]) -> None:
    server, port = await _speaker(first)
    known, key = files
    inv = parse_inventory({"defaults": {"known_hosts": str(known), "identity_file": str(key),
                                        "connect_timeout": 1},
                           "nodes": [{"id": "n1", "host": "127.0.0.1", "port": port}]}, "inv")
    try:
        with SSHConnector() as connector:
            transport = connector.open(inv.resolved()[0])
            with pytest.raises(ConnectError, match=expected):
                await transport.connect()
    finally:
        server.close()
        await server.wait_closed()
