"""Why an SSH connection timed out, when the port did answer: what it said first.

A connect that times out is usually a firewall or a node that is down; but a port that answers
with something other than SSH (a web server, a TLS service on the wrong port) or an sshd that
sends its banner and then stalls (MaxStartups reached, a middlebox dropping the key exchange)
also end in a timeout, because an SSH client keeps waiting for a version line. After such a
timeout one short plain-TCP look at the port tells them apart, so the node's reason says what
really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from patchfleet.domain.model_errors import short_repr

__all__ = ["PROBE_SECONDS", "banner_reason", "probe_banner"]

PROBE_SECONDS: Final = 3.0


async def probe_banner(host: str, port: int, seconds: float = PROBE_SECONDS) -> bytes | None:
    """The first bytes the port sends within ``seconds`` of connecting; None when it can't be
    reached or says nothing."""
    try:
        async with asyncio.timeout(seconds * 2):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                async with asyncio.timeout(seconds):
                    data = await reader.read(256)
            except TimeoutError:
                data = b""
            finally:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    return data or None


def banner_reason(heard: bytes, address: str, timeout: float) -> str:
    """The node's reason, from what the port sent first."""
    first = heard.split(b"\n", 1)[0].strip().decode("ascii", "replace")
    shown = short_repr(first)
    if heard.startswith(b"SSH-"):
        return (f"{address} sent its SSH banner ({shown}) but did not complete the key "
                f"exchange within {timeout:g}s: the server is overloaded (sshd MaxStartups) or "
                "something between drops the connection; retry later or raise connect_timeout")
    return (f"{address} answers, but not with SSH (it sent {shown}); is {address} the node's "
            "SSH port? fix host/port in the inventory")
