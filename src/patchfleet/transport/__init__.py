"""Transports: run one command on one node and get its output. The only I/O towards nodes.

Public surface, in two parts so that code needing only commands, replays or the local machine
never loads asyncssh (the probes import ``transport.base``, which runs this file)::

    patchfleet.transport
        Command, CommandResult, Transport       (from .base)
        Connector                               node -> Transport; passed down to every operation
        LocalTransport                          this machine
        ReplayConnector, ReplayTransport,       recorded outputs (the test seam)
        load_replay_dir, Recorded
    patchfleet.transport.connector              (asyncssh)
        SSHConnector                            real nodes (local + SSH), owns the run's KeyRing
        open_transport(node, keys) -> Transport local node -> LocalTransport, else SSHTransport
        KeyRing                                 keys and known_hosts, loaded once per run
        SSHTransport                            one node over SSH

Every failure leaves a transport as a :class:`patchfleet.errors.NodeError` subclass (see
``_errors.ERROR_MAP``); a non-zero exit status is returned in the result, not raised.
"""

from __future__ import annotations

from patchfleet.transport.base import Command, CommandResult, Connector, Transport
from patchfleet.transport.local import LocalTransport
from patchfleet.transport.replay import (
    Recorded,
    ReplayConnector,
    ReplayTransport,
    UnrecordedCommandError,
    load_replay_dir,
)

__all__ = [
    "Command",
    "CommandResult",
    "Connector",
    "LocalTransport",
    "Recorded",
    "ReplayConnector",
    "ReplayTransport",
    "Transport",
    "UnrecordedCommandError",
    "load_replay_dir",
]
