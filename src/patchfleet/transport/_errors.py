"""Every failure of the SSH/OS layer, turned into one :class:`patchfleet.errors.NodeError`.

Like httpx's ``map_exceptions``, a single ordered table decides which patchfleet error an
asyncssh or OS exception becomes; no raw asyncssh exception leaves a transport. The first row
whose types match wins, so subclasses come before their bases::

    asyncssh.TimeoutError (process)      -> CommandTimeout
    asyncssh.PermissionDenied            -> AuthError      user, key and the fix
    asyncssh.IllegalUserName             -> AuthError
    asyncssh.PasswordChangeRequired      -> AuthError
    asyncssh.HostKeyNotVerifiable        -> HostKeyError   (ssh.py first tells unknown/changed)
    asyncssh.KeyImportError              -> AuthError      unreadable or encrypted key
    asyncssh.KeyEncryptionError          -> AuthError
    asyncssh.ConnectionLost              -> ConnectError   "connection lost while running X"
    asyncssh.KeyExchangeFailed           -> ConnectError   no common algorithm
    asyncssh.DisconnectError (the rest)  -> ConnectError   protocol/MAC/compression/service
    asyncssh.ChannelOpenError            -> ConnectError   session refused or connection closed
    asyncssh.ChannelListenError          -> ConnectError
    asyncssh.ProcessError                -> CommandError
    asyncssh.SFTPConnectionLost/NoConn.  -> ConnectError
    asyncssh.SFTPError (the rest)        -> CommandError
    asyncssh.Error (anything else)       -> ConnectError
    TimeoutError                         -> ConnectError while connecting, else CommandTimeout
    socket.gaierror                      -> ConnectError   DNS
    ConnectionRefusedError               -> ConnectError   errno text + "is sshd listening?"
    OSError EMFILE/ENFILE                -> ConnectError   raise ulimit -n
    OSError (the rest)                   -> ConnectError   errno text
    ValueError (asyncssh option checks)  -> ConnectError   e.g. unknown local user name
    Exception (anything else)            -> ConnectError

Messages name the node's address, user and key *file*, never key material or passphrases.
"""

from __future__ import annotations

import errno
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from patchfleet.errors import (
    AuthError,
    CommandError,
    CommandTimeout,
    ConnectError,
    HostKeyError,
    NodeError,
)


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What an error message may say about where it happened."""

    node_id: str
    host: str
    port: int
    user: str = ""
    key: str = ""
    """Which key(s) were offered, e.g. the identity file path; never key material."""
    label: str | None = None
    """The command's label while a command runs; None while connecting."""
    connect_timeout: float | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def phase(self) -> str:
        return "connecting" if self.label is None else f"running {self.label}"

    @property
    def doing(self) -> str:
        if self.label is None:
            return f"connecting to {self.address}"
        return f"running {self.label} on {self.address}"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason else exc).strip().rstrip(".")
    return text or type(exc).__name__


def _auth_fix(ctx: ErrorContext) -> str:
    """The fix, with a copy-paste command in which every value is shell-quoted."""
    pub = f"{ctx.key}.pub" if ctx.key.startswith(("/", "~")) else "its public key"
    key = shlex.quote(ctx.key) if ctx.key.startswith(("/", "~")) else "KEY"
    return (
        f"add {pub} to the authorized_keys of user {ctx.user!r} on the node (ssh-copy-id -i "
        f"{key} -p {int(ctx.port)} {shlex.quote(f'{ctx.user}@{ctx.host}')}), or fix "
        "user/identity_file in the inventory"
    )


def _permission_denied(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return AuthError(
        f"{ctx.address} refused user {ctx.user!r} with {ctx.key or 'the offered keys'} "
        f"({_reason(exc)}); {_auth_fix(ctx)}",
        ctx.node_id,
    )


def _illegal_user(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return AuthError(
        f"{ctx.address} rejected the user name {ctx.user!r} ({_reason(exc)}); "
        "fix user in the inventory",
        ctx.node_id,
    )


def _password_change(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return AuthError(
        f"{ctx.address} requires user {ctx.user!r} to change its password before logging in; "
        "log in once interactively or use an account whose password has not expired",
        ctx.node_id,
    )


def _host_key(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return HostKeyError(
        f"host key of {ctx.address} could not be verified ({_reason(exc)}); check the node's "
        "known_hosts entry",
        ctx.node_id,
    )


def _key_file(exc: BaseException, ctx: ErrorContext) -> NodeError:
    # asyncssh's key import messages are generic ("Invalid ... private key"); they never
    # echo key bytes or the passphrase.
    return AuthError(
        f"cannot use private key {ctx.key or '(unknown file)'}: {_reason(exc)}", ctx.node_id
    )


def _connection_lost(exc: BaseException, ctx: ErrorContext) -> NodeError:
    if ctx.label is None:
        return ConnectError(
            f"connection lost while connecting to {ctx.address} ({_reason(exc)})", ctx.node_id
        )
    return ConnectError(
        f"connection lost while running {ctx.label} on {ctx.address} ({_reason(exc)})",
        ctx.node_id,
    )


def _kex(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(
        f"SSH key exchange with {ctx.address} failed ({_reason(exc)}); the node and patchfleet "
        "share no key exchange, cipher or host key algorithm",
        ctx.node_id,
    )


def _disconnect(exc: BaseException, ctx: ErrorContext) -> NodeError:
    code = getattr(exc, "code", None)
    suffix = f", code {code}" if code is not None else ""
    return ConnectError(
        f"SSH connection to {ctx.address} failed while {ctx.phase} ({_reason(exc)}{suffix})",
        ctx.node_id,
    )


def _channel_open(exc: BaseException, ctx: ErrorContext) -> NodeError:
    what = f"for {ctx.label}" if ctx.label else ""
    reason = _reason(exc)
    if "connection closed" in reason.lower():
        return ConnectError(
            f"connection to {ctx.address} was closed before running {ctx.label or 'a command'}",
            ctx.node_id,
        )
    return ConnectError(
        f"{ctx.address} refused to open a session {what} ({reason}); too many concurrent "
        "commands on one connection? (sshd MaxSessions)",
        ctx.node_id,
    )


def _listen(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(f"{ctx.address} refused a port forward ({_reason(exc)})", ctx.node_id)


def _process_timeout(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return CommandTimeout(f"{ctx.doing} timed out", ctx.node_id)


def _process(exc: BaseException, ctx: ErrorContext) -> NodeError:
    status = getattr(exc, "exit_status", None)
    return CommandError(f"{ctx.doing} failed (exit status {status})", ctx.node_id)


def _sftp_lost(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(f"SFTP session to {ctx.address} lost ({_reason(exc)})", ctx.node_id)


def _sftp(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return CommandError(f"SFTP on {ctx.address} failed ({_reason(exc)})", ctx.node_id)


def _ssh_other(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(
        f"SSH error while {ctx.doing}: {type(exc).__name__}: {_reason(exc)}", ctx.node_id
    )


def _timeout(exc: BaseException, ctx: ErrorContext) -> NodeError:
    if ctx.label is None:
        after = f" after {ctx.connect_timeout:g}s" if ctx.connect_timeout else ""
        return ConnectError(
            f"timed out{after} connecting to {ctx.address}; is the node up and port "
            f"{ctx.port} reachable (firewall)? raise connect_timeout for slow links",
            ctx.node_id,
        )
    return CommandTimeout(f"{ctx.doing} timed out", ctx.node_id)


def _dns(exc: BaseException, ctx: ErrorContext) -> NodeError:
    text = getattr(exc, "strerror", None) or _reason(exc)
    return ConnectError(
        f"cannot resolve host name {ctx.host!r} ({text}); check host in the inventory or DNS",
        ctx.node_id,
    )


def _os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return _reason(exc)


def _refused(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(
        f"connection refused by {ctx.address} ({_os_text(exc)}); is sshd running and "
        f"listening on port {ctx.port}?",
        ctx.node_id,
    )


def _os_error(exc: BaseException, ctx: ErrorContext) -> NodeError:
    assert isinstance(exc, OSError)
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return ConnectError(
            f"too many open files on the controller while {ctx.doing} ({_os_text(exc)}); "
            "raise the open-file limit (ulimit -n) above the SSH concurrency",
            ctx.node_id,
        )
    if ctx.label is not None:
        return ConnectError(
            f"connection lost while running {ctx.label} on {ctx.address} ({_os_text(exc)})",
            ctx.node_id,
        )
    return ConnectError(f"cannot connect to {ctx.address} ({_os_text(exc)})", ctx.node_id)


def _value(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(f"SSH client setup failed while {ctx.doing}: {_reason(exc)}", ctx.node_id)


def _unexpected(exc: BaseException, ctx: ErrorContext) -> NodeError:
    return ConnectError(
        f"unexpected error while {ctx.doing}: {type(exc).__name__}: {_reason(exc)}", ctx.node_id
    )


Factory = Callable[[BaseException, ErrorContext], NodeError]

# Ordered: subclasses first. asyncssh.TimeoutError is both a ProcessError and a TimeoutError;
# asyncssh's key errors are ValueErrors; ConnectionRefusedError and gaierror are OSErrors.
ERROR_MAP: tuple[tuple[tuple[type[BaseException], ...], Factory], ...] = (
    ((asyncssh.TimeoutError,), _process_timeout),
    ((asyncssh.PermissionDenied,), _permission_denied),
    ((asyncssh.IllegalUserName,), _illegal_user),
    ((asyncssh.PasswordChangeRequired,), _password_change),
    ((asyncssh.HostKeyNotVerifiable,), _host_key),
    ((asyncssh.KeyImportError, asyncssh.KeyEncryptionError), _key_file),
    ((asyncssh.ConnectionLost,), _connection_lost),
    ((asyncssh.KeyExchangeFailed,), _kex),
    ((asyncssh.DisconnectError,), _disconnect),
    ((asyncssh.ChannelOpenError,), _channel_open),
    ((asyncssh.ChannelListenError,), _listen),
    ((asyncssh.ProcessError,), _process),
    ((asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection), _sftp_lost),
    ((asyncssh.SFTPError,), _sftp),
    ((asyncssh.Error,), _ssh_other),
    ((TimeoutError,), _timeout),
    ((socket.gaierror,), _dns),
    ((ConnectionRefusedError,), _refused),
    ((OSError,), _os_error),
    ((ValueError,), _value),
    ((Exception,), _unexpected),
)


def map_exception(exc: BaseException, ctx: ErrorContext) -> NodeError:
    """The patchfleet error for ``exc``; a NodeError is returned unchanged."""
    if isinstance(exc, NodeError):
        return exc
    for types, factory in ERROR_MAP:
        if isinstance(exc, types):
            return factory(exc, ctx)
    return _unexpected(exc, ctx)
