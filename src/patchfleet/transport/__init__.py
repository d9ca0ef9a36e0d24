"""Transports: run one command on one node and get its output. The only I/O towards nodes.

Public surface::

    open_transport(node, keys) -> Transport     local node -> LocalTransport, else SSHTransport
    KeyRing                                     keys and known_hosts, loaded once per run
    SSHTransport, LocalTransport, ReplayTransport, load_replay_dir, Recorded
    Command, CommandResult, Transport           (from .base)

Every failure leaves a transport as a :class:`patchfleet.errors.NodeError` subclass (see
``_errors.ERROR_MAP``); a non-zero exit status is returned in the result, not raised.
"""

from __future__ import annotations

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.transport.base import Command, CommandResult, Transport
from patchfleet.transport.keys import KeyRing
from patchfleet.transport.local import LocalTransport
from patchfleet.transport.replay import (
    Recorded,
    ReplayTransport,
    UnrecordedCommandError,
    load_replay_dir,
)
from patchfleet.transport.ssh import SSHTransport

__all__ = [
    "Command",
    "CommandResult",
    "KeyRing",
    "LocalTransport",
    "Recorded",
    "ReplayTransport",
    "SSHTransport",
    "Transport",
    "UnrecordedCommandError",
    "load_replay_dir",
    "open_transport",
]


def open_transport(node: ResolvedNode, keys: KeyRing) -> Transport:
    """The transport for ``node``, not yet connected: use it with ``async with``."""
    if node.local:
        return LocalTransport(node)
    return SSHTransport(node, keys)
