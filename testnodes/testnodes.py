#!/usr/bin/env python3
"""Real test nodes for patchfleet's integration tests, reachable over real SSH: Debian 12 (apt),
"Rocky Linux 9" and "Amazon Linux 2023" (dnf), "SLES 15 SP6" and "openSUSE Leap 15.6" (zypper).

A node is a Debian bookworm root filesystem with its own OpenSSH ``sshd`` listening on
``127.0.0.1:PORT``, running in its own UTS, PID, mount and time namespaces, so that its hostname,
process table, ``/run``, uptime and boot id are its own. Debian nodes see only a local, signed apt
archive laid out like Debian's (``bookworm``, ``bookworm-updates``, ``bookworm-security``),
filled with fake packages that have real security and non-security updates, a held package, a
kernel that asks for a reboot and a package that is not installed. The RPM-family nodes run
Debian's own rpm, dnf and zypper against local rpm-md repositories with updateinfo
(``rpmrepo.py`` has the packages and advisories), under the os-release of the distribution they
imitate.

Layers, each cached and rebuilt only when its stamp changes:

``base``       per family (debian, rpm, zypper): mmdebstrap minbase + openssh-server, procps and
               the family's package manager; no docs, no Debian lists
``repo``       fake .debs and the signed archive (apt-ftparchive + a throw-away gpg key)
``rpmrepo``    fake .rpms (rpmbuild) and the rpm-md repositories, dnf and zypper flavours
``template``   per variant: an overlay upper dir holding the repositories, their configuration
               and the 1.0 packages installed (Debian: ``fake-held`` on hold)
``node``       an empty overlay upper dir over template + base, plus its own host key

Everything is stdlib so that CI can build nodes before any virtualenv exists::

    python testnodes/testnodes.py build                 # everything, from zero (~2-3 min cold)
    python testnodes/testnodes.py start rocky-a --variant rocky9
    python testnodes/testnodes.py start deb-a --port 22301 --tag PatchGroup=web
    python testnodes/testnodes.py inventory --out /tmp/inv.yaml deb-a
    python testnodes/testnodes.py ssh deb-a apt list --upgradable
    python testnodes/testnodes.py reboot deb-a
    python testnodes/testnodes.py stop deb-a

Facts and traps this relies on are in ``/work/shared/reference/test-nodes.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import fcntl
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# The sibling module: this file is run as a script or loaded by path, never as a package.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import rpmrepo

SUITE = "bookworm"
DEFAULT_CACHE_DIR = "/var/cache/patchfleet-testnodes"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LISTEN = "127.0.0.1"

# Bump one of these to force a rebuild of that layer (and of every layer above it).
BASE_VERSION = 1
REPO_VERSION = 1
TEMPLATE_VERSION = 1
RPM_REPO_VERSION = 1
RPM_TEMPLATE_VERSION = 1

BASE_INCLUDE = ("openssh-server", "apt-utils", "procps")
# Base rootfs per family: what mmdebstrap includes besides minbase.
FAMILIES: dict[str, tuple[str, ...]] = {
    "debian": BASE_INCLUDE,
    "rpm": ("openssh-server", "procps", "rpm", "dnf", "dnf-plugins-core", "createrepo-c", "file"),
    "zypper": ("openssh-server", "procps", "rpm", "zypper", "lsof", "xz-utils"),
}
DPKG_EXCLUDES = (
    "/usr/share/man/*",
    "/usr/share/doc/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEYRING_IN_NODE = "/etc/apt/keyrings/patchfleet-testnodes.gpg"
SOURCE_DATE_EPOCH = "1735689600"  # 2025-01-01: reproducible .deb timestamps
MAINTAINER = "patchfleet test archive <testnodes@patchfleet.invalid>"
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# In-node reboot. A node has no init, so `reboot`, `shutdown -r` and `systemctl reboot` inside it
# are this shim: it leaves a request in the node's /run, which the node's supervisor (a
# `testnodes.py _supervise` process on the host, started with the node) polls through
# /proc/<pid1>/root; the supervisor then restarts the node as `testnodes.py reboot` does.
REBOOT_REQUEST = "run/testnodes/reboot-request"  # relative to the node's root
REBOOT_SHIM_MARKER = "patchfleet-testnodes reboot shim"
REBOOT_SHIM_PATHS = ("usr/sbin/reboot", "usr/sbin/shutdown", "usr/bin/systemctl")
REBOOT_DELAY = 0.5  # seconds between the request and the stop: lets `ssh node reboot` return
SUPERVISE_POLL = 0.1
REBOOT_SHIM = f"""\
#!/bin/sh
# {REBOOT_SHIM_MARKER}: a test node has no init. This asks the node's supervisor (testnodes.py on
# the host) to restart the node: same disk, port and host key; new boot id; /run emptied.
case "${{0##*/}}" in
systemctl)
    want=
    for a in "$@"; do [ "$a" = reboot ] && want=1; done
    if [ -z "$want" ]; then
        echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2
        echo "Failed to connect to bus: Host is down" >&2
        exit 1
    fi ;;
shutdown)
    case " $* " in
    *" -r "*|*" --reboot "*) ;;
    *) echo "shutdown: this test node can only reboot (shutdown -r)" >&2; exit 1 ;;
    esac ;;
esac
mkdir -p /run/testnodes && date +%s > /{REBOOT_REQUEST}
"""

SSHD_CONFIG = """\
# patchfleet test node: key-only root login, many concurrent scans, no DNS lookups.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200:30:400
MaxSessions 100
UseDNS no
"""


@dataclasses.dataclass(frozen=True)
class Pocket:
    """One suite of the local archive, with the Release fields Debian's own suite carries."""

    key: str
    codename: str
    suite: str
    archive: str  # directory under /srv/repo
    pool: str
    origin: str
    label: str
    version: str
    description: str


POCKETS = (
    Pocket("stable", "bookworm", "stable", "debian", "pool/main",
           "Debian", "Debian", "12.11", "Debian 12.11 Released 17 May 2025"),
    Pocket("updates", "bookworm-updates", "stable-updates", "debian", "pool/main",
           "Debian", "Debian", "12-updates", "Debian 12 - Updates"),
    Pocket("security", "bookworm-security", "stable-security", "debian-security",
           "pool/updates/main", "Debian", "Debian-Security", "12", "Debian 12 - Security Updates"),
)


@dataclasses.dataclass(frozen=True)
class FakePackage:
    """A fake package: 1.0 in ``bookworm`` (when ``in_stable``), 1.1 in each pocket of ``updates``.

    ``depends`` may contain ``{version}``. ``manual`` says whether node setup asks for it by name
    (the others arrive as dependencies and are marked automatically installed, as on Debian).
    """

    name: str
    priority: str
    section: str
    updates: tuple[str, ...] = ()
    arch_all: bool = False
    source: str | None = None
    depends: str | None = None
    in_stable: bool = True
    manual: bool = True
    daemon: bool = False
    reboot: bool = False

    def versions(self) -> dict[str, str]:
        """pocket key -> version of this package in that pocket."""
        out = {"stable": "1.0"} if self.in_stable else {}
        out.update((p, "1.1") for p in self.updates)
        return out


PACKAGES = (
    FakePackage("libfakessl3", "important", "libs", ("security",), source="fakessl"),
    FakePackage("fake-sudo", "optional", "admin", ("security",)),
    FakePackage("fake-curl", "standard", "net", ("updates", "security")),
    FakePackage("fake-coreutils", "required", "utils", ("updates",)),
    FakePackage("fake-editor", "optional", "editors", ("updates",)),
    FakePackage("fake-tzdata", "required", "localization", ("updates",), arch_all=True),
    FakePackage("fake-held", "optional", "misc", ("security",)),
    FakePackage("fake-daemon", "optional", "admin", ("updates",), depends="libc6", daemon=True),
    FakePackage("fake-extra", "extra", "misc", ("security",)),
    FakePackage("fake-stable-only", "optional", "misc"),
    FakePackage("linux-image-fake", "optional", "kernel", ("security",),
                source="linux-signed-fake", depends="linux-image-{version}-fake"),
    FakePackage("linux-image-1.0-fake", "optional", "kernel", source="linux-fake",
                manual=False, reboot=True),
    FakePackage("linux-image-1.1-fake", "optional", "kernel", ("security",), source="linux-fake",
                in_stable=False, reboot=True),
    FakePackage("fake-notinstalled", "optional", "misc", ("security",), in_stable=False),
)
HELD_PACKAGES = ("fake-held",)



@dataclasses.dataclass(frozen=True)
class Variant:
    """A kind of node: its family (which base, repository and setup it gets) and extra setup run
    as root inside the template after the family's default setup."""

    family: str
    script: str = ""
    description: str = ""


VARIANTS: dict[str, Variant] = {
    "default": Variant("debian", description="Debian 12, every fake package at 1.0"),
    # Everything current except the held package: a node that has been patched.
    "upgraded": Variant("debian", "apt-get -q -y dist-upgrade\napt-get -q clean",
                        "Debian 12 after dist-upgrade (only fake-held pending)"),
    "rocky9": Variant("rpm", description="Rocky Linux 9.5 (dnf), every fake rpm at 1.0"),
    "al2023": Variant("rpm", description="Amazon Linux 2023 (dnf), every fake rpm at 1.0"),
    "sles15": Variant("zypper", description="SLES 15 SP6 (zypper), every fake rpm at 1.0"),
    "leap15": Variant("zypper", description="openSUSE Leap 15.6 (zypper), every fake rpm at 1.0"),
}


class TestnodesError(Exception):
    """An expected failure (missing tool, busy port, node not found...): printed without a
    traceback by the CLI. The message says what went wrong and what to do about it."""


@dataclasses.dataclass
class NodeStatus:
    name: str
    variant: str
    state: str  # running | stopped | stale (built from an older template)
    port: int | None
    pid: int | None
    uptime: float | None


def _sha(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:12]


def _run(argv: Sequence[str], *, what: str, cwd: Path | None = None,
         env: dict[str, str] | None = None, timeout: float | None = None,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a host command; on failure raise TestnodesError with the tail of its output."""
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, env=env, input=input, timeout=timeout, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise TestnodesError(f"{what}: '{argv[0]}' is not installed") from None
    except subprocess.TimeoutExpired:
        raise TestnodesError(f"{what}: timed out after {timeout} s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise TestnodesError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def _pid_alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie (this sandbox's init never reaps orphans)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _listening_ports() -> set[int]:
    """TCP ports something listens on, from ``ss -ltn`` (a bind test would miss other netns)."""
    try:
        out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    ports = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1].isdigit():
            ports.add(int(cols[3].rsplit(":", 1)[-1]))
    return ports


def port_is_free(port: int) -> bool:
    if port in _listening_ports():
        return False
    with socket.socket() as s:
        # As sshd does: connections in TIME_WAIT from a node's last boot must not block reboot.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LISTEN, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on; the kernel's ephemeral allocator keeps callers apart."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((LISTEN, 0))
            port = int(s.getsockname()[1])
        if port_is_free(port):
            return port
    raise TestnodesError("could not find a free TCP port on 127.0.0.1")


def _ssh_banner(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((LISTEN, port), timeout=timeout) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _pids_using(path: Path) -> list[int]:
    """Pids whose mount namespace mounts something at or from ``path`` (a node's overlay names
    the template and base in its options), in any namespace, not just ours."""
    needle = str(path.resolve()).rstrip("/").replace(" ", "\\040") + "/"
    pids = []
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        with contextlib.suppress(OSError, ValueError):
            if needle in mountinfo.read_text():
                pids.append(int(mountinfo.parent.name))
    return pids


def _rmtree(path: Path) -> None:
    """rm -rf that refuses to delete what a mount still uses: a leftover bind of /dev would be
    fatal, and deleting a base or template under a running node corrupts it."""
    if not path.exists() and not path.is_symlink():
        return
    users = _pids_using(path)
    if users:
        raise TestnodesError(
            f"refusing to delete {path}: mounts of processes {', '.join(map(str, users[:10]))} "
            "still use it; stop the nodes that run on it first"
        )
    shutil.rmtree(path)


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def _world_readable(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


def host_mirror() -> str:
    """The Debian mirror this host uses: env override, else the first ``URIs:`` of its sources."""
    if os.environ.get("PATCHFLEET_TESTNODES_MIRROR"):
        return os.environ["PATCHFLEET_TESTNODES_MIRROR"]
    with contextlib.suppress(OSError):
        for line in HOST_SOURCES.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    return DEFAULT_MIRROR


def host_arch() -> str:
    return _run(["dpkg", "--print-architecture"], what="dpkg --print-architecture").stdout.strip()


_probe_cache: dict[str, bool] = {}


def _probe(name: str, argv: list[str]) -> bool:
    if name not in _probe_cache:
        try:
            rc = subprocess.run(argv, capture_output=True, timeout=30).returncode
        except (OSError, subprocess.TimeoutExpired):
            rc = 1
        _probe_cache[name] = rc == 0
    return _probe_cache[name]


def overlay_supported(scratch: Path) -> bool:
    """Whether overlayfs can be mounted with upper dirs on ``scratch``'s filesystem (it can't on
    another overlayfs, e.g. inside a container)."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".overlay-probe-") as tmp:
        for d in "luwm":
            Path(tmp, d).mkdir()
        opts = f"lowerdir={tmp}/l,upperdir={tmp}/u,workdir={tmp}/w"
        script = f"mount -t overlay overlay -o {opts} {tmp}/m"
        return _probe("overlay:" + str(scratch), ["unshare", "--mount", "--propagation", "private",
                                                  "sh", "-c", script])


def timens_supported() -> bool:
    return _probe("timens", ["unshare", "--time", "--boottime", "0", "--fork", "true"])


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------------------------------------


class Fleet:
    """Builds the cached layers and starts, stops, reboots and inspects nodes.

    ``cache_dir`` holds what is expensive and shared (base, repo, templates, the client key);
    ``state_dir`` holds the nodes themselves and the fleet's ``known_hosts``. They are the same
    directory by default; tests use a fresh ``state_dir`` per session so that a session never
    inherits what an earlier one installed on its nodes. ``tie_to_parent`` makes nodes die with
    the process that started them (for pytest; the CLI leaves them running).
    """

    def __init__(self, cache_dir: str | Path | None = None, state_dir: str | Path | None = None,
                 *, log: Callable[[str], None] | None = None, tie_to_parent: bool = False) -> None:
        self.cache = Path(cache_dir or os.environ.get("PATCHFLEET_TESTNODES_DIR")
                          or DEFAULT_CACHE_DIR).resolve()
        self.state = Path(state_dir or os.environ.get("PATCHFLEET_TESTNODES_STATE_DIR")
                          or self.cache).resolve()
        self.nodes_dir = self.state / "nodes"
        self.known_hosts = self.state / "known_hosts"
        self.client_key = self.cache / "keys" / "client_ed25519"
        self.log = log or (lambda msg: print(f"testnodes: {msg}", file=sys.stderr, flush=True))
        self.tie_to_parent = tie_to_parent
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._locks: dict[str, tuple[int, int]] = {}
        self._mode: str | None = None
        self._arch: str | None = None

    # -- locking --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """An flock held across processes (pytest sessions, CLI calls); re-entrant in-process."""
        key = str(path)
        if key in self._locks:
            fd, depth = self._locks[key]
            self._locks[key] = (fd, depth + 1)
            try:
                yield
            finally:
                self._locks[key] = (fd, self._locks[key][1] - 1)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._locks[key] = (fd, 1)
            yield
        finally:
            self._locks.pop(key, None)
            os.close(fd)

    def _build_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._lock(self.cache / ".build.lock")

    def _state_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._lock(self.state / ".state.lock")

    # -- stamps and paths -----------------------------------------------------------------------

    @property
    def arch(self) -> str:
        if self._arch is None:
            self._arch = host_arch()
        return self._arch

    @property
    def mode(self) -> str:
        """``overlay`` (one shared base, a few MB per node) or ``copy`` (a full copy per node)."""
        if self._mode is None:
            wanted = os.environ.get("PATCHFLEET_TESTNODES_MODE", "auto")
            if wanted not in ("auto", "overlay", "copy"):
                raise TestnodesError(
                    f"PATCHFLEET_TESTNODES_MODE={wanted!r}: use auto, overlay or copy")
            if wanted == "auto":
                ok = overlay_supported(self.cache) and overlay_supported(self.state)
                wanted = "overlay" if ok else "copy"
                if not ok:
                    self.log("overlayfs is not available here; nodes are full copies (cp -a)")
            self._mode = wanted
        return self._mode

    def base_stamp(self, family: str = "debian") -> str:
        if family == "debian":  # the stamp Debian bases had before other families existed
            return _sha("base", BASE_VERSION, SUITE, BASE_INCLUDE, DPKG_EXCLUDES)
        return _sha("base", BASE_VERSION, SUITE, family, FAMILIES[family], DPKG_EXCLUDES)

    def repo_stamp(self) -> str:
        specs = [dataclasses.asdict(p) for p in PACKAGES]
        pockets = [dataclasses.asdict(p) for p in POCKETS]
        return _sha("repo", REPO_VERSION, self.base_stamp(), specs, pockets, self.arch)

    def rpm_repo_stamp(self) -> str:
        # rpmrepo.py is data and generators only: any change to it may change the repositories.
        source = Path(rpmrepo.__file__).read_bytes()
        return _sha("rpmrepo", RPM_REPO_VERSION, self.base_stamp("rpm"),
                    hashlib.sha256(source).hexdigest(), self.arch)

    def template_stamp(self, variant: str) -> str:
        self._check_variant(variant)
        v = VARIANTS[variant]
        if v.family == "debian":
            return _sha("template", TEMPLATE_VERSION, self.repo_stamp(), v.script,
                        SSHD_CONFIG, HELD_PACKAGES, self.mode)
        return _sha("template", RPM_TEMPLATE_VERSION, self.rpm_repo_stamp(),
                    self.base_stamp(v.family), variant, v, SSHD_CONFIG, self.mode)

    def base_dir(self, family: str = "debian") -> Path:
        name = SUITE if family == "debian" else f"{SUITE}-{family}"
        return self.cache / "base" / f"{name}-{self.base_stamp(family)}"

    def repo_dir(self) -> Path:
        return self.cache / "repo" / self.repo_stamp()

    def rpm_repo_dir(self) -> Path:
        return self.cache / "rpmrepo" / self.rpm_repo_stamp()

    def template_dir(self, variant: str) -> Path:
        return self.cache / "templates" / f"{variant}-{self.template_stamp(variant)}"

    @staticmethod
    def family(variant: str) -> str:
        Fleet._check_variant(variant)
        return VARIANTS[variant].family

    def node_dir(self, name: str) -> Path:
        return self.nodes_dir / name

    @staticmethod
    def _check_variant(variant: str) -> None:
        if variant not in VARIANTS:
            raise TestnodesError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")

    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME_RE.match(name):
            raise TestnodesError(
                f"{name!r} is not a valid node name: use a hostname label "
                "(lower-case letters, digits and '-', at most 63 characters)")

    # -- build ----------------------------------------------------------------------------------

    def build(self, variants: Sequence[str] | None = None, *, force: bool = False) -> None:
        """Build whatever is missing or stale: client key, the bases, repositories and templates
        the variants need (all variants by default). ``force`` rebuilds every layer."""
        wanted = list(variants or VARIANTS)
        for v in wanted:
            self._check_variant(v)
        families = {VARIANTS[v].family for v in wanted}
        if families - {"debian"}:
            families.add("rpm")  # the rpm repositories are built in the rpm base
        with self._build_lock():
            self.ensure_client_key()
            self._ensure_bases(sorted(families), force=force)
            if "debian" in families:
                self.ensure_repo(force=force)
            if "rpm" in families:
                self.ensure_rpm_repo(force=force)
            for v in wanted:
                self.ensure_template(v, force=force)
            self.prune()

    def _ensure_bases(self, families: Sequence[str], *, force: bool) -> None:
        """Build missing bases side by side: each is mostly waiting on the mirror and dpkg."""
        missing = [f for f in families if force or not (self.base_dir(f) / "COMPLETE").exists()]
        if len(missing) < 2:
            for f in missing:
                self.ensure_base(f, force=force)
            return
        errors: list[BaseException] = []

        def one(family: str) -> None:
            try:
                self.ensure_base(family, force=force)
            except BaseException as err:  # re-raised in the calling thread
                errors.append(err)

        threads = [threading.Thread(target=one, args=(f,), name=f"base-{f}") for f in missing]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def prune(self) -> list[Path]:
        """Delete layers of older stamps (and leftovers of interrupted builds) that no running
        node uses. Stopped nodes made from them are reset from the current template on start."""
        keep = {*(self.base_dir(f) for f in FAMILIES), self.repo_dir(), self.rpm_repo_dir(),
                *(self.template_dir(v) for v in VARIANTS)}
        removed = []
        with self._build_lock():
            for kind in ("base", "repo", "rpmrepo", "templates"):
                for d in sorted((self.cache / kind).glob("*")):
                    if d in keep:
                        continue
                    try:
                        _rmtree(d)
                    except TestnodesError as err:
                        self.log(f"kept {d}: {err}")
                        continue
                    self.log(f"pruned stale layer {d}")
                    removed.append(d)
        return removed

    def ensure_client_key(self) -> Path:
        """The ed25519 key the tests log in with, generated once per cache."""
        if not self.client_key.exists():
            with self._build_lock():
                if not self.client_key.exists():
                    self.client_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                          "patchfleet-testnodes-client", "-f", str(self.client_key)],
                         what="ssh-keygen (client key)")
        return self.client_key

    def ensure_base(self, family: str = "debian", *, force: bool = False) -> Path:
        """The bookworm minbase rootfs of ``family``, shared (read-only) by its nodes."""
        final = self.base_dir(family)
        include = FAMILIES[family]
        with self._build_lock():
            if (final / "COMPLETE").exists() and not force:
                return final / "rootfs"
            mirror = host_mirror()
            use_debootstrap = (os.environ.get("PATCHFLEET_TESTNODES_BOOTSTRAP") == "debootstrap"
                               or not shutil.which("mmdebstrap"))
            tool = "debootstrap" if use_debootstrap else "mmdebstrap"
            self.log(f"building the {SUITE} {family} base rootfs from {mirror} with {tool} "
                     "(about a minute)")
            with self._new_layer(final, f"{family} base rootfs") as tmp:
                if use_debootstrap:
                    self._debootstrap(tmp / "rootfs", mirror, include)
                else:
                    self._mmdebstrap(tmp / "rootfs", mirror, include)
            return final / "rootfs"

    @contextlib.contextmanager
    def _new_layer(self, final: Path, what: str) -> Iterator[Path]:
        """Build a cached layer in a temporary sibling of ``final``, moved into place (with a
        COMPLETE marker) only when done: an interrupted build never looks usable."""
        _rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
        tmp.chmod(0o755)
        started = time.monotonic()
        try:
            yield tmp
            (tmp / "COMPLETE").write_text(final.name + "\n")
            tmp.rename(final)
        except BaseException:
            with contextlib.suppress(TestnodesError, OSError):
                _rmtree(tmp)
            raise
        self.log(f"{what} ready in {time.monotonic() - started:.1f} s: {final}")

    def _mmdebstrap(self, rootfs: Path, mirror: str, include: Sequence[str]) -> None:
        # The base must carry no Debian lists nor pkgcache: else every node rebuilds the cache
        # in its upper dir (+76 MB each) and nodes would see Debian's packages, not ours.
        cleanup = ('rm -f "$1"/etc/apt/sources.list "$1"/etc/ssh/ssh_host_* '
                   '"$1"/var/cache/apt/*.bin; rm -rf "$1"/var/lib/apt/lists/*')
        argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(include)]
        argv += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
        argv += [f"--customize-hook={cleanup}", SUITE, str(rootfs),
                 f"deb {mirror} {SUITE} main"]
        _run(argv, what="mmdebstrap", timeout=1800)

    def _debootstrap(self, rootfs: Path, mirror: str, include: Sequence[str]) -> None:
        # debootstrap has no policy-rc.d: openssh-server would start a real sshd on port 22, so
        # it is installed afterwards in a namespace with daemons forbidden.
        _run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
             what="debootstrap", timeout=3600)
        nodoc = "".join(f"path-exclude={p}\n" for p in DPKG_EXCLUDES)
        (rootfs / "etc/dpkg/dpkg.cfg.d/01-patchfleet-nodoc").write_text(nodoc)
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        setup = (
            f"apt-get -q update\napt-get -q -y --no-install-recommends install "
            f"{' '.join(include)}\napt-get -q clean\n"
            "rm -f /usr/sbin/policy-rc.d /etc/apt/sources.list /etc/ssh/ssh_host_* "
            "/var/cache/apt/*.bin\nrm -rf /var/lib/apt/lists/*\n"
            "find /usr/share/doc /usr/share/man /usr/share/info /usr/share/locale "
            "-mindepth 1 -delete 2>/dev/null || true\n"
        )
        self._run_setup(_Layout(root=rootfs), setup, what="debootstrap: installing "
                        + ", ".join(include))

    def ensure_repo(self, *, force: bool = False) -> Path:
        """The signed apt archive: ``debian/`` (bookworm, bookworm-updates) and
        ``debian-security/`` (bookworm-security), plus ``keyring.gpg``."""
        final = self.repo_dir()
        with self._build_lock():
            if (final / "COMPLETE").exists() and not force:
                return final
            rootfs = self.ensure_base()
            with self._new_layer(final, "apt archive") as tmp:
                self._build_repo(tmp, rootfs)
                _world_readable(tmp)  # apt reads file: archives as user _apt
            return final

    def _build_deb(self, pkg: FakePackage, version: str, work: Path, rootfs: Path) -> Path:
        arch = "all" if pkg.arch_all else self.arch
        tree = work / f"{pkg.name}_{version}"
        (tree / "DEBIAN").mkdir(parents=True)
        share = tree / "usr/share/fake" / pkg.name
        share.mkdir(parents=True)
        (share / "VERSION").write_text(f"{pkg.name} {version}\n")
        if pkg.daemon:
            # A copy of the node's own sleep(1), not a script: needrestart and
            # dnf needs-restarting only notice a replaced file that a process has mapped.
            daemon = tree / "usr/libexec/fake-daemon"
            daemon.parent.mkdir(parents=True)
            shutil.copyfile(rootfs / "usr/bin/sleep", daemon)
            daemon.chmod(0o755)
        if pkg.reboot:
            postinst = tree / "DEBIAN/postinst"
            postinst.write_text(
                "#!/bin/sh\n"
                "# What Ubuntu's /usr/share/update-notifier/notify-reboot-required does.\n"
                "set -e\n"
                'if [ "$1" = configure ]; then\n'
                "    echo '*** System restart required ***' > /var/run/reboot-required\n"
                f"    grep -qsx '{pkg.name}' /var/run/reboot-required.pkgs"
                f" || echo '{pkg.name}' >> /var/run/reboot-required.pkgs\n"
                "fi\nexit 0\n"
            )
            postinst.chmod(0o755)
        size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())
        fields = {
            "Package": pkg.name,
            "Source": pkg.source if pkg.source and pkg.source != pkg.name else None,
            "Version": version,
            "Architecture": arch,
            "Maintainer": MAINTAINER,
            "Installed-Size": str(max(1, -(-size // 1024))),
            "Depends": pkg.depends.format(version=version) if pkg.depends else None,
            "Section": pkg.section,
            "Priority": pkg.priority,
            "Description": f"fake {pkg.name} for patchfleet test nodes\n"
                           f" Exists only in patchfleet's local test archive (version {version}).",
        }
        control = "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)
        (tree / "DEBIAN/control").write_text(control)
        out = work / f"{pkg.name}_{version}_{arch}.deb"
        _run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(out)],
             what=f"dpkg-deb {pkg.name} {version}",
             env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        return out

    def _build_repo(self, out: Path, rootfs: Path) -> None:
        work = out / ".debs"
        work.mkdir()
        # (archive, package, version) -> Filename relative to the archive root
        placed: dict[tuple[str, str, str], str] = {}
        debs: dict[tuple[str, str], Path] = {}
        for pkg in PACKAGES:
            for pocket_key, version in pkg.versions().items():
                pocket = next(p for p in POCKETS if p.key == pocket_key)
                if (pkg.name, version) not in debs:
                    debs[pkg.name, version] = self._build_deb(pkg, version, work, rootfs)
                deb = debs[pkg.name, version]
                src = pkg.source or pkg.name
                prefix = src[:4] if src.startswith("lib") else src[0]
                rel = f"{pocket.pool}/{prefix}/{src}/{deb.name}"
                dest = out / pocket.archive / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(deb, dest)
                placed[pocket.archive, pkg.name, version] = rel
        shutil.rmtree(work)

        # apt-ftparchive indexes a whole pool; each pocket's Packages keeps only its versions,
        # as on Debian, where bookworm and bookworm-updates share one pool.
        stanzas: dict[tuple[str, str, str], str] = {}
        for archive in {p.archive for p in POCKETS}:
            text = _run(["apt-ftparchive", "packages", "pool"], cwd=out / archive,
                        what="apt-ftparchive packages").stdout
            for stanza in text.strip().split("\n\n"):
                f = dict(re.findall(r"^(Package|Version): (.+)$", stanza, re.M))
                stanzas[archive, f["Package"], f["Version"]] = stanza.strip() + "\n"
        for pocket in POCKETS:
            wanted = sorted((p.name, p.versions()[pocket.key]) for p in PACKAGES
                            if pocket.key in p.versions())
            body = "\n".join(stanzas[pocket.archive, n, v] for n, v in wanted)
            dist = out / pocket.archive / "dists" / pocket.codename
            bindir = dist / "main" / f"binary-{self.arch}"
            bindir.mkdir(parents=True)
            (bindir / "Packages").write_text(body)
            with gzip.GzipFile(bindir / "Packages.gz", "wb", mtime=0) as gz:
                gz.write(body.encode())
            opts = {
                "Origin": pocket.origin, "Label": pocket.label, "Suite": pocket.suite,
                "Version": pocket.version, "Codename": pocket.codename,
                "Architectures": self.arch, "Components": "main",
                "Description": pocket.description,
            }
            argv = ["apt-ftparchive"]
            for k, v in opts.items():
                argv += ["-o", f"APT::FTPArchive::Release::{k}={v}"]
            release = _run([*argv, "release", "."], cwd=dist, what="apt-ftparchive release").stdout
            (dist / "Release").write_text(release)
        self._sign(out)

    def _sign(self, out: Path) -> None:
        """Sign every Release with a throw-away key (InRelease + Release.gpg); nodes trust it
        through ``Signed-By:``, so no ``[trusted=yes]`` is needed."""
        home = Path(tempfile.mkdtemp(prefix="pf-gpg-"))  # short path: gpg-agent socket limit
        gpg = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback",
               "--passphrase", ""]
        try:
            _run([*gpg, "--quick-gen-key", "patchfleet test archive <testnodes@patchfleet.invalid>",
                  "ed25519", "sign", "never"], what="gpg --quick-gen-key")
            _run([*gpg, "--output", str(out / "keyring.gpg"), "--export"], what="gpg --export")
            for release in sorted(out.glob("*/dists/*/Release")):
                _run([*gpg, "--yes", "--clearsign", "--output", str(release.with_name("InRelease")),
                      str(release)], what="gpg --clearsign")
                _run([*gpg, "--yes", "--armor", "--detach-sign", "--output",
                      str(release.with_name("Release.gpg")), str(release)],
                     what="gpg --detach-sign")
        finally:
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"],
                           capture_output=True, check=False)
            shutil.rmtree(home, ignore_errors=True)

    def ensure_rpm_repo(self, *, force: bool = False) -> Path:
        """The fake rpms and rpm-md repositories (``dnf/`` and ``zypper/`` flavours), built with
        rpmbuild, createrepo_c and modifyrepo_c inside a throw-away overlay of the rpm base."""
        final = self.rpm_repo_dir()
        with self._build_lock():
            if (final / "COMPLETE").exists() and not force:
                return final
            rootfs = self.ensure_base("rpm")
            with self._new_layer(final, "rpm repositories") as tmp:
                layout = self._scratch_layout(tmp / "scratch", rootfs)
                payload = tmp / "payload"
                rpmrepo.write_build_tree(payload / "build", self.rpm_arch)
                self._run_setup(layout, "sh /build/build.sh", payload=payload,
                                what="building the fake rpms and repositories")
                out = (layout.upper or layout.root) / "build" / "out"
                for flavour in ("dnf", "zypper"):
                    shutil.move(str(out / flavour), str(tmp / flavour))
                shutil.rmtree(payload)
                self._drop_scratch(layout)
                _world_readable(tmp)
            return final

    @property
    def rpm_arch(self) -> str:
        """rpm's name for the host architecture (dpkg says amd64, rpm x86_64)."""
        return {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686",
                "ppc64el": "ppc64le"}.get(self.arch, self.arch)

    def _scratch_layout(self, where: Path, rootfs: Path) -> _Layout:
        """A writable root over ``rootfs``: an overlay (or a full copy) under ``where``."""
        if self.mode == "overlay":
            layout = _Layout(root=where / "root", upper=where / "upper", work=where / "work",
                             lowers=(rootfs,))
        else:
            where.mkdir(parents=True, exist_ok=True)
            _run(["cp", "-a", str(rootfs), str(where / "root")], what="cp -a base")
            layout = _Layout(root=where / "root")
        layout.make_dirs()
        return layout

    @staticmethod
    def _drop_scratch(layout: _Layout) -> None:
        for d in (layout.upper, layout.work, layout.root):
            if d and d.exists():
                shutil.rmtree(d)

    def ensure_template(self, variant: str = "default", *, force: bool = False) -> Path:
        """The per-variant layer every node of that variant starts from."""
        final = self.template_dir(variant)
        family = self.family(variant)
        with self._build_lock():
            if (final / "COMPLETE").exists() and not force:
                return final
            rootfs = self.ensure_base(family)
            if family == "debian":
                repo = self.ensure_repo()
            else:
                repo = self.ensure_rpm_repo() / ("dnf" if family == "rpm" else "zypper")
            with self._new_layer(final, f"template {variant!r}") as tmp:
                if self.mode == "overlay":
                    layout = _Layout(root=tmp / "root", upper=tmp / "upper", work=tmp / "work",
                                     lowers=(rootfs,))
                else:
                    _run(["cp", "-a", str(rootfs), str(tmp / "root")], what="cp -a base")
                    layout = _Layout(root=tmp / "root")
                layout.make_dirs()
                if family == "debian":
                    payload = self._template_payload(tmp / "payload", repo)
                    setup = self._template_setup(variant)
                else:
                    payload = self._rpm_template_payload(tmp / "payload", repo, variant)
                    setup = "\n".join([rpmrepo.node_setup(variant, family),
                                       VARIANTS[variant].script])
                self._run_setup(layout, setup, payload=payload,
                                what=f"setting up template {variant!r}")
                shutil.rmtree(payload)
                if layout.work:
                    shutil.rmtree(layout.work)
                    layout.root.rmdir()
            return final

    def _rpm_template_payload(self, payload: Path, repo: Path, variant: str) -> Path:
        """Files copied into an rpm-family template before setup: the repositories under
        /srv/repo and the package manager's configuration."""
        shutil.copytree(repo, payload / "srv/repo")
        for path, content in rpmrepo.node_files(variant, self.family(variant)).items():
            dest = payload / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(content)
        (payload / "etc/ssh/sshd_config.d").mkdir(parents=True)
        (payload / "etc/ssh/sshd_config.d/test-node.conf").write_text(SSHD_CONFIG)
        _world_readable(payload)
        return payload

    def _template_payload(self, payload: Path, repo: Path) -> Path:
        """Files copied into the template before setup, laid out as in the node's root."""
        shutil.copytree(repo / "debian", payload / "srv/repo/debian")
        shutil.copytree(repo / "debian-security", payload / "srv/repo/debian-security")
        keyring = payload / KEYRING_IN_NODE.lstrip("/")
        keyring.parent.mkdir(parents=True)
        shutil.copyfile(repo / "keyring.gpg", keyring)
        stable = sources_deb822(("bookworm",), ())
        full = sources_deb822(("bookworm", "bookworm-updates"), ("bookworm-security",))
        (payload / "etc/apt/sources.list.d").mkdir(parents=True)
        (payload / "etc/apt/sources.list.d/debian.sources").write_text(stable)
        (payload / "tmp").mkdir()
        (payload / "tmp/patchfleet-debian.sources").write_text(full)
        (payload / "etc/ssh/sshd_config.d").mkdir(parents=True)
        (payload / "etc/ssh/sshd_config.d/test-node.conf").write_text(SSHD_CONFIG)
        _world_readable(payload)
        return payload

    @staticmethod
    def _template_setup(variant: str) -> str:
        install = [p.name for p in PACKAGES if p.in_stable and p.manual]
        held = " ".join(HELD_PACKAGES)
        return "\n".join([
            # 1.0 from bookworm alone, then hold, then the other pockets: as on a real host
            # that was installed from the release and has not been patched since.
            "apt-get -q update",
            "apt-get -q -y --no-install-recommends install " + " ".join(install),
            f"apt-mark hold {held}",
            "mv /tmp/patchfleet-debian.sources /etc/apt/sources.list.d/debian.sources",
            "apt-get -q update",
            "apt-get -q clean",
            VARIANTS[variant].script,
        ])

    # -- namespaces -----------------------------------------------------------------------------

    def _run_setup(self, layout: _Layout, script: str, *, what: str,
                   payload: Path | None = None) -> None:
        """Run ``script`` as root inside the chroot, in a throw-away set of namespaces."""
        lines = [*layout.mount_lines()]
        if payload:
            lines.append(f"tar -C {_q(payload)} -cf - . | tar -C \"$R\" -xpf - --no-overwrite-dir")
        lines.append(f"chroot \"$R\" /usr/bin/env -i {_node_env()} /bin/sh -ec {_q(script)}")
        _run(["unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private",
              "/bin/bash", "-c", "\n".join(lines)], what=what, timeout=1800)

    # -- nodes ----------------------------------------------------------------------------------

    def _meta(self, name: str) -> dict[str, Any]:
        path = self.node_dir(name) / "node.json"
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise TestnodesError(f"no node {name!r} under {self.nodes_dir}; "
                                 f"create it with: start {name} --port PORT") from None

    def _save_meta(self, name: str, meta: dict[str, Any]) -> None:
        _write_atomic(self.node_dir(name) / "node.json", json.dumps(meta, indent=2) + "\n")

    def exists(self, name: str) -> bool:
        return (self.node_dir(name) / "node.json").exists()

    def names(self) -> list[str]:
        if not self.nodes_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.nodes_dir.glob("*/node.json"))

    def _layout(self, name: str, meta: dict[str, Any]) -> _Layout:
        d = self.node_dir(name)
        if meta["mode"] == "overlay":
            tpl = Path(meta["template_dir"])
            return _Layout(root=d / "root", upper=d / "upper", work=d / "work",
                           lowers=(tpl / "upper", Path(meta["base_dir"])))
        return _Layout(root=d / "root")

    def create(self, name: str, variant: str = "default",
               tags: dict[str, str] | None = None) -> None:
        """A new, stopped node: its own host key and machine id, and a fresh layer."""
        self._check_name(name)
        with self._state_lock():
            if self.exists(name):
                raise TestnodesError(f"node {name!r} already exists; destroy it first")
            hostkey = self.node_dir(name) / "hostkey"
            hostkey.mkdir(parents=True, mode=0o700)
            key = hostkey / "ssh_host_ed25519_key"
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                  "-f", str(key)], what="ssh-keygen (host key)")
            meta: dict[str, Any] = {
                "name": name, "variant": variant, "port": None, "tags": dict(tags or {}),
                "machine_id": uuid.uuid4().hex, "known_key": _pubkey(key),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            self._populate(name, meta)
            self.log(f"created node {name!r} (variant {variant})")

    def _populate(self, name: str, meta: dict[str, Any]) -> None:
        """(Re)make the node's writable layer from the current template of its variant."""
        variant = meta["variant"]
        template = self.ensure_template(variant)
        d = self.node_dir(name)
        for sub in ("upper", "work", "root"):
            _rmtree(d / sub)
        meta.update(template=self.template_stamp(variant), template_dir=str(template),
                    base_dir=str(self.base_dir(self.family(variant)) / "rootfs"), mode=self.mode)
        layout = self._layout(name, meta)
        if meta["mode"] == "copy":
            _run(["cp", "-a", str(template / "root"), str(layout.root)], what="cp -a template")
        layout.make_dirs()
        self._save_meta(name, meta)

    def _run_info(self, name: str) -> dict[str, int | float | str] | None:
        try:
            info = json.loads((self.node_dir(name) / "run.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid1 = int(info["pid1"])
        # The recorded pid could have been reused since: check it is still this node's sshd.
        if _pid_alive(pid1) and any("sshd" in a for a in _cmdline(pid1)[:1]):
            return dict(info)
        return None

    def pid(self, name: str) -> int | None:
        """Host pid of the node's PID 1 (its sshd), or None when the node is not running."""
        info = self._run_info(name)
        return int(info["pid1"]) if info else None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def port(self, name: str) -> int:
        port = self._meta(name).get("port")
        if not isinstance(port, int):
            raise TestnodesError(f"node {name!r} has never been started, so it has no port")
        return port

    def start(self, name: str, port: int | None = None, *, variant: str | None = None,
              tags: dict[str, str] | None = None, timeout: float = 30.0) -> int:
        """Start ``name`` (creating it first, as ``variant`` or ``default``) and return its port
        once sshd answers. ``port=None`` reuses the node's last port if free, else a free one."""
        self._check_name(name)
        if variant is not None:
            self._check_variant(variant)
        if os.geteuid() != 0:
            raise TestnodesError("test nodes need root (namespaces, mounts, chroot)")
        with self._state_lock():
            if port is not None and not self.is_running(name) and not port_is_free(port):
                raise TestnodesError(f"port {port} is in use (see `ss -ltnp`); "
                                     "pick another with --port")
            if not self.exists(name):
                self.create(name, variant or "default", tags)
            meta = self._meta(name)
            if variant is not None and variant != meta["variant"]:
                raise TestnodesError(f"node {name!r} was made as variant {meta['variant']!r}; "
                                     f"destroy it to remake it as {variant!r}")
            if tags:
                meta["tags"] = {**dict(meta.get("tags") or {}), **tags}
                self._save_meta(name, meta)
            running = self._run_info(name)
            if running:
                if port is not None and port != running["port"]:
                    raise TestnodesError(f"node {name!r} is already running on port "
                                         f"{running['port']}; stop it first")
                return int(running["port"])
            if meta.get("template") != self.template_stamp(meta["variant"]):
                self.log(f"node {name!r} was made from an older template: resetting its files")
                self._populate(name, meta)
            meta["port"] = self._launch_on_free_port(name, meta, port, timeout)
            self._save_meta(name, meta)
            self._write_known_hosts()
            return int(meta["port"])

    def _launch_on_free_port(self, name: str, meta: dict[str, Any], port: int | None,
                             timeout: float) -> int:
        """Launch on ``port``; or, if None, on the node's last port when free, else on a free
        one, trying another if someone grabs it between the check and sshd's bind."""
        if port is not None:
            try:
                self._launch(name, meta, port, timeout)
            except _PortTaken:
                raise TestnodesError(f"port {port} was taken while node {name!r} started; "
                                     "pick another with --port") from None
            return port
        last = meta.get("port")
        candidates = [last] if isinstance(last, int) and port_is_free(last) else []
        for _ in range(5):
            candidate = candidates.pop() if candidates else free_port()
            try:
                self._launch(name, meta, candidate, timeout)
            except _PortTaken:
                continue
            return candidate
        raise TestnodesError(f"node {name!r}: every port tried was taken while it started")

    def _reboot_shim(self) -> Path:
        path = self.state / "reboot-shim.sh"
        if not path.exists() or path.read_text() != REBOOT_SHIM:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, REBOOT_SHIM, 0o755)
        return path

    def _launch(self, name: str, meta: dict[str, Any], port: int, timeout: float,
                supervisor: int | None = None) -> None:
        """Start the node's namespaces on ``port`` and wait for sshd. A supervisor for in-node
        reboots is started with it, unless ``supervisor`` (the pid of the one restarting it)."""
        d = self.node_dir(name)
        layout = self._layout(name, meta)
        layout.make_dirs()
        boot_id = d / "boot_id"
        boot_id.write_text(str(uuid.uuid4()) + "\n")
        key = d / "hostkey" / "ssh_host_ed25519_key"
        hosts = (f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
        lines = [
            *layout.mount_lines(boot_id=boot_id),
            f"printf %s {_q(name)} > /proc/sys/kernel/hostname",
            # Identity is re-asserted at every boot, as cloud-init does on a cloud VM.
            f"printf '%s\\n' {_q(name)} > \"$R/etc/hostname\"",
            f"printf %s {_q(hosts)} > \"$R/etc/hosts\"",
            f"printf '%s\\n' {_q(meta['machine_id'])} > \"$R/etc/machine-id\"",
            f"install -m 600 {_q(key)} \"$R/etc/ssh/ssh_host_ed25519_key\"",
            f"install -m 644 {_q(str(key) + '.pub')} \"$R/etc/ssh/ssh_host_ed25519_key.pub\"",
            "install -d -m 700 \"$R/root/.ssh\"",
            f"install -m 600 {_q(str(self.ensure_client_key()) + '.pub')} "
            "\"$R/root/.ssh/authorized_keys\"",
            # reboot/shutdown/systemctl shims (never over a real binary a package installed).
            f"for t in {' '.join(REBOOT_SHIM_PATHS)}; do",
            f"  if [ ! -e \"$R/$t\" ] || grep -qs {_q(REBOOT_SHIM_MARKER)} \"$R/$t\"; then",
            f"    install -m 755 {_q(self._reboot_shim())} \"$R/$t\"",
            "  fi",
            "done",
            # Keeps /proc/1's inode (and so its mtime, dnf's idea of boot time) from node start.
            "(cd \"$R/proc/1\" && exec -a proc1-pin sleep infinity) &",
            "if [ -x \"$R/usr/libexec/fake-daemon\" ]; then",
            f"  chroot \"$R\" /usr/bin/env -i {_node_env()} /usr/libexec/fake-daemon infinity"
            " </dev/null >/dev/null 2>&1 &",
            "fi",
            f"exec chroot \"$R\" /usr/bin/env -i {_node_env()} /usr/sbin/sshd -D -e "
            f"-p {port} -o ListenAddress={LISTEN}",
        ]
        argv = ["unshare", "--uts", "--pid", "--mount", "--fork", "--kill-child",
                "--propagation", "private"]
        if timens_supported():
            # Boot time = node start: /proc/uptime and process start times restart from ~0.
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            argv[1:1] = ["--time", "--boottime", str(-max(0, int(uptime) - 1))]
        argv += ["/bin/bash", "-c", "\n".join(lines)]
        console = d / "console.log"
        with console.open("wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if self.tie_to_parent else None,
            )
        self._procs[name] = proc
        deadline = time.monotonic() + timeout
        pid1 = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = console.read_text(errors="replace")
                if "Address already in use" in text:
                    raise _PortTaken()
                tail = "\n".join(text.splitlines()[-15:])
                raise TestnodesError(f"node {name!r} exited while starting "
                                     f"(exit {proc.returncode}); {console}:\n{tail}")
            if pid1 is None:
                kids = _children(proc.pid)
                pid1 = kids[0] if kids else None
            # poll() again: a banner from someone else who took the port must not count
            if pid1 and _ssh_banner(port, timeout=1.0) and proc.poll() is None:
                if supervisor is None:
                    supervisor = self._spawn_supervisor(name, pid1)
                info = {"unshare_pid": proc.pid, "pid1": pid1, "port": port,
                        "started": time.time(),
                        "boot_id": boot_id.read_text().strip(),
                        "supervisor_pid": supervisor}
                _write_atomic(d / "run.json", json.dumps(info, indent=2) + "\n")
                return
            time.sleep(0.05)
        self._kill(proc.pid, pid1)
        raise TestnodesError(f"node {name!r}: sshd did not answer on port {port} within "
                             f"{timeout:.0f} s; see {console}")

    def _spawn_supervisor(self, name: str, pid1: int) -> int:
        """Start ``testnodes.py _supervise`` for a node whose PID 1 is ``pid1``; not waited for
        (the node is up already). It dies with whoever started the node when that is tied."""
        argv = [sys.executable, str(Path(__file__).resolve()), "--cache-dir", str(self.cache),
                "--state-dir", str(self.state), "_supervise", name, "--pid1", str(pid1)]
        with (self.node_dir(name) / "supervisor.log").open("ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if self.tie_to_parent else None,
            )
        self._procs[f"{name}/supervisor"] = proc
        return proc.pid

    def supervise(self, name: str, pid1: int) -> int:
        """The supervisor loop (``_supervise``): runs while the node does; restarts the node when
        a reboot is requested from inside it. The nodes it restarts are its children and die
        with it (``stop`` stops it first)."""
        self.tie_to_parent = True
        me = os.getpid()
        while _pid_alive(pid1):
            if (Path(f"/proc/{pid1}/root") / REBOOT_REQUEST).exists():
                time.sleep(REBOOT_DELAY)
                with self._state_lock():
                    info = self._run_info(name)
                    if not info or int(info["pid1"]) != pid1 or info.get("supervisor_pid") != me:
                        return 0  # stopped or restarted by someone else meanwhile
                    started = time.monotonic()
                    self._kill(int(info["unshare_pid"]), pid1)
                    try:
                        self._launch(name, self._meta(name), int(info["port"]), 30.0,
                                     supervisor=me)
                    except (TestnodesError, _PortTaken) as err:
                        self.log(f"{name}: in-node reboot failed to start the node again: {err}")
                        return 1
                    new = self._run_info(name)
                    if not new:
                        return 1
                    pid1 = int(new["pid1"])
                    self.log(f"{name}: rebooted from inside in "
                             f"{time.monotonic() - started:.2f} s (boot id {new['boot_id']})")
            time.sleep(SUPERVISE_POLL)
            self._reap()
        return 0

    def _stop_supervisor(self, pid: object) -> None:
        if not isinstance(pid, int) or not _pid_alive(pid) or pid == os.getpid():
            return
        if "_supervise" not in _cmdline(pid):  # pid reused by something else
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._reap()
            time.sleep(0.01)
        self._reap()

    def _kill(self, unshare_pid: int | None, pid1: int | None, timeout: float = 10.0) -> None:
        """Stop a node's namespace. Its PID 1 must be killed: unshare blocks SIGTERM while it
        waits, and the whole PID namespace dies with its PID 1."""
        if pid1 and _pid_alive(pid1):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for pid in (pid1, unshare_pid):  # unshare holds the mount namespace until it exits
            while pid and _pid_alive(pid):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self._reap()
                time.sleep(0.02)
        self._reap()

    def _reap(self) -> None:
        for name, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[name]

    def stop(self, name: str) -> bool:
        """Stop a node; False if it was not running. Its disk (upper dir) stays."""
        with self._state_lock():
            self._meta(name)
            info = self._run_info(name)
            run_json = self.node_dir(name) / "run.json"
            with contextlib.suppress(FileNotFoundError, ValueError):
                # first, so that it does not start the node again
                self._stop_supervisor(json.loads(run_json.read_text()).get("supervisor_pid"))
            if not info:
                run_json.unlink(missing_ok=True)
                return False
            self._kill(int(info["unshare_pid"]), int(info["pid1"]))
            run_json.unlink(missing_ok=True)
            return True

    def reboot(self, name: str, timeout: float = 30.0) -> int:
        """Stop and start again on the same port: /run is emptied (reboot-required goes), the
        boot id and uptime are new, the disk and host key stay."""
        with self._state_lock():
            meta = self._meta(name)
            self.stop(name)
            port = meta.get("port")
            return self.start(name, port if isinstance(port, int) else None, timeout=timeout)

    def reset(self, name: str) -> int | None:
        """Throw away everything done on the node since it was created (same name, port, host
        key); restart it if it was running. Returns the port if restarted."""
        with self._state_lock():
            meta = self._meta(name)
            was_running = self.stop(name)
            self._populate(name, meta)
            return self.start(name) if was_running else None

    def destroy(self, name: str) -> None:
        with self._state_lock():
            self._meta(name)
            self.stop(name)
            _rmtree(self.node_dir(name))
            self._write_known_hosts()

    def rekey(self, name: str, *, trust: bool = False) -> str:
        """Give the node a new host key (it keeps it across reboots). The fleet's known_hosts
        keeps the old key unless ``trust``: that is how a changed host key is tested."""
        with self._state_lock():
            meta = self._meta(name)
            hostkey = self.node_dir(name) / "hostkey"
            with tempfile.TemporaryDirectory(dir=hostkey) as tmp:
                new = Path(tmp) / "key"
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                      "-f", str(new)], what="ssh-keygen (host key)")
                new.replace(hostkey / "ssh_host_ed25519_key")
                Path(f"{new}.pub").replace(hostkey / "ssh_host_ed25519_key.pub")
            pub = _pubkey(hostkey / "ssh_host_ed25519_key")
            info = self._run_info(name)
            if info:
                pid1 = int(info["pid1"])
                etc = Path(f"/proc/{pid1}/root/etc/ssh")
                for suffix, mode in (("", 0o600), (".pub", 0o644)):
                    dest = etc / f"ssh_host_ed25519_key{suffix}"
                    shutil.copyfile(hostkey / f"ssh_host_ed25519_key{suffix}", dest)
                    dest.chmod(mode)
                os.kill(pid1, signal.SIGHUP)  # sshd re-execs itself and reloads its host keys
                self._wait_host_key(int(info["port"]), pub)
            if trust:
                meta["known_key"] = pub
                self._save_meta(name, meta)
                self._write_known_hosts()
            return pub

    def _wait_host_key(self, port: int, pub: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            scan = subprocess.run(["ssh-keyscan", "-T", "2", "-t", "ed25519", "-p", str(port),
                                   LISTEN], capture_output=True, text=True, check=False)
            if any(line.split()[1:3] == pub.split()[:2] for line in scan.stdout.splitlines()):
                return
            time.sleep(0.1)
        raise TestnodesError(f"sshd on port {port} did not pick up the new host key")

    def trust(self, name: str) -> None:
        """Record the node's current host key in the fleet's known_hosts."""
        with self._state_lock():
            meta = self._meta(name)
            meta["known_key"] = _pubkey(self.node_dir(name) / "hostkey/ssh_host_ed25519_key")
            self._save_meta(name, meta)
            self._write_known_hosts()

    def _write_known_hosts(self) -> None:
        lines = []
        for name in self.names():
            meta = self._meta(name)
            if isinstance(meta.get("port"), int) and meta.get("known_key"):
                lines.append(f"[{LISTEN}]:{meta['port']} {meta['known_key']}\n")
        _write_atomic(self.known_hosts, "".join(lines))

    def status(self) -> list[NodeStatus]:
        out = []
        for name in self.names():
            meta = self._meta(name)
            info = self._run_info(name)
            variant = meta["variant"]
            if info:
                state = "running"
            elif meta.get("template") != self.template_stamp(variant):
                state = "stale"
            else:
                state = "stopped"
            port = meta.get("port")
            out.append(NodeStatus(
                name=name, variant=variant, state=state,
                port=port if isinstance(port, int) else None,
                pid=int(info["pid1"]) if info else None,
                uptime=time.time() - float(info["started"]) if info else None,
            ))
        return out

    def inventory_yaml(self, names: Sequence[str]) -> str:
        """A patchfleet inventory for ``names`` (JSON scalars are valid YAML scalars)."""
        q = json.dumps
        lines = [
            "# Generated by testnodes/testnodes.py: patchfleet's real sshd test nodes.",
            "defaults:",
            "  user: root",
            f"  identity_file: {q(str(self.client_key))}",
            f"  known_hosts: {q(str(self.known_hosts))}",
            "  connect_timeout: 10",
            "nodes:",
        ]
        for name in names:
            meta = self._meta(name)
            if not isinstance(meta.get("port"), int):
                raise TestnodesError(f"node {name!r} has never been started, so it has no port")
            lines += [f"  - id: {q(name)}", f"    host: {LISTEN}", f"    port: {meta['port']}"]
            tags = dict(meta.get("tags") or {})
            if tags:
                lines.append("    tags: {" + ", ".join(f"{q(k)}: {q(v)}" for k, v in
                                                       sorted(tags.items())) + "}")
        return "\n".join(lines) + "\n"

    def write_inventory(self, path: str | Path, names: Sequence[str]) -> Path:
        path = Path(path)
        _write_atomic(path, self.inventory_yaml(names))
        return path

    # -- ssh ------------------------------------------------------------------------------------

    def ssh_argv(self, name: str, *, tty: bool = False) -> list[str]:
        """``ssh`` argv (without the remote command) that logs in as root with the client key and
        verifies the host key against the fleet's known_hosts. No user ssh config is read."""
        argv = [
            "ssh", "-F", "/dev/null", "-i", str(self.client_key), "-p", str(self.port(name)),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        ]
        return [*argv, "-tt" if tty else "-T", f"root@{LISTEN}"]

    def ssh(self, name: str, command: str, *, check: bool = False, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell string) on the node; returns stdout/stderr as text."""
        argv = [*self.ssh_argv(name), command]
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                                  timeout=timeout, stdin=None if input else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TestnodesError(f"{name}: {command!r} timed out after {timeout} s") from None
        if check and proc.returncode != 0:
            raise TestnodesError(f"{name}: {command!r} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc

    def close(self) -> None:
        """Reap node launchers this object started (nodes keep running unless tied)."""
        self._reap()


class _PortTaken(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where a root lives: ``root`` alone (a plain directory), or an overlay of ``upper`` over
    ``lowers`` (first is topmost) mounted on ``root`` inside the node's mount namespace only."""

    root: Path
    upper: Path | None = None
    work: Path | None = None
    lowers: tuple[Path, ...] = ()

    def make_dirs(self) -> None:
        for d in (self.root, self.upper, self.work):
            if d:
                d.mkdir(parents=True, exist_ok=True)
                d.chmod(0o755)

    def mount_lines(self, boot_id: Path | None = None) -> list[str]:
        """bash lines that mount the node's filesystems (in a fresh mount namespace)."""
        lines = ["set -e", f"R={_q(self.root)}"]
        if self.upper:
            lowers = ":".join(str(p) for p in self.lowers)
            opts = f"lowerdir={lowers},upperdir={self.upper},workdir={self.work}"
            lines.append(f'mount -t overlay overlay -o {_q(opts)} "$R"')
        lines += [
            'mount -t proc -o nosuid,nodev,noexec proc "$R/proc"',
            # Read-only /proc/sys: root in a node must not change the host's sysctls by accident.
            'mount --bind "$R/proc/sys" "$R/proc/sys"',
            'mount -o remount,bind,ro "$R/proc/sys"',
        ]
        if boot_id:
            # The kernel's boot_id is the host's and survives a namespace restart: give each
            # node boot its own.
            lines += [f'mount --bind {_q(boot_id)} "$R/proc/sys/kernel/random/boot_id"',
                      'mount -o remount,bind,ro "$R/proc/sys/kernel/random/boot_id"']
        lines += [
            'mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"',
            'mknod -m 666 "$R/dev/null" c 1 3; mknod -m 666 "$R/dev/zero" c 1 5',
            'mknod -m 666 "$R/dev/full" c 1 7; mknod -m 666 "$R/dev/random" c 1 8',
            'mknod -m 666 "$R/dev/urandom" c 1 9; mknod -m 666 "$R/dev/tty" c 5 0',
            'ln -s /proc/self/fd "$R/dev/fd"; ln -s pts/ptmx "$R/dev/ptmx"',
            'ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"',
            'ln -s /proc/self/fd/2 "$R/dev/stderr"',
            'mkdir "$R/dev/pts" "$R/dev/shm"',
            'mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"',
            'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"',
            # /run on tmpfs: a reboot empties it, as on a real host.
            'mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"',
            'mkdir -m 755 "$R/run/sshd"; mkdir -m 1777 "$R/run/lock"',
        ]
        return lines


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _node_env() -> str:
    return f"PATH={NODE_PATH} HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive"


def _pubkey(private_key: Path) -> str:
    """``ssh-ed25519 AAAA...`` of a key pair, without the comment."""
    return " ".join(Path(f"{private_key}.pub").read_text().split()[:2])


def sources_deb822(debian_suites: Sequence[str], security_suites: Sequence[str]) -> str:
    """The node's /etc/apt/sources.list.d/debian.sources, shaped like Debian 12's own."""
    stanzas = []
    for archive, suites in (("debian", debian_suites), ("debian-security", security_suites)):
        if suites:
            stanzas.append(
                f"Types: deb\nURIs: file:/srv/repo/{archive}\nSuites: {' '.join(suites)}\n"
                f"Components: main\nSigned-By: {KEYRING_IN_NODE}\n"
            )
    return "\n".join(stanzas)


# -- CLI ------------------------------------------------------------------------------------------


def _tags(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise TestnodesError(f"--tag {v!r}: use KEY=VALUE, e.g. --tag PatchGroup=web")
        out[key] = val
    return out


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="testnodes.py",
        description="Build and run patchfleet's test nodes: Debian (apt), Rocky 9 and Amazon "
                    "Linux 2023 (dnf), SLES 15 and Leap 15 (zypper); sshd on 127.0.0.1, root only.",
        epilog="variants: " + "; ".join(f"{k} = {v.description}" for k, v in VARIANTS.items()),
    )
    parser.add_argument("--cache-dir", help="built layers and client key (default "
                        "$PATCHFLEET_TESTNODES_DIR or " + DEFAULT_CACHE_DIR + ")")
    parser.add_argument("--state-dir", help="nodes and known_hosts (default "
                        "$PATCHFLEET_TESTNODES_STATE_DIR or the cache dir)")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="build base rootfs, repositories and templates (cached)")
    p.add_argument("--variant", action="append", choices=list(VARIANTS),
                   help="only this variant's template (repeatable; default: all)")
    p.add_argument("--force", action="store_true", help="rebuild every layer")
    p = sub.add_parser("start", help="start a node (creating it if needed)")
    p.add_argument("name")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: last one, or a free one)")
    p.add_argument("--variant", choices=list(VARIANTS),
                   help="scenario for a new node (default: default)")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="inventory tag, e.g. PatchGroup=web (repeatable)")
    for cmd, text in (("stop", "stop nodes"), ("reboot", "stop and start nodes on the same port"),
                      ("destroy", "stop nodes and delete their files"),
                      ("reset", "throw away changes made on nodes since they were created"),
                      ("trust", "record nodes' current host keys in known_hosts")):
        sub.add_parser(cmd, help=text).add_argument("names", nargs="+", metavar="NAME")
    p = sub.add_parser("rekey", help="give a node a new host key (known_hosts keeps the old one)")
    p.add_argument("name")
    p.add_argument("--trust", action="store_true", help="also put the new key in known_hosts")
    sub.add_parser("prune", help="delete cached layers of older versions no node uses")
    p = sub.add_parser("status", help="list nodes")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("inventory", help="write a patchfleet inventory YAML for nodes")
    p.add_argument("--out", required=True, help="file to write ('-' for stdout)")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every node")
    p = sub.add_parser("ssh", help="run a command on a node (interactive shell without one)")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("_supervise")  # internal: started with every node (see Fleet.supervise)
    p.add_argument("name")
    p.add_argument("--pid1", type=int, required=True)
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("testnodes: error: must run as root: test nodes need namespaces, mounts and "
              "chroot (try: sudo python3 testnodes/testnodes.py ...)", file=sys.stderr)
        return 2
    os.umask(0o022)
    fleet = Fleet(args.cache_dir, args.state_dir)
    try:
        return _dispatch(fleet, args)
    except TestnodesError as err:
        print(f"testnodes: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("testnodes: interrupted", file=sys.stderr)
        return 130


def _dispatch(fleet: Fleet, args: argparse.Namespace) -> int:
    if args.cmd == "build":
        started = time.monotonic()
        fleet.build(args.variant, force=args.force)
        fleet.log(f"build complete in {time.monotonic() - started:.1f} s (cache: {fleet.cache})")
    elif args.cmd == "prune":
        fleet.log(f"{len(fleet.prune())} stale layer(s) deleted")
    elif args.cmd == "start":
        started = time.monotonic()
        port = fleet.start(args.name, args.port, variant=args.variant, tags=_tags(args.tag))
        fleet.log(f"{args.name} is up on {LISTEN}:{port} ({time.monotonic() - started:.1f} s)")
        print(port)
    elif args.cmd in ("stop", "reboot", "destroy", "reset", "trust"):
        for name in args.names:
            started = time.monotonic()
            result = getattr(fleet, args.cmd)(name)
            extra = "" if args.cmd != "stop" or result else " (was not running)"
            fleet.log(f"{args.cmd} {name}: done in {time.monotonic() - started:.1f} s{extra}")
    elif args.cmd == "rekey":
        pub = fleet.rekey(args.name, trust=args.trust)
        fleet.log(f"{args.name} has a new host key{'' if args.trust else ' (not trusted)'}")
        print(pub)
    elif args.cmd == "status":
        rows = fleet.status()
        if args.json:
            print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        else:
            print(f"{'NAME':<16} {'VARIANT':<10} {'STATE':<8} {'PORT':>6} {'PID':>8}  UPTIME")
            for r in rows:
                print(f"{r.name:<16} {r.variant:<10} {r.state:<8} {r.port or '-':>6} "
                      f"{r.pid or '-':>8}  {_fmt_uptime(r.uptime)}")
    elif args.cmd == "inventory":
        text = fleet.inventory_yaml(args.names or fleet.names())
        if args.out == "-":
            sys.stdout.write(text)
        else:
            fleet.write_inventory(args.out, args.names or fleet.names())
            fleet.log(f"inventory written to {args.out}")
    elif args.cmd == "_supervise":
        return fleet.supervise(args.name, args.pid1)
    elif args.cmd == "ssh":
        argv = fleet.ssh_argv(args.name, tty=not args.command and sys.stdin.isatty())
        # Words are joined as ssh itself does, so `ssh deb-a 'dpkg -l | grep fake'` works.
        return subprocess.call([*argv, *([" ".join(args.command)] if args.command else [])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
