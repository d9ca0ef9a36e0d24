"""The connector of real nodes: the local machine through subprocesses, the rest over SSH.

The SSH side of the public surface (it imports asyncssh; ``patchfleet.transport`` does not)::

    SSHConnector, open_transport, KeyRing, SSHTransport

:class:`SSHConnector` owns the run's :class:`~patchfleet.transport.keys.KeyRing` (client keys
and known_hosts, each loaded once and shared by every connection), so a run opens it once and
closes it at the end (``with SSHConnector() as connector:``).
"""

from __future__ import annotations

from types import TracebackType

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.transport.base import Transport
from patchfleet.transport.keys import KeyRing
from patchfleet.transport.local import LocalTransport
from patchfleet.transport.ssh import SSHTransport

__all__ = ["KeyRing", "SSHConnector", "SSHTransport", "open_transport"]


def open_transport(node: ResolvedNode, keys: KeyRing) -> Transport:
    """The transport for ``node``, not yet connected: use it with ``async with``."""
    if node.local:
        return LocalTransport(node)
    return SSHTransport(node, keys)


class SSHConnector:
    """Real nodes: :class:`LocalTransport` for the ``local`` node, :class:`SSHTransport` for
    the others. ``keys`` given by the caller stay the caller's to close."""

    def __init__(self, keys: KeyRing | None = None) -> None:
        self._owns_keys = keys is None
        self.keys = keys if keys is not None else KeyRing()

    def __repr__(self) -> str:
        return "SSHConnector()"

    def open(self, node: ResolvedNode) -> Transport:
        return open_transport(node, self.keys)

    def close(self) -> None:
        if self._owns_keys:
            self.keys.close()

    def __enter__(self) -> SSHConnector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
