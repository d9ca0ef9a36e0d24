#!/usr/bin/env python3
"""Fleet simulator: one asyncssh process that answers as thousands of SSH nodes on loopback.

Every node has its own port (``--base-port`` + i on 127.0.0.1) and its own ed25519 host key, and
answers each exec'd command with what a real machine printed for it: the golden captures under
``tests/golden/<family>/<case>/`` (``<probe>.stdout``, ``.stderr``, ``.exit``, ``.cmd``). A sent
command is matched to a probe by the probe's command text (taken from the ``.cmd`` files, with
the ``env VAR=...`` prefix, quoting and whitespace normalised away), so wrappers the product adds
(``timeout -k 5 602 ...``, ``sudo``, ``sh -c``) do not matter; the longest matching probe text
wins (``apt-cache policy`` is inside ``... | xargs -r apt-cache policy``). ``apt-cache show
name=version ...`` is answered with exactly the requested stanzas of the capture.

Profiles (``--mix``): any case folder name under tests/golden, e.g. ``debian12-host`` (a real
Debian 12 host, ~735 packages: the realistic one), ``debian12-fresh``, ``rocky9-fresh``,
``sles15-fresh``. Per node: a distinct boot id (and, on rpm nodes, the current clock), and one
of ``--variants`` precomputed variants of the package listings in which a few packages that no
update touches carry a different version, so that nodes are not byte-identical. No probe prints
the hostname in these captures, so there is none to vary. Capture bytes are shared by all nodes
(memory does not grow with the reply size times the node count).

Faults on a fraction of nodes (``--faults refused=0.01,hang=0.01,...``, or exact counts with
``--fault-nodes``): ``refused`` (port not listening), ``hang`` (authenticates, accepts the
command, never answers), ``slow`` (``--slow-ms`` more per command), ``garbage`` (unparseable
output for the package-listing probe, or ``--garbage-probe``), ``auth`` (the client key is
rejected). ``--latency-ms`` delays every answer.

Before it listens the simulator raises RLIMIT_NOFILE. Once every port listens it writes the
fleet's files into ``--workdir``: ``known_hosts``, ``inventory.yaml`` (patchfleet inventory,
user root, the ed25519 client key ``client_ed25519``), ``fleet.json`` (node -> port, profile,
variant, fault), then the ``--ready-file`` (JSON) and prints ``READY ...`` on stdout. Host keys
and the client key are generated once and cached in the work dir. SIGUSR1 makes every worker
write its counters to ``<workdir>/stats/worker-<n>.json``; SIGTERM/SIGINT stop it.

    python benchmarks/fleet_sim.py --nodes 1000 --workdir /tmp/fleet \\
        --mix debian12-host=80,rocky9-fresh=10,sles15-fresh=10 --faults refused=0.01,hang=0.01

Only the standard library and asyncssh are used (no patchfleet import).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import resource
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import asyncssh

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
HOST = "127.0.0.1"
FAULTS = ("refused", "hang", "slow", "garbage", "auth")
LISTING_PROBES = ("dpkg-query", "rpm-query")
# Probes whose arguments depend on the node: matched on the text up to these words.
ARGUMENTS_AFTER = {"apt-cache-show": "apt-cache show", "zypper-patch-info": "info -t patch"}
ENCRYPTION_ALGS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                   "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"]
KEY_END = "-----END OPENSSH PRIVATE KEY-----\n"
LOW_PORT_RANGE = (20000, 32767)     # below Linux's default ephemeral range (32768-60999)
HIGH_PORT_RANGE = (61000, 65535)

log = logging.getLogger("fleet_sim")


# ------------------------------------------------------------------------------------------------
# Captures and command matching
# ------------------------------------------------------------------------------------------------

_ENV_PREFIX = re.compile(r"^\s*env\s+(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*")
_QUOTES = str.maketrans("", "", "'\"\\")


def normalize(command: str) -> str:
    """Quotes and backslashes dropped, whitespace runs collapsed: quoting-independent text."""
    return " ".join(command.translate(_QUOTES).split())


def probe_core(cmd_text: str) -> str:
    """A captured ``.cmd`` without its leading ``env VAR=VALUE ...``, normalised."""
    return normalize(_ENV_PREFIX.sub("", cmd_text, count=1))


def load_signatures(golden: Path = GOLDEN) -> dict[str, str]:
    """Probe name -> the normalised command text that identifies it in a sent command.

    From every ``.cmd`` file of every case: when a probe's command differs between cases (its
    arguments depend on the node, e.g. ``apt-cache show NAME=VERSION...``), the common prefix
    cut back to a word boundary."""
    cores: dict[str, set[str]] = {}
    for path in sorted(golden.glob("*/*/*.cmd")):
        cores.setdefault(path.stem, set()).add(probe_core(path.read_text()))
    out: dict[str, str] = {}
    for name, texts in cores.items():
        if len(texts) == 1:
            sig = next(iter(texts))
        else:
            sig = os.path.commonprefix(sorted(texts))  # noqa: RUF071 (characters, not paths)
            if any(t != sig for t in texts):
                cut = sig.rfind(" ")
                sig = sig[:cut] if cut > 0 else sig
        marker = ARGUMENTS_AFTER.get(name)
        if marker and marker in sig:
            sig = sig[: sig.index(marker) + len(marker)]
        sig = sig.strip()
        if len(sig) >= 6:
            out[name] = sig
        else:
            log.warning("probe %s: no usable command text (%r); it will not be recognised",
                        name, sig)
    return out


class Matcher:
    """Maps a sent command to a probe name, with a bounded cache: the longest probe text found
    in the command; failing that, the probe most of whose words the command has (>= 80 %, so
    that a changed option value such as ``DPkg::Lock::Timeout=30`` still matches)."""

    CACHE_MAX = 8192

    def __init__(self, signatures: dict[str, str]) -> None:
        self.signatures = signatures
        self._items = sorted(signatures.items(), key=lambda kv: -len(kv[1]))
        self._cache: dict[str, str | None] = {}

    def probe(self, command: str) -> str | None:
        try:
            return self._cache[command]
        except KeyError:
            pass
        text = normalize(command)
        found = None
        for name, sig in self._items:
            if sig in text:
                found = name
                break
        else:
            words = set(text.split(" "))
            best, best_score = None, 0.0
            for name, sig in self._items:
                sig_words = sig.split(" ")
                score = sum(w in words for w in sig_words) / len(sig_words)
                if score > best_score:
                    best, best_score = name, score
            if best_score >= 0.8:
                found = best
        if len(self._cache) < self.CACHE_MAX:
            self._cache[command] = found
        return found


@dataclass(frozen=True, slots=True)
class Reply:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int = 0


def find_case(name: str, golden: Path = GOLDEN) -> Path:
    """The golden case folder called ``name`` (``debian12-host``) or ``family/name``."""
    direct = golden / name
    if "/" in name and direct.is_dir():
        return direct
    hits = sorted(p for p in golden.glob(f"*/{name}") if p.is_dir())
    if len(hits) > 1:  # e.g. post/debian12-fresh (post-install probes) beside apt/debian12-fresh
        hits = [p for p in hits if any((p / f"{x}.stdout").exists() for x in LISTING_PROBES)]
    if not hits:
        known = sorted({p.parent.name for p in golden.glob("*/*/*.stdout")})
        raise SystemExit(f"fleet_sim: no golden case {name!r} under {golden}; known: "
                         f"{', '.join(known)}")
    if len(hits) > 1:
        raise SystemExit(f"fleet_sim: case {name!r} is ambiguous: {hits}; use family/name")
    return hits[0]


def post_case_for(case: Path, golden: Path = GOLDEN) -> Path | None:
    """The post-install captures (``golden/post/``: /proc maps, needrestart, auto-updaters) to
    answer a scan's post-state probes on a node of ``case``: the case of the same name, else
    ``<os>-fresh``, else any case of the same OS (``debian12``, ``rocky9``, ``sles15``)."""
    post = golden / "post"
    if not post.is_dir():
        return None
    if (post / case.name).is_dir():
        return post / case.name
    os_name = case.name.split("-", 1)[0]
    if (post / f"{os_name}-fresh").is_dir():
        return post / f"{os_name}-fresh"
    same = sorted(p for p in post.glob(f"{os_name}-*") if p.is_dir())
    return same[0] if same else None


def load_replies(case: Path) -> dict[str, Reply]:
    parts: dict[str, dict[str, Path]] = {}
    for f in case.iterdir():
        if f.is_file() and f.suffix in (".stdout", ".stderr", ".exit"):
            parts.setdefault(f.stem, {})[f.suffix] = f
    out = {}
    for name, files in parts.items():
        exit_text = files[".exit"].read_text().strip() if ".exit" in files else ""
        out[name] = Reply(
            stdout=files[".stdout"].read_bytes() if ".stdout" in files else b"",
            stderr=files[".stderr"].read_bytes() if ".stderr" in files else b"",
            exit_status=int(exit_text or "0"),
        )
    if not out:
        raise SystemExit(f"fleet_sim: {case} holds no captures")
    return out


_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9+._-]+")


class Profile:
    """One golden case, ready to answer: shared reply bytes plus a few precomputed variants."""

    def __init__(self, name: str, case: Path, variants: int, seed: int,
                 garbage_probe: str | None) -> None:
        self.name = name
        self.case = case
        self.family = case.parent.name
        self.post_case = post_case_for(case)
        self.replies = load_replies(self.post_case) if self.post_case else {}
        self.replies.update(load_replies(case))
        self.listing = next((p for p in LISTING_PROBES if p in self.replies), None)
        self.garbage_probe = garbage_probe or self.listing or max(
            self.replies, key=lambda p: len(self.replies[p].stdout))
        self.garbage = Reply(
            stdout=(f"%%PFSIM-GARBAGE%% this is not {self.garbage_probe} output\n"
                    "<<<< ???? >>>> 0xDEADBEEF\n" * 3).encode(),
            exit_status=0,
        )
        self._show_index = self._index_show(self.replies.get("apt-cache-show"))
        self._show_cache: dict[str, Reply] = {}
        self.variants: list[dict[str, Reply]] = [{}]
        self.varied: list[list[str]] = [[]]
        if variants > 1:
            self._make_variants(variants, seed)
        boot = self.replies.get("apt-reboot") or self.replies.get("rpm-boot")
        self._boot_rest = boot.stdout.split(b"\n", 1)[1] if boot and b"\n" in boot.stdout else b""

    # -- apt-cache show: answer exactly the stanzas asked for ---------------------------------

    @staticmethod
    def _index_show(reply: Reply | None) -> dict[tuple[bytes, bytes], list[bytes]]:
        index: dict[tuple[bytes, bytes], list[bytes]] = {}
        if reply is None:
            return index
        for stanza in re.split(rb"(?<=\n\n)(?=Package: )", reply.stdout):
            pkg = re.search(rb"^Package: (\S+)$", stanza, re.M)
            ver = re.search(rb"^Version: (\S+)$", stanza, re.M)
            if pkg and ver:
                index.setdefault((pkg.group(1), ver.group(1)), []).append(stanza)
        return index

    def show(self, command: str) -> Reply:
        hit = self._show_cache.get(command)
        if hit is not None:
            return hit
        full = self.replies["apt-cache-show"]
        words = normalize(command).split(" ")
        try:
            args = words[words.index("show", words.index("apt-cache")) + 1:]
        except ValueError:
            args = []
        chunks: list[bytes] = []
        for arg in args:
            name, sep, version = arg.partition("=")
            if sep:
                chunks.extend(self._show_index.get((name.encode(), version.encode()), ()))
        reply = Reply(stdout=b"".join(chunks), stderr=full.stderr,
                      exit_status=full.exit_status) if chunks else full
        if len(self._show_cache) < 256:
            self._show_cache[command] = reply
        return reply

    # -- per-node values ----------------------------------------------------------------------

    def boot_reply(self, probe: str, boot_id: bytes) -> Reply:
        base = self.replies[probe]
        if probe == "rpm-boot":
            # boot id, /proc/uptime (as captured), the node's clock: now.
            uptime = self._boot_rest.split(b"\n", 1)[0]
            out = b"%s\n%s\n%d\n" % (boot_id, uptime, int(time.time()))
        else:
            out = boot_id + b"\n" + self._boot_rest
        return Reply(stdout=out, stderr=base.stderr, exit_status=base.exit_status)

    # -- variants: a few packages no update touches get another version -----------------------

    def _untouched_names(self) -> set[str]:
        """Names that appear in no probe output but the package listings."""
        mentioned: set[str] = set()
        for probe, reply in self.replies.items():
            if probe in (self.listing, "apt-cache-policy-installed"):
                continue
            mentioned.update(_TOKEN_SPLIT.split(reply.stdout.decode("utf-8", "replace")))
        return mentioned

    def _make_variants(self, count: int, seed: int) -> None:
        if self.listing == "dpkg-query" and "apt-cache-policy-installed" in self.replies:
            make = self._apt_variant
        elif self.listing == "rpm-query":
            make = self._rpm_variant
        else:
            return
        mentioned = self._untouched_names()
        lines = self.replies[self.listing].stdout.decode().splitlines(keepends=True)
        blocks: list[str] = []
        block_at: dict[str, int] = {}
        if make == self._apt_variant:
            text = self.replies["apt-cache-policy-installed"].stdout.decode()
            blocks = re.split(r"(?m)^(?=\S)", text)
            for i, b in enumerate(blocks):
                if b.endswith(":\n") or ":\n" in b:
                    block_at.setdefault(b.split(":\n", 1)[0], i)
        candidates = []
        for i, line in enumerate(lines):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 5 or fields[0] in mentioned or fields[0] == "gpg-pubkey":
                continue
            if make == self._apt_variant:
                j = block_at.get(fields[0])
                if j is None or not _single_version_block(blocks[j], fields[2]):
                    continue
                candidates.append((i, j))
            else:
                candidates.append((i, -1))
        if not candidates:
            return
        for k in range(1, count):
            rng = random.Random(seed * 7919 + k)
            picks = rng.sample(candidates, min(3, len(candidates)))
            overrides, names = make(k, picks, lines, blocks)
            self.variants.append(overrides)
            self.varied.append(names)

    def _apt_variant(self, k: int, picks: list[tuple[int, int]], lines: list[str],
                     blocks: list[str]) -> tuple[dict[str, Reply], list[str]]:
        new_lines = list(lines)
        new_blocks = list(blocks)
        names = []
        for i, j in picks:
            fields = lines[i].rstrip("\n").split("\t")
            old = fields[2]
            new = f"{old}+pfsim{k}"
            if fields[4] == old:
                fields[4] = new
            fields[2] = new
            new_lines[i] = "\t".join(fields) + "\n"
            new_blocks[j] = (blocks[j].replace(f"  Installed: {old}\n", f"  Installed: {new}\n")
                             .replace(f"  Candidate: {old}\n", f"  Candidate: {new}\n")
                             .replace(f" *** {old} ", f" *** {new} "))
            names.append(f"{fields[0]}={new}")
        dq, pol = self.replies["dpkg-query"], self.replies["apt-cache-policy-installed"]
        return {
            "dpkg-query": Reply("".join(new_lines).encode(), dq.stderr, dq.exit_status),
            "apt-cache-policy-installed": Reply("".join(new_blocks).encode(), pol.stderr,
                                                pol.exit_status),
        }, names

    def _rpm_variant(self, k: int, picks: list[tuple[int, int]], lines: list[str],
                     blocks: list[str]) -> tuple[dict[str, Reply], list[str]]:
        new_lines = list(lines)
        names = []
        for i, _ in picks:
            fields = lines[i].rstrip("\n").split("\t")
            fields[3] = f"{fields[3]}.pfsim{k}"
            new_lines[i] = "\t".join(fields) + "\n"
            names.append(f"{fields[0]}-{fields[2]}-{fields[3]}")
        rq = self.replies["rpm-query"]
        return {"rpm-query": Reply("".join(new_lines).encode(), rq.stderr, rq.exit_status)}, names


def _single_version_block(block: str, version: str) -> bool:
    """An apt-cache policy block with one version, installed and candidate."""
    versions = [ln for ln in block.splitlines() if re.match(r"^ (\*\*\*| {3}) \S+ \d+$", ln)]
    return (len(versions) == 1 and versions[0].startswith(f" *** {version} ")
            and f"  Installed: {version}\n" in block and f"  Candidate: {version}\n" in block)


# ------------------------------------------------------------------------------------------------
# The fleet: which node is what
# ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    index: int
    id: str
    profile: Profile
    variant: int
    fault: str | None
    boot_id: bytes
    delay: float = 0.0
    port: int = 0


def parse_weights(text: str, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if not text or text == "none":
        return out
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"fleet_sim: {what}: expected NAME=NUMBER, got {part!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"fleet_sim: {what}: {value!r} is not a number") from None
    return out


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer counts proportional to ``weights`` summing to ``total`` (largest remainder)."""
    s = sum(weights.values())
    if s <= 0:
        raise SystemExit("fleet_sim: --mix weights must be positive")
    exact = {k: total * w / s for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    rest = total - sum(counts.values())
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[:rest]:
        counts[k] += 1
    return counts


def build_nodes(args: argparse.Namespace, profiles: dict[str, Profile]) -> list[Node]:
    n = args.nodes
    rng = random.Random(args.seed)
    mix = apportion(n, parse_weights(args.mix, "--mix"))
    kinds = [name for name, c in mix.items() for _ in range(c)]
    rng.shuffle(kinds)
    faults: list[str | None] = [None] * n
    fault_counts: dict[str, int] = {}
    for name, frac in parse_weights(args.faults, "--faults").items():
        fault_counts[name] = round(frac * n) if frac < 1 else int(frac)
    for name, count in parse_weights(args.fault_nodes, "--fault-nodes").items():
        fault_counts[name] = int(count)
    for name in fault_counts:
        if name not in FAULTS:
            raise SystemExit(f"fleet_sim: unknown fault {name!r}; known: {', '.join(FAULTS)}")
    if sum(fault_counts.values()) > n:
        raise SystemExit("fleet_sim: more faulty nodes than nodes")
    # Faults spread over the fleet (not all at the end), deterministic for a seed.
    order = list(range(n))
    random.Random(args.seed + 1).shuffle(order)
    pos = 0
    for name in FAULTS:
        for _ in range(fault_counts.get(name, 0)):
            faults[order[pos]] = name
            pos += 1
    nodes = []
    width = max(5, len(str(n - 1)))
    for i in range(n):
        prof = profiles[kinds[i]]
        boot = uuid.UUID(int=random.Random(f"{args.seed}-boot-{i}").getrandbits(128), version=4)
        delay = args.latency_ms / 1000.0
        if faults[i] == "slow":
            delay += args.slow_ms / 1000.0
        nodes.append(Node(
            index=i,
            id=f"{args.id_prefix}{i:0{width}d}",
            profile=prof,
            variant=(i % len(prof.variants)),
            fault=faults[i],
            boot_id=str(boot).encode(),
            delay=delay,
        ))
    return nodes


# ------------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------------


def host_keys(workdir: Path, count: int) -> list[asyncssh.SSHKey]:
    """``count`` ed25519 host keys, generated once and cached in ``workdir/host_keys``."""
    path = workdir / "host_keys"
    chunks: list[str] = []
    if path.exists():
        chunks = [c + KEY_END for c in path.read_text().split(KEY_END) if c.strip()]
    keys = [asyncssh.import_private_key(c) for c in chunks[:count]]
    if len(keys) < count:
        new = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(count - len(keys))]
        with path.open("ab") as fh:
            for k in new:
                fh.write(k.export_private_key())
        os.chmod(path, 0o600)
        keys.extend(new)
    return keys


def client_key(workdir: Path, authorized: str | None,
               identity: str | None) -> tuple[asyncssh.SSHKey, str]:
    """The public key the nodes accept, and the identity file the inventory names."""
    if authorized:
        pub = asyncssh.read_public_key(authorized)
        ident = identity or (authorized[:-4] if authorized.endswith(".pub") else "")
        if not ident or not Path(ident).exists():
            raise SystemExit("fleet_sim: --authorized-key needs --identity-file (the private key "
                             "the inventory gives the client)")
        return pub, str(Path(ident).resolve())
    priv = workdir / "client_ed25519"
    if not priv.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="fleet_sim client")
        tmp = priv.with_suffix(".tmp")
        key.write_private_key(str(tmp))
        os.chmod(tmp, 0o600)
        key.write_public_key(str(priv) + ".pub")
        os.replace(tmp, priv)
    return asyncssh.read_public_key(str(priv) + ".pub"), str(priv.resolve())


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    target = hard if hard != resource.RLIM_INFINITY else wanted
    if target < wanted:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ------------------------------------------------------------------------------------------------
# The SSH side (one worker process serves every K-th node)
# ------------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, number: int, nodes: list[Node], keys: list[asyncssh.SSHKey],
                 client_pub: asyncssh.SSHKey, matcher: Matcher, stats_dir: Path) -> None:
        self.number = number
        self.nodes = nodes
        self.keys = keys
        self.client_pub = client_pub.public_data
        self.matcher = matcher
        self.stats_dir = stats_dir
        self.listeners: list[Any] = []
        self.stats: dict[str, Any] = {
            "worker": number, "nodes": len(nodes), "connections": 0, "auth_ok": 0,
            "auth_rejected": 0, "sessions": 0, "commands": 0, "hung": 0, "unknown": 0,
            "bytes_out": 0, "by_probe": {}, "unknown_samples": [], "pid": os.getpid(),
        }

    def reply(self, node: Node, command: str) -> Reply:
        st = self.stats
        probe = self.matcher.probe(command)
        prof = node.profile
        if probe is None or probe not in prof.replies:
            st["unknown"] += 1
            if len(st["unknown_samples"]) < 5:
                st["unknown_samples"].append([prof.name, probe, command[:300]])
            what = f"probe {probe}" if probe else "this command"
            return Reply(b"", f"pfsim: {prof.name} has no capture for {what}\n".encode(), 127)
        by = st["by_probe"]
        by[probe] = by.get(probe, 0) + 1
        if node.fault == "garbage" and probe == prof.garbage_probe:
            return prof.garbage
        if probe in ("apt-reboot", "rpm-boot"):
            return prof.boot_reply(probe, node.boot_id)
        if probe == "apt-cache-show":
            return prof.show(command)
        return prof.variants[node.variant].get(probe) or prof.replies[probe]

    async def start(self, chunk: int = 400) -> None:
        todo = [n for n in self.nodes if n.fault != "refused"]
        for i in range(0, len(todo), chunk):
            batch = todo[i:i + chunk]
            self.listeners.extend(await asyncio.gather(*(self._listen(n) for n in batch)))

    async def _listen(self, node: Node) -> Any:
        return await asyncssh.listen(
            HOST, node.port,
            server_factory=partial(SimServer, self, node),
            server_host_keys=[self.keys[node.index]],
            encoding=None,
            encryption_algs=ENCRYPTION_ALGS,
            allow_scp=False,
            x11_forwarding=False,
            agent_forwarding=False,
            allow_pty=False,
            reuse_address=True,
            backlog=128,
        )

    def dump_stats(self) -> None:
        self.stats["dumped_at"] = time.time()
        self.stats["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.stats["cpu_s"] = ru.ru_utime + ru.ru_stime
        path = self.stats_dir / f"worker-{self.number}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats, indent=1))
        os.replace(tmp, path)

    async def close(self) -> None:
        for lst in self.listeners:
            lst.close()


class SimServer(asyncssh.SSHServer):
    def __init__(self, worker: Worker, node: Node) -> None:
        self._w = worker
        self._node = node

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._w.stats["connections"] += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = self._node.fault != "auth" and key.public_data == self._w.client_pub
        self._w.stats["auth_ok" if ok else "auth_rejected"] += 1
        return ok

    def session_requested(self) -> SimSession:
        self._w.stats["sessions"] += 1
        return SimSession(self._w, self._node)


class SimSession(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    __slots__ = ("_chan", "_cmd", "_node", "_w")

    def __init__(self, worker: Worker, node: Node) -> None:
        self._w = worker
        self._node = node
        self._chan: Any = None
        self._cmd: str | None = None

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def connection_lost(self, exc: Exception | None) -> None:
        self._chan = None

    def pty_requested(self, *args: Any) -> bool:
        return False

    def shell_requested(self) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        self._cmd = command
        return True

    def eof_received(self) -> bool:
        return True  # stay half-open: the client sends EOF at once, the answer may come later

    def session_started(self) -> None:
        node = self._node
        self._w.stats["commands"] += 1
        if node.fault == "hang":
            self._w.stats["hung"] += 1
            return  # accepted, never answered
        if node.delay > 0:
            asyncio.get_running_loop().call_later(node.delay, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        chan = self._chan
        if chan is None or self._cmd is None:
            return
        r = self._w.reply(self._node, self._cmd)
        try:
            if r.stdout:
                chan.write(r.stdout)
            if r.stderr:
                chan.write_stderr(r.stderr)
            chan.exit(r.exit_status)
        except (OSError, asyncssh.Error):  # the client went away meanwhile
            return
        self._w.stats["bytes_out"] += len(r.stdout) + len(r.stderr)


def run_worker(worker: Worker, report_fd: int) -> None:
    """Child process: listen on this worker's ports, report, serve until SIGTERM."""
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    worker.stats["pid"] = os.getpid()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, worker.dump_stats)
        try:
            await worker.start()
        except OSError as exc:
            m = re.search(r"'127\.0\.0\.1', (\d+)", str(exc))
            port = int(m.group(1)) if m else 0
            os.write(report_fd, f"FAIL {exc.errno or 0} {port} {exc}\n".encode())
            return
        os.write(report_fd, b"OK\n")
        await stop.wait()
        worker.dump_stats()
        await worker.close()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------
# Ports, files, the parent process
# ------------------------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_base(count: int, start: int | None = None) -> int:
    """The lowest base port >= ``start`` with ``count`` free consecutive ports on 127.0.0.1,
    below the ephemeral range when possible."""
    for lo, hi in (LOW_PORT_RANGE, HIGH_PORT_RANGE):
        base = max(lo, start or lo)
        while base + count - 1 <= hi:
            bad = next((p for p in range(base, base + count) if not port_free(p)), None)
            if bad is None:
                return base
            base = bad + 1
    raise SystemExit(f"fleet_sim: no {count} consecutive free ports on {HOST}")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def known_hosts_text(nodes: Iterable[Node], keys: list[asyncssh.SSHKey]) -> str:
    lines = []
    for n in nodes:
        pub = keys[n.index].export_public_key("openssh").decode().split()
        lines.append(f"[{HOST}]:{n.port} {pub[0]} {pub[1]}\n")
    return "".join(lines)


def inventory_text(nodes: Iterable[Node], args: argparse.Namespace, identity: str,
                   known_hosts: Path) -> str:
    out = [
        "# written by benchmarks/fleet_sim.py\n",
        "defaults:\n",
        "  user: root\n",
        f"  identity_file: {json.dumps(identity)}\n",
        f"  known_hosts: {json.dumps(str(known_hosts))}\n",
        f"  connect_timeout: {args.connect_timeout:g}\n",
        f"  command_timeout: {args.command_timeout:g}\n",
        "nodes:\n",
    ]
    for n in nodes:
        out.append(f"  - {{id: {n.id}, host: {HOST}, port: {n.port}, tags: {{SimProfile: "
                   f"{n.profile.name}, SimFault: {n.fault or 'none'}}}}}\n")
    return "".join(out)


def manifest(nodes: list[Node], profiles: dict[str, Profile], args: argparse.Namespace,
             paths: dict[str, str], base: int) -> dict[str, Any]:
    return {
        "version": 1,
        "base_port": base,
        "host": HOST,
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "slow_ms": args.slow_ms,
        **paths,
        "profiles": {
            name: {"case": str(p.case), "post_case": str(p.post_case or ""),
                   "family": p.family, "garbage_probe": p.garbage_probe, "variants": p.varied}
            for name, p in profiles.items()
        },
        "nodes": [
            {"id": n.id, "port": n.port, "profile": n.profile.name, "variant": n.variant,
             "fault": n.fault, "boot_id": n.boot_id.decode()}
            for n in nodes
        ],
    }


class Parent:
    def __init__(self) -> None:
        self.children: dict[int, int] = {}
        self.stopping = False

    def forward(self, signum: int, _frame: Any = None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    def spawn(self, workers: list[Worker]) -> list[str]:
        """Fork one child per worker; the list of their first report lines."""
        reads = []
        for w in workers:
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    os.close(r)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                        signal.signal(sig, signal.SIG_DFL)
                    run_worker(w, wfd)
                except BaseException as exc:  # report and leave without running parent code
                    with contextlib.suppress(OSError):
                        os.write(wfd, f"FAIL 0 0 {exc!r}\n".encode())
                    code = 1
                finally:
                    os._exit(code)
            os.close(wfd)
            self.children[pid] = w.number
            reads.append(r)
        lines = []
        for r in reads:
            with os.fdopen(r, "rb") as fh:
                lines.append(fh.readline().decode().strip() or "FAIL 0 0 worker exited")
        return lines

    def stop_all(self) -> None:
        self.forward(signal.SIGTERM)
        while self.children:
            pid, _ = os.wait()
            self.children.pop(pid, None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--workdir", required=True, help="keys, inventory, known_hosts, fleet.json")
    p.add_argument("--mix", default="debian12-host=100",
                   help="profile weights, e.g. debian12-host=80,rocky9-fresh=10,sles15-fresh=10")
    p.add_argument("--faults", default="none",
                   help="fractions (or counts if >= 1): refused=0.01,hang=0.01,slow=0.01,"
                        "garbage=0.01,auth=0.01")
    p.add_argument("--fault-nodes", default="", help="exact counts: refused=2,hang=1 ...")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    p.add_argument("--slow-ms", type=float, default=2000.0, help="extra delay on 'slow' nodes")
    p.add_argument("--garbage-probe", default=None,
                   help="probe answered with garbage on 'garbage' nodes (default: the package "
                        "listing, dpkg-query or rpm-query)")
    p.add_argument("--variants", type=int, default=16,
                   help="precomputed package-version variants per profile (1: all identical)")
    p.add_argument("--base-port", default="auto", help="first port, or 'auto' (free range)")
    p.add_argument("--workers", type=int, default=1, help="server processes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--id-prefix", default="sim-")
    p.add_argument("--authorized-key", default=None,
                   help="client public key to accept (default: workdir/client_ed25519.pub, "
                        "generated)")
    p.add_argument("--identity-file", default=None, help="private key named in the inventory")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="written to the inventory")
    p.add_argument("--command-timeout", type=float, default=600.0, help="written to the inventory")
    p.add_argument("--inventory", default=None, help="default: workdir/inventory.yaml")
    p.add_argument("--known-hosts", default=None, help="default: workdir/known_hosts")
    p.add_argument("--ready-file", default=None, help="default: workdir/ready.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="fleet_sim: %(message)s", stream=sys.stderr)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    args = parse_args(argv)
    t0 = time.perf_counter()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stats_dir = workdir / "stats"
    stats_dir.mkdir(exist_ok=True)
    for old in stats_dir.glob("worker-*.json"):
        old.unlink()
    ready = Path(args.ready_file) if args.ready_file else workdir / "ready.json"
    ready.unlink(missing_ok=True)
    inventory = Path(args.inventory) if args.inventory else workdir / "inventory.yaml"
    known = Path(args.known_hosts) if args.known_hosts else workdir / "known_hosts"
    nofile = raise_nofile(args.nodes + 1024)
    if nofile < args.nodes // max(1, args.workers) + 256:
        log.warning("open-file limit %d is low for %d nodes", nofile, args.nodes)

    mix = parse_weights(args.mix, "--mix")
    profiles = {name: Profile(name, find_case(name), args.variants, args.seed, args.garbage_probe)
                for name in mix}
    matcher = Matcher(load_signatures())
    nodes = build_nodes(args, profiles)
    keys = host_keys(workdir, args.nodes)
    pub, identity = client_key(workdir, args.authorized_key, args.identity_file)
    log.info("%d nodes (%s), keys ready in %.1fs", args.nodes,
             ", ".join(f"{k}={v}" for k, v in apportion(args.nodes, mix).items()),
             time.perf_counter() - t0)

    parent = Parent()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, parent.forward)
    fixed = args.base_port != "auto"
    base = int(args.base_port) if fixed else choose_base(args.nodes)
    for attempt in range(5):
        for n in nodes:
            n.port = base + n.index
        workers = [Worker(w, nodes[w::args.workers], keys, pub, matcher, stats_dir)
                   for w in range(args.workers)]
        lines = parent.spawn(workers)
        failed = [ln for ln in lines if not ln.startswith("OK")]
        if not failed:
            break
        parent.stop_all()
        if parent.stopping:
            return 1
        log.warning("listening failed (%s)", failed[0])
        if fixed or attempt == 4:
            return 1
        bad_port = max(int(ln.split()[2]) for ln in failed) if failed else base
        base = choose_base(args.nodes, start=max(base + 1, bad_port + 1))
    paths = {"workdir": str(workdir), "inventory": str(inventory), "known_hosts": str(known),
             "client_key": identity, "stats_dir": str(stats_dir)}
    write_atomic(known, known_hosts_text(nodes, keys))
    write_atomic(inventory, inventory_text(nodes, args, identity, known))
    write_atomic(workdir / "fleet.json", json.dumps(manifest(nodes, profiles, args, paths, base)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = {"pid": os.getpid(), "workers": sorted(parent.children), "nodes": args.nodes,
            "listening": sum(1 for n in nodes if n.fault != "refused"), "base_port": base,
            "startup_s": round(time.perf_counter() - t0, 2), "parent_maxrss_mb": round(rss, 1),
            **paths, "manifest": str(workdir / "fleet.json")}
    write_atomic(ready, json.dumps(info, indent=1))
    print(f"READY nodes={args.nodes} base_port={base} inventory={inventory} "
          f"startup_s={info['startup_s']}", flush=True)

    rc = 0
    while parent.children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        parent.children.pop(pid, None)
        if not parent.stopping:
            log.error("worker %d exited (status %d); stopping", pid, status)
            rc = 1
            parent.stop_all()
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    return rc


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
