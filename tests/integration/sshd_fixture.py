"""A real OpenSSH sshd on 127.0.0.1 for transport tests.

sshd runs from the host's openssh-server with a throwaway config: its own ed25519 host key,
key-only auth against a temporary authorized_keys, no PAM, ``-D -e`` so it stays in the
foreground and logs to stderr. Root's ``~/.bashrc`` on the project machine runs ``pyenv init``,
which bash sources for every ssh exec (~200 ms of CPU each); sshd therefore runs in a private
mount namespace where an empty file is bind-mounted over it. The real file is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """Create an OpenSSH key pair at ``path`` (private) and ``path.pub``."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path


def pub_line(private_key: Path) -> str:
    """``type base64`` of the public half of ``private_key`` (no comment)."""
    kind, b64 = private_key.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {b64}"


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    todo, found = [pid], []
    while todo:
        for c in children(todo.pop()):
            found.append(c)
            todo.append(c)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class Sshd:
    """A running sshd and the files a client needs to reach it."""

    port: int
    pid: int
    workdir: Path
    host_key: Path
    host_key_rsa: Path
    client_key: Path
    authorized_keys: Path
    log: Path

    @property
    def host_pub_line(self) -> str:
        """The ed25519 host key as ``type base64``, as a known_hosts entry wants it."""
        return pub_line(self.host_key)

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_pub_line}\n"

    def write_known_hosts(self, path: Path) -> Path:
        path.write_text(self.known_hosts_line())
        return path

    def session_pids(self) -> list[int]:
        """Per-connection sshd processes (and what they run) below the listener."""
        return descendants(self.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _config(workdir: Path, port: int, host_keys: list[Path], authorized_keys: Path) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            *(f"HostKey {k}" for k in host_keys),
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            "LogLevel VERBOSE",
            "",
        ]
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port} within {timeout}s:\n{log.read_text()}")


@contextlib.contextmanager
def run_sshd(workdir: Path) -> Iterator[Sshd]:
    """Start sshd in ``workdir``; stop it (and every session it forked) on exit."""
    if not Path(SSHD).exists():
        pytest.fail(
            f"{SSHD} not found: the SSH transport tests need a real OpenSSH server; "
            "install it with: apt-get install openssh-server",
            pytrace=False,
        )
    if shutil.which(SSH_KEYGEN) is None:
        pytest.fail("ssh-keygen not found; install it with: apt-get install openssh-client")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = keygen(workdir / "ssh_host_ed25519_key")
    # An RSA host key too, as most real nodes have: the client must still pick ed25519.
    host_key_rsa = keygen(workdir / "ssh_host_rsa_key", "rsa")
    client_key = keygen(workdir / "client_ed25519")
    authorized_keys = workdir / "authorized_keys"
    authorized_keys.write_text(client_key.with_suffix(".pub").read_text())
    # sshd refuses to start without its privilege-separation directory.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    empty_rc = workdir / "empty_bashrc"
    empty_rc.write_text("")
    log = workdir / "sshd.log"

    last_error: Exception | None = None
    for _ in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(_config(workdir, port, [host_key_rsa, host_key], authorized_keys))
        argv = [SSHD, "-D", "-e", "-f", str(config)]
        home_rc = Path.home() / ".bashrc"
        if os.geteuid() == 0 and shutil.which("unshare") and home_rc.exists():
            inner = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
            argv = [
                "unshare", "--mount", "--propagation", "private",
                "sh", "-c", inner, "sh", str(empty_rc), str(home_rc), *argv,
            ]  # fmt: skip
        logf = log.open("ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        try:
            _wait_listening(port, proc, log, timeout=10)
        except RuntimeError as err:
            last_error = err
            proc.kill()
            proc.wait()
            continue
        try:
            yield Sshd(
                port, proc.pid, workdir, host_key, host_key_rsa, client_key, authorized_keys, log
            )
        finally:
            for pid in [proc.pid, *descendants(proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return
    raise RuntimeError(f"could not start sshd: {last_error}")
