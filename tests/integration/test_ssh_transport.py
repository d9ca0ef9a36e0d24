"""SSHTransport against a real OpenSSH sshd on 127.0.0.1 (see sshd_fixture.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sshd_fixture import Sshd, cmdline, keygen, pub_line, run_sshd

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import (
    AuthError,
    CommandTimeout,
    ConnectError,
    HostKeyError,
    OutputLimitError,
)
from patchfleet.transport import Command
from patchfleet.transport import keys as keys_module
from patchfleet.transport.connector import KeyRing, SSHTransport, open_transport


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def keys() -> Iterator[KeyRing]:
    ring = KeyRing(use_agent=False, default_identities=())
    yield ring
    ring.close()


def make_node(sshd: Sshd, known_hosts: Path, **overrides: Any) -> ResolvedNode:
    fields: dict[str, Any] = {
        "id": "n1",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": "root",
        "identity_file": str(sshd.client_key),
        "known_hosts": str(known_hosts),
        "host_key_policy": "strict",
        "sudo": False,
        "connect_timeout": 5.0,
        "command_timeout": 20.0,
        "max_output_bytes": 1 << 20,
        "tags": {},
        "local": False,
    }
    fields.update(overrides)
    return ResolvedNode(**fields)


@pytest.fixture
def node(sshd: Sshd, tmp_path: Path) -> ResolvedNode:
    return make_node(sshd, sshd.write_known_hosts(tmp_path / "known_hosts"))


def _pids_running(marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and marker in cmdline(int(d.name)):
            out.append(int(d.name))
    return out


def _wait_gone(marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _pids_running(marker)
        if not left:
            return []
        time.sleep(0.1)
    return _pids_running(marker)


@contextlib.contextmanager
def reap(marker: str) -> Iterator[None]:
    """Kill (by pid) anything still running with ``marker`` when the test ends."""
    try:
        yield
    finally:
        for pid in _pids_running(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- running commands -----------------------------------------------------------------------


async def test_run_returns_output_and_nonzero_exit(node: ResolvedNode, keys: KeyRing) -> None:
    cmd = Command(("sh", "-c", "echo out; echo err >&2; exit 3"), name="probe")
    async with SSHTransport(node, keys) as t:
        result = await t.run(cmd)
    assert result.exit_status == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.command == cmd.render(sudo=False)
    assert not result.ok_for(cmd)
    assert result.duration > 0


async def test_c_locale_is_forced(node: ResolvedNode, keys: KeyRing) -> None:
    async with SSHTransport(node, keys) as t:
        echoed = await t.run(Command(("sh", "-c", "echo $LC_ALL $LANG")))
        locale = await t.run(Command(("locale",)))
    assert echoed.stdout == "C C\n"
    assert "LC_ALL=C" in locale.stdout.splitlines()
    assert 'LC_MESSAGES="C"' in locale.stdout.splitlines()


async def test_output_is_utf8_with_replacement(node: ResolvedNode, keys: KeyRing) -> None:
    async with SSHTransport(node, keys) as t:
        result = await t.run(Command(("printf", "caf\\303\\251 \\377\\n")))
    assert result.stdout == "café \ufffd\n"


async def test_one_connection_serves_all_commands(
    sshd: Sshd, node: ResolvedNode, keys: KeyRing
) -> None:
    logins_before = sshd.log_text().count("Accepted publickey")
    async with SSHTransport(node, keys) as t:
        for i in range(3):
            assert (await t.run(Command(("echo", str(i))))).stdout == f"{i}\n"
        many = await asyncio.gather(*(t.run(Command(("echo", str(i)))) for i in range(8)))
    assert [r.stdout for r in many] == [f"{i}\n" for i in range(8)]
    assert sshd.log_text().count("Accepted publickey") == logins_before + 1


async def test_negotiates_ed25519_and_aes_gcm(node: ResolvedNode, keys: KeyRing) -> None:
    async with SSHTransport(node, keys) as t:
        conn = t._conn
        assert conn is not None
        assert conn.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
        host_key = conn.get_server_host_key()
        assert host_key is not None and host_key.get_algorithm() == "ssh-ed25519"
        assert t.is_root


async def test_is_root_follows_user(node: ResolvedNode, keys: KeyRing) -> None:
    assert SSHTransport(node, keys).is_root
    bob = node.model_copy(update={"user": "bob", "sudo": True})
    assert not SSHTransport(bob, keys).is_root
    assert SSHTransport(bob, keys).uses_sudo
    assert not SSHTransport(node.model_copy(update={"sudo": True}), keys).uses_sudo


async def test_open_transport_picks_ssh_for_remote_nodes(node: ResolvedNode, keys: KeyRing) -> None:
    transport = open_transport(node, keys)
    assert isinstance(transport, SSHTransport)
    async with transport as t:
        assert (await t.run(Command(("true",)))).exit_status == 0


async def test_run_after_close_is_a_connect_error(node: ResolvedNode, keys: KeyRing) -> None:
    t = SSHTransport(node, keys)
    async with t:
        await t.run(Command(("true",)))
    with pytest.raises(ConnectError, match="closed"):
        await t.run(Command(("true",)))


# --- timeouts, limits, lost connections ------------------------------------------------------


async def test_command_timeout_stops_the_remote_process(node: ResolvedNode, keys: KeyRing) -> None:
    marker = "sleep 1000.123"
    with reap(marker):
        async with SSHTransport(node, keys) as t:
            started = time.monotonic()
            with pytest.raises(CommandTimeout, match=r"sleep .* did not finish within 1s"):
                await t.run(Command(("sleep", "1000.123"), timeout=1))
            assert time.monotonic() - started < 3
            # The connection survives a timed-out command.
            assert (await t.run(Command(("echo", "still here")))).stdout == "still here\n"
        # root sessions can't be signalled through sshd; the remote `timeout` watchdog fires
        # REMOTE_GRACE seconds after the client's deadline.
        assert _wait_gone(marker, timeout=10) == []


async def test_node_command_timeout_applies_without_command_timeout(
    node: ResolvedNode, keys: KeyRing
) -> None:
    short = node.model_copy(update={"command_timeout": 1.0})
    with reap("sleep 1000.124"):
        async with SSHTransport(short, keys) as t:
            with pytest.raises(CommandTimeout, match="command_timeout"):
                await t.run(Command(("sleep", "1000.124")))


async def test_output_limit(node: ResolvedNode, keys: KeyRing) -> None:
    small = node.model_copy(update={"max_output_bytes": 100_000})
    async with SSHTransport(small, keys) as t:
        exact = await t.run(Command(("head", "-c", "100000", "/dev/zero")))
        assert len(exact.stdout) == 100_000
        with pytest.raises(OutputLimitError, match="more than 100000 bytes"):
            await t.run(Command(("head", "-c", "50000000", "/dev/zero")))
        # stderr counts too
        with pytest.raises(OutputLimitError):
            await t.run(Command(("sh", "-c", "head -c 200000 /dev/zero >&2")))
        assert (await t.run(Command(("echo", "ok")))).stdout == "ok\n"


async def test_connection_dropped_mid_command(
    sshd: Sshd, node: ResolvedNode, keys: KeyRing
) -> None:
    marker = "sleep 1000.456"
    short = node.model_copy(update={"command_timeout": 5.0})
    with reap(marker):
        async with SSHTransport(short, keys) as t:
            task = asyncio.create_task(t.run(Command(("sh", "-c", "echo go; sleep 1000.456"))))
            deadline = time.monotonic() + 5
            while not _pids_running(marker) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            sessions = [p for p in sshd.session_pids() if "@notty" in cmdline(p)]
            assert sessions, "no sshd session process found"
            for pid in sessions:
                os.kill(pid, signal.SIGKILL)
            with pytest.raises(ConnectError, match=r"connection lost while running sh"):
                await task
            with pytest.raises(ConnectError, match="lost"):
                await t.run(Command(("true",)))


# --- connect errors --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    port = _free_port()
    node = make_node(sshd, tmp_path / "kh", port=port)
    with pytest.raises(ConnectError, match=rf"refused by 127.0.0.1:{port} \(\[Errno 111\]"):
        async with SSHTransport(node, keys):
            pass


async def test_connect_timeout(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    # Accepts TCP (kernel backlog) but never sends an SSH banner.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        node = make_node(sshd, tmp_path / "kh", port=port, connect_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(
            ConnectError, match=rf"timed out after 0.5s connecting to 127.0.0.1:{port}"
        ):
            async with SSHTransport(node, keys):
                pass
        assert time.monotonic() - started < 3


async def test_dns_failure(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    node = make_node(sshd, tmp_path / "kh", host="no-such-host.invalid")
    with pytest.raises(ConnectError, match=r"cannot resolve host name 'no-such-host\.invalid'"):
        async with SSHTransport(node, keys):
            pass


async def test_wrong_key_is_an_auth_error(
    sshd: Sshd, node: ResolvedNode, tmp_path: Path, keys: KeyRing
) -> None:
    stranger = keygen(tmp_path / "stranger_ed25519")
    bad = node.model_copy(update={"identity_file": str(stranger)})
    with pytest.raises(AuthError) as info:
        async with SSHTransport(bad, keys):
            pass
    message = str(info.value)
    assert "user 'root'" in message
    assert str(stranger) in message
    assert "authorized_keys" in message
    assert info.value.node_id == "n1"
    assert "PRIVATE KEY" not in message


async def test_missing_identity_file(node: ResolvedNode, tmp_path: Path, keys: KeyRing) -> None:
    missing = node.model_copy(update={"identity_file": str(tmp_path / "nope")})
    with pytest.raises(AuthError, match=r"does not exist.*ssh-keygen") as info:
        async with SSHTransport(missing, keys):
            pass
    assert info.value.node_id == "n1"


async def test_no_key_at_all(node: ResolvedNode, tmp_path: Path) -> None:
    ring = KeyRing(use_agent=False, default_identities=(str(tmp_path / "id_ed25519"),))
    keyless = node.model_copy(update={"identity_file": None})
    with pytest.raises(AuthError, match="no SSH key to log in with"):
        async with SSHTransport(keyless, ring):
            pass


async def test_encrypted_key_never_leaks_the_passphrase(
    sshd: Sshd, node: ResolvedNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "correct-horse-battery-staple"
    # PEM: decrypted by `cryptography` alone (OpenSSH-format encryption needs bcrypt).
    locked = tmp_path / "locked_ecdsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", secret, "-f", str(locked)],
        check=True,
    )
    sshd.authorized_keys.write_text(
        sshd.client_key.with_suffix(".pub").read_text() + locked.with_suffix(".pub").read_text()
    )
    encrypted = node.model_copy(update={"identity_file": str(locked)})
    for ring, expected in (
        (KeyRing(use_agent=False), "encrypted and no passphrase was given.*ssh-add"),
        (KeyRing(use_agent=False, passphrase="wrong-pass"), "passphrase given does not open"),
    ):
        with pytest.raises(AuthError, match=expected) as info:
            async with SSHTransport(encrypted, ring):
                pass
        assert secret not in str(info.value) and "wrong-pass" not in str(info.value)
    ring = KeyRing(use_agent=False, passphrase=secret)
    async with SSHTransport(encrypted, ring) as t:
        assert (await t.run(Command(("true",)))).exit_status == 0
    assert secret not in repr(ring)
    assert secret not in caplog.text and "wrong-pass" not in caplog.text
    assert "PRIVATE KEY" not in caplog.text


async def test_encrypted_openssh_key_names_what_is_missing(
    node: ResolvedNode, tmp_path: Path
) -> None:
    locked = keygen(tmp_path / "locked_ed25519", passphrase="s3cret-words")
    ring = KeyRing(use_agent=False, passphrase="s3cret-words")
    encrypted = node.model_copy(update={"identity_file": str(locked)})
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        with pytest.raises(AuthError, match="needs the 'bcrypt' package") as info:
            async with SSHTransport(encrypted, ring):
                pass
        assert "s3cret-words" not in str(info.value)
    else:  # pragma: no cover - depends on the environment
        with pytest.raises(AuthError, match="refused user"):  # not in authorized_keys
            async with SSHTransport(encrypted, ring):
                pass


async def test_ssh_agent_is_used_without_identity_file(
    sshd: Sshd, node: ResolvedNode, tmp_path: Path
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], env=env, check=True)
        ring = KeyRing(agent_path=str(sock), default_identities=())
        agentless = node.model_copy(update={"identity_file": None})
        async with SSHTransport(agentless, ring) as t:
            assert (await t.run(Command(("echo", "via agent")))).stdout == "via agent\n"
        async with SSHTransport(agentless, ring) as t:  # agent keys listed once, reused
            assert (await t.run(Command(("true",)))).exit_status == 0
        ring.close()
    finally:
        agent.terminate()
        agent.wait(timeout=5)


async def test_keys_and_known_hosts_are_loaded_once(
    sshd: Sshd, node: ResolvedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real_read = asyncssh.read_private_key

    def counting_read(path: str, passphrase: str | None = None) -> asyncssh.SSHKey:
        reads.append(path)
        return real_read(path, passphrase)

    monkeypatch.setattr(keys_module.asyncssh, "read_private_key", counting_read)
    parses: list[Path] = []
    real_init = keys_module.KnownHosts.__init__

    def counting_init(self: keys_module.KnownHosts, path: Path) -> None:
        parses.append(path)
        real_init(self, path)

    monkeypatch.setattr(keys_module.KnownHosts, "__init__", counting_init)
    ring = KeyRing(use_agent=False)

    async def one(i: int) -> str:
        async with SSHTransport(node.model_copy(update={"id": f"n{i}"}), ring) as t:
            return (await t.run(Command(("echo", str(i))))).stdout

    assert await asyncio.gather(*(one(i) for i in range(5))) == [f"{i}\n" for i in range(5)]
    assert reads == [str(sshd.client_key)]
    assert ring.key_loads == 1
    assert len(parses) == 1


# --- host keys -------------------------------------------------------------------------------


async def test_unknown_host_key_strict(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    node = make_node(sshd, kh)
    with pytest.raises(HostKeyError) as info:
        async with SSHTransport(node, keys):
            pass
    message = str(info.value)
    assert f"host key for [127.0.0.1]:{sshd.port} is not in {kh}" in message
    assert f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {kh}" in message
    assert "accept-new" in message
    assert kh.read_text() == ""


async def test_unknown_host_missing_known_hosts_file(
    sshd: Sshd, tmp_path: Path, keys: KeyRing
) -> None:
    node = make_node(sshd, tmp_path / "absent")
    with pytest.raises(HostKeyError, match="does not exist"):
        async with SSHTransport(node, keys):
            pass
    assert not (tmp_path / "absent").exists()


async def test_port_22_entry_does_not_vouch_for_other_ports(
    sshd: Sshd, tmp_path: Path, keys: KeyRing
) -> None:
    # OpenSSH semantics: a plain `host` entry is for port 22 only.
    kh = tmp_path / "known_hosts"
    kh.write_text(f"127.0.0.1 {sshd.host_pub_line}\n")
    with pytest.raises(HostKeyError, match="is not in"):
        async with SSHTransport(make_node(sshd, kh), keys):
            pass


async def test_changed_host_key(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    other = keygen(tmp_path / "other_host_key")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {pub_line(other)}\n")
    with pytest.raises(HostKeyError) as info:
        async with SSHTransport(make_node(sshd, kh), keys):
            pass
    message = str(info.value)
    assert "HOST KEY CHANGED" in message
    assert "man-in-the-middle" in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {kh}" in message


async def test_known_rsa_entry_is_honoured(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    # The node is known by its RSA key only: asking for ed25519 first would look "changed".
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {pub_line(sshd.host_key_rsa)}\n")
    async with SSHTransport(make_node(sshd, kh), keys) as t:
        assert t._conn is not None
        host_key = t._conn.get_server_host_key()
        assert host_key is not None and host_key.get_algorithm() == "ssh-rsa"


async def test_hashed_known_hosts_entry(sshd: Sshd, tmp_path: Path, keys: KeyRing) -> None:
    kh = sshd.write_known_hosts(tmp_path / "known_hosts")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert kh.read_text().startswith("|1|")
    async with SSHTransport(make_node(sshd, kh), keys) as t:
        assert (await t.run(Command(("true",)))).exit_status == 0


async def test_accept_new_records_the_key_then_strict_works(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "dir" / "known_hosts"
    node = make_node(sshd, kh, host_key_policy="accept-new")
    for _ in range(2):
        ring = KeyRing(use_agent=False)
        async with SSHTransport(node, ring) as t:
            assert (await t.run(Command(("echo", "hi")))).stdout == "hi\n"
    assert kh.read_text() == f"[127.0.0.1]:{sshd.port} {sshd.host_pub_line}\n"
    strict = node.model_copy(update={"host_key_policy": "strict"})
    async with SSHTransport(strict, KeyRing(use_agent=False)) as t:
        assert (await t.run(Command(("true",)))).exit_status == 0


async def test_accept_new_refuses_a_changed_key(sshd: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    kh = tmp_path / "known_hosts"
    before = f"[127.0.0.1]:{sshd.port} {pub_line(other)}\n"
    kh.write_text(before)
    node = make_node(sshd, kh, host_key_policy="accept-new")
    with pytest.raises(HostKeyError, match="ssh-keygen -R"):
        async with SSHTransport(node, KeyRing(use_agent=False)):
            pass
    assert kh.read_text() == before


async def test_accept_new_concurrent_nodes_write_one_entry(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    ring = KeyRing(use_agent=False)

    async def one(i: int) -> int:
        node = make_node(sshd, kh, id=f"n{i}", host_key_policy="accept-new")
        async with SSHTransport(node, ring) as t:
            return (await t.run(Command(("true",)))).exit_status

    assert await asyncio.gather(*(one(i) for i in range(4))) == [0, 0, 0, 0]
    assert kh.read_text().count(sshd.host_pub_line) == 1
