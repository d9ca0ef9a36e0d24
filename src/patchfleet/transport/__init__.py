"""Transports: run one command on one node and get its output. The only I/O towards nodes.

Public surface::

    open_transport(node, keys) -> Transport     local node -> LocalTransport, else SSHTransport
    KeyRing                                     keys and known_hosts, loaded once per run
    SSHTransport, LocalTransport                real nodes
    ReplayTransport, load_replay_dir, Recorded  recorded outputs (the test seam)
    Command, CommandResult, Transport           (from .base)

Every failure leaves a transport as a :class:`patchfleet.errors.NodeError` subclass (see
``_errors.ERROR_MAP``); a non-zero exit status is returned in the result, not raised.

The pure core (``probes.py``) imports ``transport.base``, which runs this file: everything that
needs asyncssh is therefore imported on first use, not here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from patchfleet.transport.base import Command, CommandResult, Transport

if TYPE_CHECKING:
    from patchfleet.domain.inventory import ResolvedNode
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

_LAZY = {
    "KeyRing": "patchfleet.transport.keys",
    "LocalTransport": "patchfleet.transport.local",
    "Recorded": "patchfleet.transport.replay",
    "ReplayTransport": "patchfleet.transport.replay",
    "UnrecordedCommandError": "patchfleet.transport.replay",
    "load_replay_dir": "patchfleet.transport.replay",
    "SSHTransport": "patchfleet.transport.ssh",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def open_transport(node: ResolvedNode, keys: KeyRing) -> Transport:
    """The transport for ``node``, not yet connected: use it with ``async with``."""
    if node.local:
        from patchfleet.transport.local import LocalTransport

        return LocalTransport(node)
    from patchfleet.transport.ssh import SSHTransport

    return SSHTransport(node, keys)
