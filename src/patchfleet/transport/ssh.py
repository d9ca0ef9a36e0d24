"""SSH transport: one asyncssh connection per node, one channel per command.

Trust: the node's host key is checked against its known_hosts file (OpenSSH matching rules,
``[host]:port`` for other ports). ``strict`` refuses unknown hosts; ``accept-new`` records an
unknown host's key on first contact; a *changed* key is always refused. There is no accept-all.

Speed (calibration.md section 4): key objects from a :class:`KeyRing`, ed25519 host keys preferred
for hosts not yet known, AES-GCM ciphers first.

Timeouts: the client stops waiting at the command's deadline and raises CommandTimeout. OpenSSH
only lets non-root sessions be signalled, so every command also runs under the node's
``timeout -k`` (coreutils) with a slightly later deadline: the remote process group is killed
even when the session is root's or the connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import asyncssh

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import CommandError, CommandTimeout, ConnectError, HostKeyError, NodeError
from patchfleet.transport._common import (
    ClosingContext,
    OutputBuffer,
    check_sudo,
    output_limit_error,
    signal_exit_status,
)
from patchfleet.transport._errors import ErrorContext, map_exception
from patchfleet.transport.banner import PROBE_SECONDS, banner_reason, probe_banner
from patchfleet.transport.base import Command, CommandResult
from patchfleet.transport.keys import KeyRing, KnownHosts, known_hosts_name

log = logging.getLogger("patchfleet.transport")

ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
"""AES-GCM first (hardware AES: ~25 % less CPU per connection than chacha20), then defaults."""
NEW_HOST_KEY_ALGS = "^ssh-ed25519"
"""For hosts not in known_hosts yet; known hosts keep the key types recorded for them."""
REMOTE_GRACE = 2
"""Seconds the remote ``timeout`` waits past the client's deadline before it signals."""
REMOTE_KILL_AFTER = 5
"""Seconds between the remote TERM and KILL."""
TIMEOUT_EXIT = 124
"""coreutils ``timeout``'s exit status when it stopped the command."""
_NO_TIMEOUT = ("timeout: not found", "timeout: command not found")
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT_MAX = 4


def _fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


class _HostKeyCheck:
    """Decides on a host key asyncssh could not match, and remembers why for the message."""

    def __init__(self, node: ResolvedNode, known: KnownHosts) -> None:
        self.node = node
        self.known = known
        self.presented: asyncssh.SSHKey | None = None
        self.recorded: tuple[asyncssh.SSHKey, ...] = ()
        self.accept_new = False

    def decide(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        trust = self.known.lookup(host, addr, port)
        self.recorded = trust.host_keys + trust.ca_keys
        if key in trust.host_keys:  # recorded by a concurrent accept-new since asyncssh looked
            return True
        if trust.known:
            return False
        self.accept_new = self.node.host_key_policy == "accept-new"
        return self.accept_new

    def error(self, exc: BaseException) -> HostKeyError:
        node = self.node
        name = known_hosts_name(node.host, node.port)
        path = self.known.path
        port_flag = f"-p {node.port} " if node.port != 22 else ""
        presented = self.presented
        if presented is None:
            text = str(exc)
            if "revoked" in text.lower():
                return HostKeyError(
                    f"host key of {name} is marked @revoked in {path}; the node must get a new "
                    "host key before patchfleet connects to it",
                    node.id,
                )
            return HostKeyError(f"host key of {name} could not be verified: {text}", node.id)
        kind = presented.get_algorithm()
        fp = _fingerprint(presented)
        if self.recorded:
            old = ", ".join(f"{k.get_algorithm()} {_fingerprint(k)}" for k in self.recorded)
            return HostKeyError(
                f"HOST KEY CHANGED for {name}: it presented {kind} {fp} but {path} records "
                f"{old}. Someone may be intercepting the connection (man-in-the-middle), or "
                "the node was reinstalled. If you have verified the new key, remove the old "
                f"one with: ssh-keygen -R '{name}' -f {path} and add the new one with: "
                f"ssh-keyscan {port_flag}-t {_keyscan_type(kind)} {node.host} >> {path}",
                node.id,
            )
        where = f"{path}" if self.known.exists else f"{path} (the file does not exist)"
        return HostKeyError(
            f"host key for {name} is not in {where}; it presented {kind} {fp}. Verify it and "
            f"add it with: ssh-keyscan {port_flag}-t {_keyscan_type(kind)} {node.host} >> "
            f"{path}, or set host_key_policy: accept-new for first contact",
            node.id,
        )


def _keyscan_type(algorithm: str) -> str:
    if "ed25519" in algorithm:
        return "ed25519"
    if "ecdsa" in algorithm:
        return "ecdsa"
    if "rsa" in algorithm:
        return "rsa"
    return algorithm


class _Client(asyncssh.SSHClient):
    def __init__(self, check: _HostKeyCheck) -> None:
        self._check = check
        self.lost: Exception | None = None
        self.closed = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.decide(host, addr, port, key)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc


class _Session(asyncssh.SSHClientSession[bytes]):
    """Collects one command's output up to the limit; ``done`` resolves when the channel
    closes, or fails on output overflow or connection loss."""

    def __init__(self, limit: int) -> None:
        self.output = OutputBuffer(limit)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.over_limit = False

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.over_limit:
            return
        if not self.output.add(data, stderr=datatype == asyncssh.EXTENDED_DATA_STDERR):
            self.over_limit = True
            if not self.done.done():
                self.done.set_result(None)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)


class SSHTransport(ClosingContext):
    """Runs commands on one node over one SSH connection. Use ``async with``.

    ``run`` may be called concurrently; each command gets its own channel (bounded by the
    node's sshd ``MaxSessions``, 10 by default).
    """

    def __init__(self, node: ResolvedNode, keys: KeyRing) -> None:
        self.node = node
        self.node_id = node.id
        self._keys = keys
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _Client | None = None
        self._key_desc = node.identity_file or ""
        self._lock = asyncio.Lock()
        self._closed = False
        self.connect_seconds: float | None = None
        """Wall time the last connect took (TCP, key exchange, authentication)."""

    def __repr__(self) -> str:
        return f"SSHTransport({self.node.user}@{self._ctx().address}, node={self.node_id!r})"

    @property
    def is_root(self) -> bool:
        return self.node.user == "root"

    @property
    def uses_sudo(self) -> bool:
        return self.node.sudo and not self.is_root

    def _ctx(self, label: str | None = None) -> ErrorContext:
        return ErrorContext(
            node_id=self.node_id,
            host=self.node.host,
            port=self.node.port,
            user=self.node.user,
            key=self._key_desc,
            label=label,
            connect_timeout=self.node.connect_timeout,
        )

    async def __aenter__(self) -> SSHTransport:
        await self.connect()
        return self

    async def connect(self) -> None:
        """Open the connection (done by ``async with`` or the first ``run``)."""
        async with self._lock:
            if self._conn is None:
                if self._closed:
                    raise ConnectError(
                        f"transport to {self._ctx().address} is closed", self.node_id
                    )
                self._conn = await self._open()

    async def _open(self) -> asyncssh.SSHClientConnection:
        node = self.node
        try:
            known = self._keys.known_hosts(node.known_hosts)
            client_keys, self._key_desc = await self._keys.client_keys(node.identity_file)
        except NodeError as err:
            raise type(err)(err.message, self.node_id) from None
        check = _HostKeyCheck(node, known)
        client = _Client(check)
        options: dict[str, Any] = {}
        if not known.lookup(node.host, "", node.port).known:
            options["server_host_key_algs"] = NEW_HOST_KEY_ALGS
        started = time.perf_counter()
        try:
            async with asyncio.timeout(node.connect_timeout):
                conn, _ = await asyncssh.create_connection(
                    lambda: client,
                    node.host,
                    node.port,
                    username=node.user,
                    client_keys=client_keys,
                    agent_path=None,
                    known_hosts=known.asyncssh_trust,
                    config=None,
                    preferred_auth="publickey",
                    encryption_algs=ENCRYPTION_ALGS,
                    keepalive_interval=KEEPALIVE_INTERVAL,
                    keepalive_count_max=KEEPALIVE_COUNT_MAX,
                    **options,
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise check.error(exc) from exc
        except asyncssh.KeyExchangeFailed as exc:
            if check.known.lookup(node.host, "", node.port).known:
                name = known_hosts_name(node.host, node.port)
                raise HostKeyError(
                    f"{name} offers none of the host key types {known.path} records for it "
                    f"({exc.reason}); its host key has probably changed. If you have verified "
                    f"it, run: ssh-keygen -R '{name}' -f {known.path} and add the new key",
                    self.node_id,
                ) from exc
            raise map_exception(exc, self._ctx()) from exc
        except TimeoutError as exc:
            # a short look, bounded by what the node's connect_timeout tolerates
            heard = await probe_banner(node.host, node.port,
                                       min(PROBE_SECONDS, node.connect_timeout))
            if heard is not None:
                raise ConnectError(banner_reason(heard, self._ctx().address,
                                                 node.connect_timeout), self.node_id) from exc
            raise map_exception(exc, self._ctx()) from exc
        except Exception as exc:
            raise map_exception(exc, self._ctx()) from exc
        self.connect_seconds = time.perf_counter() - started
        self._client = client
        if check.accept_new and check.presented is not None:
            await self._record_new_key(conn, known, check.presented)
        log.debug(
            "connected to %s as %s in %.3fs", self._ctx().address, node.user, self.connect_seconds
        )
        return conn

    async def _record_new_key(
        self, conn: asyncssh.SSHClientConnection, known: KnownHosts, key: asyncssh.SSHKey
    ) -> None:
        node = self.node
        try:
            added = await asyncio.to_thread(known.add, node.host, node.port, key)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, HostKeyError):
                raise HostKeyError(exc.message, self.node_id) from None
            if isinstance(exc, OSError):
                raise HostKeyError(
                    f"cannot record the host key of {known_hosts_name(node.host, node.port)} "
                    f"in {known.path}: {exc.strerror}",
                    self.node_id,
                ) from exc
            raise
        if added:
            log.warning(
                "accept-new: recorded host key %s %s for %s in %s",
                key.get_algorithm(),
                _fingerprint(key),
                known_hosts_name(node.host, node.port),
                known.path,
            )
        else:
            log.debug("host key for %s already recorded by another writer", node.host)

    async def run(self, command: Command) -> CommandResult:
        if self._conn is None:
            await self.connect()
        conn = self._conn
        assert conn is not None
        label = command.label
        ctx = self._ctx(label)
        if self._client is not None and self._client.closed:
            raise ConnectError(
                f"connection to {ctx.address} was lost before running {label}", self.node_id
            )
        rendered = command.render(sudo=self.uses_sudo)
        timeout = command.timeout if command.timeout is not None else self.node.command_timeout
        remote_deadline = math.ceil(timeout) + REMOTE_GRACE
        remote = f"timeout -k {REMOTE_KILL_AFTER} {remote_deadline} {rendered}"
        limit = self.node.max_output_bytes
        started = time.perf_counter()
        chan: asyncssh.SSHClientChannel[bytes] | None = None
        session = _Session(limit)
        try:
            async with asyncio.timeout(timeout):
                chan, _ = await conn.create_session(lambda: session, remote, encoding=None)
                chan.write_eof()
                await session.done
        except TimeoutError as exc:
            self._abandon(chan)
            raise CommandTimeout(
                f"{label} on {ctx.address} did not finish within {timeout:g}s (command_timeout)"
                "; it was stopped",
                self.node_id,
            ) from exc
        except asyncio.CancelledError:
            self._abandon(chan)
            raise
        except Exception as exc:
            self._abandon(chan)
            raise map_exception(exc, ctx) from exc
        if session.over_limit:
            self._abandon(chan)
            raise output_limit_error(label, ctx.address, limit, self.node_id)
        duration = time.perf_counter() - started
        if session.exit_status is not None:
            status = session.exit_status
        elif session.exit_signal is not None:
            status = signal_exit_status(session.exit_signal)
        elif self._client is not None and self._client.closed:
            raise ConnectError(
                f"connection lost while running {label} on {ctx.address}", self.node_id
            )
        else:
            raise ConnectError(
                f"{ctx.address} closed the channel for {label} without an exit status",
                self.node_id,
            )
        if status == TIMEOUT_EXIT and duration >= timeout:
            # The remote watchdog won the race (event loop stalled past the deadline).
            raise CommandTimeout(
                f"{label} on {ctx.address} did not finish within {timeout:g}s (command_timeout)"
                "; it was stopped",
                self.node_id,
            )
        result = session.output.result(rendered, status, duration)
        if status == 127 and any(s in result.stderr for s in _NO_TIMEOUT):
            raise CommandError(
                f"{ctx.address} has no 'timeout' command (coreutils), which patchfleet runs "
                "every command under; install coreutils on the node",
                self.node_id,
            )
        check_sudo(
            command, result, sudo_used=self.uses_sudo, user=self.node.user, node_id=self.node_id
        )
        return result

    @staticmethod
    def _abandon(chan: asyncssh.SSHClientChannel[bytes] | None) -> None:
        """Stop a command we no longer wait for: TERM reaches the remote ``timeout`` (which
        passes it to the whole process group) when sshd allows signals (non-root users);
        otherwise the remote ``timeout`` fires by itself shortly after the deadline."""
        if chan is None:
            return
        with contextlib.suppress(Exception):
            chan.send_signal("TERM")
        with contextlib.suppress(Exception):
            chan.close()

    async def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(5):
                await conn.wait_closed()
