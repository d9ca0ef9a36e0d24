"""Client keys and known_hosts files, each loaded once per run and shared by every node.

asyncssh re-reads and re-validates a key given as a *path* on every connection (~170 ms of CPU
for an RSA key); a :class:`KeyRing` reads each file once and hands out key objects. known_hosts
files are parsed once too. A KeyRing holds nothing secret beyond the loaded keys themselves and
the optional passphrase, neither of which ever appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from patchfleet.errors import AuthError, HostKeyError

log = logging.getLogger("patchfleet.transport")

DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")

_ClientKey = asyncssh.SSHKey | asyncssh.SSHKeyPair


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def openssh_public(key: asyncssh.SSHKey) -> str:
    """``type base64`` of a public key, without comment."""
    kind, b64 = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{kind} {b64}"


@dataclass(frozen=True, slots=True)
class Trust:
    """What a known_hosts file says about one host."""

    host_keys: tuple[asyncssh.SSHKey, ...] = ()
    ca_keys: tuple[asyncssh.SSHKey, ...] = ()
    revoked: tuple[asyncssh.SSHKey, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.host_keys or self.ca_keys)

    def __add__(self, other: Trust) -> Trust:
        return Trust(
            self.host_keys + other.host_keys,
            self.ca_keys + other.ca_keys,
            self.revoked + other.revoked,
        )


class KnownHosts:
    """One parsed known_hosts file, matched the way OpenSSH matches it.

    asyncssh falls back to plain ``host`` entries when no ``[host]:port`` entry matches a
    non-standard port; OpenSSH does not, and neither do we: two sshd on one address with
    different keys (test nodes, jump hosts) must not vouch for each other.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.exists = path.exists()
        self._db = self._parse(self._read() if self.exists else "")

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise HostKeyError(f"cannot read known_hosts {self.path}: {err.strerror}") from None

    def _parse(self, text: str) -> asyncssh.SSHKnownHosts:
        try:
            return asyncssh.import_known_hosts(text)
        except ValueError as err:
            raise HostKeyError(
                f"cannot parse known_hosts {self.path}: {err}; fix or remove that line"
            ) from None

    @staticmethod
    def _lookup(db: asyncssh.SSHKnownHosts, host: str, addr: str, port: int | None) -> Trust:
        if not port or port == 22:
            found = db.match(host, addr, None)
            return Trust(tuple(found[0]), tuple(found[1]), tuple(found[2]))
        trust = Trust()
        for name in dict.fromkeys(n for n in (host, addr) if n):
            found = db.match(f"[{name}]:{port}", "", None)
            trust += Trust(tuple(found[0]), tuple(found[1]), tuple(found[2]))
        return trust

    def lookup(self, host: str, addr: str, port: int | None) -> Trust:
        return self._lookup(self._db, host, addr, port)

    def asyncssh_trust(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """The ``known_hosts`` callable asyncssh calls with (host, addr, port-or-None)."""
        trust = self.lookup(host, addr, port)
        return list(trust.host_keys), list(trust.ca_keys), list(trust.revoked)

    def add(self, host: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Append ``key`` for ``host`` (accept-new). False if another writer already did.

        The file is locked while re-read and appended, so concurrent runs (or nodes) sharing
        it neither duplicate entries nor accept two different keys for one host.
        """
        name = known_hosts_name(host, port)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            current = self._parse(text)
            trust = self._lookup(current, host, "", port)
            if key in trust.host_keys:
                self._db, self.exists = current, True
                return False
            if trust.known:
                raise HostKeyError(
                    f"another key for {name} was added to {self.path} while connecting; "
                    "refusing the key this node presented"
                )
            line = f"{name} {openssh_public(key)}\n"
            if text and not text.endswith("\n"):
                line = "\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._db, self.exists = self._parse(text + line), True
        return True


def _pem_encrypted(p: Path) -> bool:
    """Whether ``p`` is a passphrase-protected PEM key (legacy ``Proc-Type: 4,ENCRYPTED`` or
    PKCS#8 ``ENCRYPTED PRIVATE KEY``); its first lines say so."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return b"Proc-Type: 4,ENCRYPTED" in head or b"BEGIN ENCRYPTED PRIVATE KEY" in head


class KeyRing:
    """Private keys and known_hosts files for one run, each read once and cached.

    ``identity_file`` keys are read with :func:`asyncssh.read_private_key` on first use. A node
    without ``identity_file`` offers the SSH agent's keys (when ``SSH_AUTH_SOCK`` is set) and
    then the default files ``~/.ssh/id_ed25519``, ``id_ecdsa``, ``id_rsa``. Agent keys are
    listed once per event loop. Use one KeyRing per run and :meth:`close` it at the end.
    """

    def __init__(
        self,
        *,
        passphrase: str | None = None,
        agent_path: str | None = None,
        use_agent: bool = True,
        default_identities: Sequence[str] = DEFAULT_IDENTITIES,
    ) -> None:
        self._passphrase = passphrase
        self._agent_path = agent_path if agent_path is not None else os.environ.get("SSH_AUTH_SOCK")
        if not use_agent:
            self._agent_path = None
        self._default_identities = tuple(default_identities)
        self._keys: dict[Path, asyncssh.SSHKey] = {}
        self._known: dict[Path, KnownHosts] = {}
        self._agent: tuple[asyncio.AbstractEventLoop, asyncssh.SSHAgentClient] | None = None
        self._agent_keys: list[asyncssh.SSHKeyPair] | None = None
        self._agent_lock: asyncio.Lock | None = None
        self.key_loads = 0
        """How many key files were actually read (each at most once)."""

    def __repr__(self) -> str:
        return f"KeyRing(keys={len(self._keys)}, known_hosts={len(self._known)})"

    @staticmethod
    def _path(path: str) -> Path:
        return Path(path).expanduser().absolute()

    def private_key(self, path: str) -> asyncssh.SSHKey:
        """The private key in ``path``, read on first use."""
        p = self._path(path)
        key = self._keys.get(p)
        if key is None:
            key = self._read_key(p)
            self._keys[p] = key
        return key

    def _read_key(self, p: Path) -> asyncssh.SSHKey:
        self.key_loads += 1
        try:
            return asyncssh.read_private_key(str(p), self._passphrase)
        except FileNotFoundError:
            raise AuthError(
                f"identity_file {p} does not exist; create a key with "
                f"ssh-keygen -t ed25519 -f {p}, or fix identity_file in the inventory"
            ) from None
        except OSError as err:
            raise AuthError(f"cannot read identity_file {p}: {err.strerror}") from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as err:
            raise AuthError(self._key_error(p, err)) from None

    def _key_error(self, p: Path, err: Exception) -> str:
        text = str(err)
        agent = f"load it into ssh-agent (ssh-add {p}) and unset identity_file"
        if "bcrypt" in text:
            return (
                f"identity_file {p} is an encrypted OpenSSH key, and reading those needs the "
                f"'bcrypt' package (pip install bcrypt); or {agent}"
            )
        if "passphrase must be specified" in text.lower():
            return (
                f"identity_file {p} is encrypted and no passphrase was given; {agent}, or "
                "give the KeyRing its passphrase"
            )
        if self._passphrase and (
            isinstance(err, asyncssh.KeyEncryptionError) or "decrypt" in text.lower()
            or _pem_encrypted(p)
        ):
            # A legacy PEM key decrypted with a wrong passphrase is garbage that sometimes
            # passes the padding check and then fails to parse ("Invalid PEM private key")
            return f"identity_file {p} is encrypted and the passphrase given does not open it"
        return f"identity_file {p} is not a usable private key ({text})"

    def known_hosts(self, path: str) -> KnownHosts:
        """The parsed known_hosts file at ``path`` (empty if it does not exist yet)."""
        p = self._path(path)
        kh = self._known.get(p)
        if kh is None:
            kh = KnownHosts(p)
            self._known[p] = kh
        return kh

    async def agent_keys(self) -> list[asyncssh.SSHKeyPair]:
        """The SSH agent's keys, listed once per event loop; [] without an agent."""
        if not self._agent_path:
            return []
        loop = asyncio.get_running_loop()
        if self._agent is not None and self._agent[0] is not loop:
            self._agent[1].close()
            self._agent = self._agent_keys = self._agent_lock = None
        if self._agent_lock is None:
            self._agent_lock = asyncio.Lock()
        async with self._agent_lock:
            if self._agent_keys is None:
                agent = asyncssh.SSHAgentClient(self._agent_path)
                try:
                    self._agent_keys = list(await agent.get_keys())
                except (OSError, ValueError, asyncssh.Error) as err:
                    agent.close()
                    log.warning("SSH agent at SSH_AUTH_SOCK is unusable: %s", err)
                    self._agent_keys = []
                else:
                    self._agent = (loop, agent)
            return self._agent_keys

    async def client_keys(self, identity_file: str | None) -> tuple[list[_ClientKey], str]:
        """Keys to offer for a node and a description of them for messages.

        Raises AuthError naming the fix when there is no key at all.
        """
        if identity_file:
            return [self.private_key(identity_file)], str(self._path(identity_file))
        keys: list[_ClientKey] = []
        described: list[str] = []
        agent = await self.agent_keys()
        if agent:
            keys += agent
            described.append(f"{len(agent)} ssh-agent key(s)")
        for candidate in self._default_identities:
            p = self._path(candidate)
            if p in self._keys or p.exists():
                try:
                    keys.append(self.private_key(str(p)))
                except AuthError as err:
                    log.info("skipping default key: %s", err)
                    continue
                described.append(str(p))
        if not keys:
            where = "SSH_AUTH_SOCK is not set" if not self._agent_path else "the agent has none"
            raise AuthError(
                "no SSH key to log in with: no identity_file is set, "
                f"{where}, and none of {', '.join(self._default_identities)} exists; set "
                "identity_file in the inventory, or create a key with ssh-keygen -t ed25519"
            )
        return keys, " and ".join(described)

    def close(self) -> None:
        if self._agent is not None:
            with contextlib.suppress(Exception):
                self._agent[1].close()
        self._agent = self._agent_keys = self._agent_lock = None
