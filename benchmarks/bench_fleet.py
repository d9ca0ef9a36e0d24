#!/usr/bin/env python3
"""Fleet benchmark: the real `patchfleet scan` on a simulated fleet, beside the raw-SSH floor.

    python benchmarks/bench_fleet.py --nodes 1000
    python benchmarks/bench_fleet.py --nodes 200 --ansible --json /tmp/bench-200.json
    python benchmarks/bench_fleet.py --nodes 1000 --py-spy /tmp/scan.speedscope.json

One run, side by side, against one simulator process (``benchmarks/fleet_sim.py``: a port and a
host key per node, real captured outputs, a few faulty nodes):

- **floor**: a minimal asyncssh client (key objects, AES-GCM, the product's default concurrency)
  that connects to every node, runs the commands a scan sends (built from the captures' ``.cmd``
  files), reads the output and closes. No parsing, no Prefect, no store: what SSH alone costs.
- **scan**: ``patchfleet scan --inventory ... --store <fresh dir>`` as a subprocess, start to
  exit (store and reports included), with its own PREFECT_HOME (ephemeral Prefect server).
  The scanning window comes from the store (min operation_start_time .. max
  operation_end_time of node_summaries); CPU is measured for the whole process tree
  (``RUSAGE_CHILDREN``) and per process (sampled from /proc: controller vs Prefect server);
  peak RSS is each process's VmHWM. The store is checked: N node rows, healthy nodes scanned,
  faulty nodes FAILED with the reason of their fault.
- **ansible** (``--ansible``): ``ansible-playbook`` with one ``raw`` task per scan command,
  forks 50, from a separate venv (/tmp/ansible-venv, created on first use).

Prints a markdown table; ``--json FILE`` writes every figure. ``--py-spy FILE`` records the scan
(and its subprocesses) with py-spy in speedscope format and prints the hottest functions.
Traffic stays on 127.0.0.1. Only the standard library, asyncssh, duckdb and psutil are used;
the product is driven through its CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "benchmarks" / "fleet_sim.py"
LIBRARY = REPO / "benchmarks" / "scan_library.py"
VENV_BIN = Path(sys.executable).parent
PATCHFLEET = VENV_BIN / "patchfleet"
ANSIBLE_VENV = Path("/tmp/ansible-venv")
FAILED_FAULTS = {"refused": "UNREACHABLE", "hang": "TIMEOUT", "garbage": "PARSE_ERROR",
                 "auth": "AUTH_FAILED"}
"""Fault -> the failure_reason code the node must end with (errors.py reason codes)."""
SHOW_BATCH = 400
"""apt-cache show names per command, as the product batches them (collect.py)."""
PROBE_ORDER = ("os-release", "apt-get-update", "dnf-makecache", "zypper-refresh", "apt-reboot",
               "rpm-boot")
REMOTE_GRACE = 2
REMOTE_KILL_AFTER = 5


# ------------------------------------------------------------------------------------------------
# The commands a scan sends, from the captures
# ------------------------------------------------------------------------------------------------


def _cmd_text(case: Path, probe: str) -> str | None:
    """``probe``'s captured command: from ``case``, else from a sibling case of the family."""
    own = case / f"{probe}.cmd"
    if own.exists():
        return own.read_text().rstrip("\n")
    for sibling in sorted(case.parent.glob(f"*/{probe}.cmd")):
        return sibling.read_text().rstrip("\n")
    return None


def scan_commands(case: Path, post_case: Path | None) -> list[str]:
    """Every command of the case's probes (and of its post-install probes), in scan order;
    ``apt-cache show`` with the name=version pairs the capture answered, in batches."""
    probes = sorted({p.stem for p in case.glob("*.stdout")})
    post = sorted({p.stem for p in post_case.glob("*.stdout")}) if post_case else []
    probes = sorted(probes, key=lambda p: (PROBE_ORDER.index(p) if p in PROBE_ORDER else 99))
    out = []
    for probe in [*probes, *post]:
        text = _cmd_text(post_case if probe in post and post_case else case, probe)
        if text is None:
            continue
        if probe == "apt-cache-show":
            prefix = text[: text.index("apt-cache show") + len("apt-cache show")]
            stdout = (case / "apt-cache-show.stdout").read_text()
            pairs = re.findall(r"^Package: (\S+)\n(?:.*\n)*?Version: (\S+)$", stdout, re.M)
            pairs = sorted(set(pairs))
            for i in range(0, len(pairs), SHOW_BATCH):
                batch = pairs[i:i + SHOW_BATCH]
                out.append(prefix + " " + " ".join(f"{n}={v}" for n, v in batch))
            continue
        out.append(text)
    return out


# ------------------------------------------------------------------------------------------------
# The raw-SSH floor (runs in its own process: `bench_fleet.py floor MANIFEST`)
# ------------------------------------------------------------------------------------------------


async def _floor(manifest: dict[str, Any], concurrency: int, command_timeout: float,
                 connect_timeout: float) -> dict[str, Any]:
    import asyncssh

    client_key = asyncssh.read_private_key(manifest["client_key"])
    host_keys: dict[int, Any] = {}
    for line in Path(manifest["known_hosts"]).read_text().splitlines():
        name, alg, b64 = line.split()[:3]
        host_keys[int(name.rsplit(":", 1)[1])] = asyncssh.import_public_key(f"{alg} {b64}")
    remote_deadline = int(command_timeout + 0.999) + REMOTE_GRACE
    commands = {
        name: [f"timeout -k {REMOTE_KILL_AFTER} {remote_deadline} {c}"
               for c in scan_commands(Path(p["case"]),
                                      Path(p["post_case"]) if p.get("post_case") else None)]
        for name, p in manifest["profiles"].items()
    }
    sem = asyncio.Semaphore(concurrency)
    outcomes: Counter[str] = Counter()
    sent = Counter[str]()
    received = [0]
    durations: list[float] = []

    class Session(asyncssh.SSHClientSession):  # type: ignore[misc,type-arg]
        def __init__(self) -> None:
            self.size = 0
            self.status: int | None = None
            self.done = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes, datatype: Any) -> None:
            self.size += len(data)

        def exit_status_received(self, status: int) -> None:
            self.status = status

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    async def one(node: dict[str, Any]) -> None:
        async with sem:
            t = time.perf_counter()
            try:
                async with asyncio.timeout(connect_timeout):
                    conn = await asyncssh.connect(
                        manifest["host"], node["port"], username="root",
                        client_keys=[client_key], known_hosts=([host_keys[node["port"]]], [], []),
                        agent_path=None, config=None, preferred_auth="publickey",
                        encryption_algs=["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
                        server_host_key_algs=["ssh-ed25519"])
            except Exception as exc:
                outcomes[f"connect: {type(exc).__name__}"] += 1
                return
            try:
                for cmd in commands[node["profile"]]:
                    session = Session()
                    try:
                        async with asyncio.timeout(command_timeout):
                            chan, _ = await conn.create_session(lambda s=session: s, cmd,
                                                                encoding=None)
                            chan.write_eof()
                            await session.done
                    except TimeoutError:
                        chan.close()
                        outcomes["command timeout"] += 1
                        return
                    sent[node["profile"]] += 1
                    received[0] += session.size
                outcomes["ok"] += 1
                durations.append(time.perf_counter() - t)
            except Exception as exc:
                outcomes[f"command: {type(exc).__name__}"] += 1
            finally:
                conn.close()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(n) for n in manifest["nodes"]))
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    durations.sort()
    return {
        "wall_s": wall,
        "nodes": len(manifest["nodes"]),
        "ok": outcomes["ok"],
        "outcomes": dict(outcomes),
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "maxrss_mb": ru1.ru_maxrss / 1024,
        "commands_sent": sum(sent.values()),
        "bytes_received": received[0],
        "node_p50_s": durations[len(durations) // 2] if durations else None,
        "node_max_s": durations[-1] if durations else None,
        "commands_per_profile": {k: len(v) for k, v in commands.items()},
    }


def floor_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_fleet.py floor")
    p.add_argument("manifest")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--command-timeout", type=float, default=600)
    p.add_argument("--connect-timeout", type=float, default=10)
    a = p.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    manifest = json.loads(Path(a.manifest).read_text())
    import logging
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    result = asyncio.run(_floor(manifest, a.concurrency, a.command_timeout, a.connect_timeout))
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------------------------
# The simulator
# ------------------------------------------------------------------------------------------------


class Sim:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.workdir = workdir
        self.ready = workdir / "ready.json"
        self.ready.unlink(missing_ok=True)
        cmd = [sys.executable, str(SIM), "--nodes", str(args.nodes), "--workdir", str(workdir),
               "--mix", args.mix, "--faults", args.faults, "--latency-ms", str(args.latency_ms),
               "--slow-ms", str(args.slow_ms), "--command-timeout", str(args.command_timeout),
               "--workers", str(args.sim_workers), "--seed", str(args.seed)]
        if args.fault_nodes:
            cmd += ["--fault-nodes", args.fault_nodes]
        self.log = open(workdir / "sim.log", "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.info: dict[str, Any] = {}

    def wait_ready(self, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"fleet_sim exited {self.proc.returncode}:\n"
                                 f"{(self.workdir / 'sim.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("fleet_sim did not get ready in time")
            time.sleep(0.1)
        self.info = json.loads(self.ready.read_text())
        self.manifest = json.loads(Path(self.info["manifest"]).read_text())
        return self.info

    def stats(self, timeout: float = 30) -> dict[str, Any]:
        """Every worker's counters, asked for now (SIGUSR1), summed."""
        t = time.time()
        os.kill(self.proc.pid, signal.SIGUSR1)
        stats_dir = Path(self.info["stats_dir"])
        deadline = time.monotonic() + timeout
        while True:
            found = []
            for w in range(len(self.info["workers"])):
                with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                    s = json.loads((stats_dir / f"worker-{w}.json").read_text())
                    if s.get("dumped_at", 0) >= t:
                        found.append(s)
            if len(found) == len(self.info["workers"]):
                break
            if time.monotonic() > deadline:
                raise SystemExit("fleet_sim did not report its counters")
            time.sleep(0.05)
        total: dict[str, Any] = {"by_probe": Counter(), "unknown_samples": []}
        for s in found:
            for k, v in s.items():
                if k == "by_probe":
                    total["by_probe"].update(v)
                elif k == "unknown_samples":
                    total["unknown_samples"] += v
                elif isinstance(v, (int, float)) and k not in ("worker", "pid", "dumped_at"):
                    total[k] = total.get(k, 0) + v
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out = {k: after[k] - before.get(k, 0) for k in after
           if isinstance(after[k], (int, float)) and k != "maxrss_mb"}
    out["by_probe"] = dict(after["by_probe"] - before["by_probe"])
    out["unknown_samples"] = after["unknown_samples"][:5]
    return out


# ------------------------------------------------------------------------------------------------
# Process-tree sampling
# ------------------------------------------------------------------------------------------------


def _role(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if cmdline and cmdline[0].endswith("py-spy"):
        return "profiler"
    if "scan_library.py" in text:
        return "library"
    if "patchfleet" in text and " scan" in text:
        return "controller"
    if "prefect" in text or "uvicorn" in text:
        return "prefect_server"
    return "other"


def _vm_hwm_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


class TreeSampler(threading.Thread):
    """Samples the CPU time and peak RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.stop_event = threading.Event()
        self.procs: dict[tuple[int, float], dict[str, Any]] = {}

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop_event.is_set():
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in members:
                try:
                    key = (p.pid, p.create_time())
                    rec = self.procs.get(key)
                    if rec is None:
                        rec = self.procs[key] = {"pid": p.pid, "cmdline": p.cmdline(),
                                                 "role": None, "cpu_s": 0.0, "hwm_mb": 0.0}
                        rec["role"] = _role(rec["cmdline"])
                    t = p.cpu_times()
                    rec["cpu_s"] = t.user + t.system
                    hwm = _vm_hwm_mb(p.pid)
                    if hwm:
                        rec["hwm_mb"] = max(rec["hwm_mb"], hwm)
                except psutil.Error:
                    continue
            self.stop_event.wait(self.interval)

    def by_role(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu_s": 0.0, "hwm_mb": 0.0,
                                                                "processes": 0})
        for rec in self.procs.values():
            r = out[rec["role"]]
            r["cpu_s"] += rec["cpu_s"]
            r["hwm_mb"] = max(r["hwm_mb"], rec["hwm_mb"])
            r["processes"] += 1
        return dict(out)


# ------------------------------------------------------------------------------------------------
# The scan
# ------------------------------------------------------------------------------------------------


def prefect_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "PATCHFLEET_STORE"}
    env.update({
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    })
    return env


def warm_prefect_home(home: Path, sim: Sim, scratch: Path) -> float | None:
    """A first ``patchfleet scan`` of one node, so that the Prefect database exists and the
    timed run does not pay its creation (25 s on this machine). Returns its wall time."""
    if any(home.glob("*.db")):
        return None
    home.mkdir(parents=True, exist_ok=True)
    node = next(n for n in sim.manifest["nodes"] if not n["fault"])
    t = time.perf_counter()
    subprocess.run([str(PATCHFLEET), "scan", "--inventory", sim.manifest["inventory"],
                    "--targets", node["id"], "--store", str(scratch / "warmup-store"),
                    "-o", "json"], env=prefect_env(home), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=600)
    return time.perf_counter() - t


def run_scan(args: argparse.Namespace, sim: Sim, run_dir: Path, home: Path) -> dict[str, Any]:
    store = run_dir / "store"
    cmd = [str(PATCHFLEET), "scan", "--inventory", sim.manifest["inventory"], "--store",
           str(store), "-o", "json", "--concurrency", str(args.concurrency), "--batch-size",
           str(args.batch_size), *args.scan_arg]
    if args.py_spy:
        cmd = [str(VENV_BIN / "py-spy"), "record", "-o", args.py_spy, "--format",
               args.py_spy_format, "--subprocesses", "--nonblocking", "--rate",
               str(args.py_spy_rate), "--", *cmd]
    return run_timed(cmd, "scan", args, run_dir, store, prefect_env(home))


def run_library(args: argparse.Namespace, sim: Sim, run_dir: Path) -> dict[str, Any]:
    """The same scan as a plain library call (``scan_library.py``: the flow's ops, no
    Prefect), on the same fleet, into its own store."""
    store = run_dir / "library-store"
    cmd = [sys.executable, str(LIBRARY), "--inventory", sim.manifest["inventory"], "--store",
           str(store), "--concurrency", str(args.concurrency), "--batch-size",
           str(args.batch_size)]
    return run_timed(cmd, "library", args, run_dir, store,
                     {k: v for k, v in os.environ.items() if k != "PATCHFLEET_STORE"})


def run_timed(cmd: list[str], name: str, args: argparse.Namespace, run_dir: Path, store: Path,
              env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` start to exit with its process tree sampled; its JSON stdout is the
    summary."""
    out_path, err_path = run_dir / f"{name}.stdout", run_dir / f"{name}.stderr"
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_launch = time.time()
    t0 = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            rc = proc.wait(timeout=args.scan_timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(60)
        sampler.stop_event.set()
        sampler.join()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_total = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary: dict[str, Any] = {}
    with contextlib.suppress(json.JSONDecodeError):
        text = out_path.read_text()
        summary = json.loads(text[text.index("{"):]) if "{" in text else {}
    return {
        "command": " ".join(cmd),
        "exit_code": rc,
        "wall_s": wall,
        "launched_at": t_launch,
        "cpu_total_s": cpu_total,
        "processes": sampler.by_role(),
        "pid_roles": {str(r["pid"]): r["role"] for r in sampler.procs.values()},
        "summary": {k: v for k, v in summary.items() if k != "nodes"},
        "store": str(store),
        "stderr_tail": err_path.read_text()[-1500:] if rc else "",
    }


def check_store(store: Path, manifest: dict[str, Any], launched_at: float,
                exited_at: float) -> dict[str, Any]:
    """Read the store back: node rows, statuses and reasons against the injected faults, the
    scanning window, rows and bytes written."""
    import duckdb

    out: dict[str, Any] = {}
    con = duckdb.connect()
    glob = f"{store}/node_summaries/**/*.parquet"
    cols = [r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()]
    start_col = next(c for c in ("operation_start_time", "scan_start_time", "started_at")
                     if c in cols)
    end_col = next(c for c in ("operation_end_time", "scan_end_time", "finished_at") if c in cols)
    rows = con.execute(
        f"SELECT node_id, status, coalesce(failure_reason, ''), epoch({start_col}), "
        f"epoch({end_col}) FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()
    out["node_rows"] = len(rows)
    starts = [r[3] for r in rows if r[3] is not None]
    ends = [r[4] for r in rows if r[4] is not None]
    if starts and ends:
        out["window_start"], out["window_end"] = min(starts), max(ends)
        out["window_s"] = max(ends) - min(starts)
        out["startup_s"] = min(starts) - launched_at
        out["after_scan_s"] = exited_at - max(ends)
    by_id = {r[0]: r for r in rows}
    expected = {n["id"]: n for n in manifest["nodes"]}
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    for node_id, node in expected.items():
        row = by_id.get(node_id)
        if row is None:
            problems.append(f"{node_id}: no node_summaries row")
            continue
        statuses[row[1]] += 1
        code = FAILED_FAULTS.get(node["fault"] or "")
        if code:
            if row[1] != "FAILED" or not row[2].startswith(code):
                problems.append(f"{node_id} ({node['fault']}): {row[1]} {row[2][:120]!r}, "
                                f"expected FAILED {code}")
        elif row[1] not in ("COMPLIANT", "NON_COMPLIANT"):
            problems.append(f"{node_id} ({node['fault'] or 'healthy'}): {row[1]} {row[2][:160]!r}")
    extra = set(by_id) - set(expected)
    if extra:
        problems.append(f"{len(extra)} unexpected node rows")
    out["statuses"] = dict(statuses)
    out["faults"] = dict(Counter(n["fault"] or "healthy" for n in manifest["nodes"]))
    out["problems"] = problems[:20]
    out["problem_count"] = len(problems)
    # Rows, bytes and when the files were written.
    tables: dict[str, Any] = {}
    first, last = None, None
    for table_dir in sorted(p for p in store.iterdir() if p.is_dir()):
        files = list(table_dir.rglob("*.parquet"))
        if not files:
            continue
        n = con.execute(f"SELECT count(*) FROM read_parquet('{table_dir}/**/*.parquet', "
                        "hive_partitioning=true)").fetchone()[0]
        mtimes = [f.stat().st_mtime for f in files]
        first = min(mtimes + ([first] if first else []))
        last = max(mtimes + ([last] if last else []))
        tables[table_dir.name] = {"rows": n, "files": len(files),
                                  "bytes": sum(f.stat().st_size for f in files)}
    other = [f for f in store.rglob("*") if f.is_file() and f.suffix != ".parquet"]
    out["tables"] = tables
    out["parquet_rows"] = sum(t["rows"] for t in tables.values())
    out["parquet_bytes"] = sum(t["bytes"] for t in tables.values())
    out["other_files"] = len(other)
    out["other_bytes"] = sum(f.stat().st_size for f in other)
    if first is not None and "window_end" in out:
        out["parquet_first_write_after_scan_s"] = first - out["window_end"]
        out["parquet_last_write_after_scan_s"] = last - out["window_end"]
        span = max(last - out["window_end"], 1e-3)
        out["store_rows_per_s_after_scan"] = out["parquet_rows"] / span
        out["store_mb_per_s_after_scan"] = out["parquet_bytes"] / span / 1e6
    return out


# ------------------------------------------------------------------------------------------------
# Ansible (optional)
# ------------------------------------------------------------------------------------------------


def ensure_ansible() -> Path:
    exe = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if not exe.exists():
        print(f"== creating {ANSIBLE_VENV} (pip install ansible-core)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        subprocess.run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"],
                       check=True)
    return exe


def run_ansible(args: argparse.Namespace, sim: Sim, run_dir: Path) -> dict[str, Any]:
    exe = ensure_ansible()
    m = sim.manifest
    adir = run_dir / "ansible"
    adir.mkdir(exist_ok=True)
    inv = ["[sim]"]
    for n in m["nodes"]:
        inv.append(f"{n['id']} ansible_host={m['host']} ansible_port={n['port']} "
                   f"sim_profile={n['profile']}")
    common = (f"-o UserKnownHostsFile={m['known_hosts']} -o GlobalKnownHostsFile=/dev/null "
              "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")
    inv += ["", "[sim:vars]", "ansible_user=root",
            f"ansible_ssh_private_key_file={m['client_key']}",
            f"ansible_ssh_common_args='{common}'"]
    (adir / "inventory.ini").write_text("\n".join(inv) + "\n")
    plays = []
    for name, p in m["profiles"].items():
        cmds = scan_commands(Path(p["case"]), Path(p["post_case"]) if p.get("post_case") else None)
        tasks = [{"name": f"cmd {i}", "raw": c} for i, c in enumerate(cmds)]
        plays.append({"hosts": "sim", "gather_facts": False,
                      "tasks": [{"block": tasks, "when": f"sim_profile == {json.dumps(name)}"}]})
    (adir / "playbook.yml").write_text(json.dumps(plays, indent=1))
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_LOCAL_TEMP=str(adir / "tmp"), ANSIBLE_SSH_RETRIES="0",
               ANSIBLE_TIMEOUT=str(int(args.connect_timeout)))
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with (adir / "out.txt").open("w") as fh:
        rc = subprocess.run([str(exe), "-i", str(adir / "inventory.ini"), "-f", "50",
                             str(adir / "playbook.yml")], stdout=fh, stderr=subprocess.STDOUT,
                            env=env, check=False).returncode
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    recap = (adir / "out.txt").read_text()
    ok = sum(1 for ln in re.findall(r"^\S+\s+: ok=\d+.*$", recap, re.M)
             if " unreachable=0 " in ln and " failed=0 " in ln)
    return {"wall_s": wall, "exit_code": rc, "ok": ok, "nodes": len(m["nodes"]),
            "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)}


# ------------------------------------------------------------------------------------------------
# Profile analysis (py-spy speedscope)
# ------------------------------------------------------------------------------------------------


def analyze_speedscope(path: str, roles: dict[int, str], top: int = 15) -> dict[str, Any]:
    """Per process role: the functions with the largest share of samples (inclusive: the
    function is anywhere on the stack; self: it is the innermost frame)."""
    data = json.loads(Path(path).read_text())
    frames = data["shared"]["frames"]
    keys: list[str | None] = []
    for f in frames:
        file = f.get("file") or ""
        short = "/".join(Path(file).parts[-2:]) if file else ""
        # py-spy --subprocesses puts a synthetic "process PID:CMDLINE" frame at the root.
        keys.append(None if f["name"].startswith("process ") and not file
                    else f"{f['name']} ({short})")
    acc: dict[str, dict[str, Any]] = {}
    for prof in data["profiles"]:
        m = re.search(r"Process (\d+)", prof.get("name", ""))
        role = roles.get(int(m.group(1)), "other") if m else "other"
        a = acc.setdefault(role, {"total": 0.0, "incl": Counter(), "self": Counter()})
        weights = prof.get("weights") or [1] * len(prof["samples"])
        for stack, w in zip(prof["samples"], weights, strict=False):
            if not stack:
                continue
            a["total"] += w
            for k in {keys[i] for i in stack} - {None}:
                a["incl"][k] += w
            a["self"][keys[stack[-1]] or "(process)"] += w
    out = {}
    for role, a in acc.items():
        total = a["total"] or 1
        out[role] = {
            "seconds": a["total"],
            "top_inclusive": [(k, round(100 * v / total, 1)) for k, v in a["incl"].most_common(
                top + 40)],
            "top_self": [(k, round(100 * v / total, 1)) for k, v in a["self"].most_common(top)],
        }
    return out


# ------------------------------------------------------------------------------------------------
# Prefect overhead and the goals
# ------------------------------------------------------------------------------------------------


def prefect_overhead(res: dict[str, Any]) -> dict[str, Any]:
    """The flow run against the library call on the same fleet: wall time and CPU. Prefect's
    share of the controller's CPU is the flow's whole process tree (controller + ephemeral
    server) minus the library call's CPU, over the flow's; the server's own share beside it."""
    sc, lib = res.get("scan"), res.get("library")
    if not sc or not lib:
        return {}
    server = sc["processes"].get("prefect_server", {}).get("cpu_s", 0.0)
    flow_cpu, lib_cpu = sc["cpu_total_s"], lib["cpu_total_s"]
    return {
        "flow_wall_s": sc["wall_s"], "library_wall_s": lib["wall_s"],
        "extra_wall_s": sc["wall_s"] - lib["wall_s"],
        "wall_ratio": sc["wall_s"] / lib["wall_s"],
        "flow_cpu_s": flow_cpu, "library_cpu_s": lib_cpu,
        "extra_cpu_s": flow_cpu - lib_cpu,
        "prefect_cpu_share": (flow_cpu - lib_cpu) / flow_cpu if flow_cpu else None,
        "prefect_server_cpu_s": server,
        "prefect_server_cpu_share": server / flow_cpu if flow_cpu else None,
        "library_window_s": lib.get("store_check", {}).get("window_s"),
        "flow_window_s": sc.get("store_check", {}).get("window_s"),
        "library_peak_rss_mb": lib["processes"].get("library", {}).get("hwm_mb"),
    }


def goals(res: dict[str, Any]) -> dict[str, Any]:
    """Issue 10's goals that one run can decide (linearity compares runs: see the README)."""
    n, fl, sc = res["nodes"], res.get("floor"), res.get("scan")
    out: dict[str, Any] = {}
    if not sc:
        return out
    window = sc.get("store_check", {}).get("window_s")
    if fl:
        out["end_to_end_vs_floor"] = {"value": fl["wall_s"] / sc["wall_s"], "goal": ">= 0.5"}
        if window:
            out["window_vs_floor"] = {"value": fl["wall_s"] / window, "goal": ">= 0.8"}
    ctl = sc["processes"].get("controller", {}).get("hwm_mb")
    out["controller_peak_rss_mb"] = {"value": ctl, "goal": "<= 1024"}
    share = res.get("prefect_overhead", {}).get("prefect_cpu_share")
    if share is not None:
        out["prefect_cpu_share"] = {"value": share, "goal": "<= 0.05"}
    if n >= 10000:
        out["end_to_end_s_at_10k"] = {"value": sc["wall_s"], "goal": "<= 300"}
    out["cpu_ms_per_node"] = {"value": 1000 * sc["cpu_total_s"] / n,
                              "goal": "at 10k within 1.2x of 1k"}
    for g in out.values():
        v, goal = g["value"], g["goal"]
        if v is not None and goal[:2] in ("<=", ">="):
            bound = float(goal[3:])
            g["met"] = v <= bound if goal.startswith("<=") else v >= bound
    return out


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def report(res: dict[str, Any]) -> str:
    n = res["nodes"]
    fl, sc, an = res.get("floor"), res.get("scan"), res.get("ansible")
    lib = res.get("library")
    st = (sc or {}).get("store_check", {})
    lst = (lib or {}).get("store_check", {})
    lines = [f"## fleet benchmark: {n} nodes ({res['mix']}; faults {res['faults']}), "
             f"concurrency {res['concurrency']}", ""]
    lines += ["| figure | raw SSH floor | patchfleet scan (flow) | library call (no Prefect) "
              "| ansible raw (forks 50) |", "|---|---|---|---|---|"]

    def row(name: str, f: Any, s: Any, li: Any = None, a: Any = None) -> None:
        lines.append(f"| {name} | {fmt(f)} | {fmt(s)} | {fmt(li)} | {fmt(a)} |")

    def per(x: float | None, k: float = 1.0) -> float | None:
        return None if x is None or not n else x * k / n

    procs = (sc or {}).get("processes", {})
    ctl = procs.get("controller", {})
    srv = procs.get("prefect_server", {})
    lproc = (lib or {}).get("processes", {}).get("library", {})
    row("wall time, s", fl and fl["wall_s"], sc and sc["wall_s"], lib and lib["wall_s"],
        an and an["wall_s"])
    row("nodes OK (healthy+slow expected)", fl and fl["ok"],
        st.get("statuses") and sum(v for k, v in st["statuses"].items() if k != "FAILED"),
        lst.get("statuses") and sum(v for k, v in lst["statuses"].items() if k != "FAILED"),
        an and an["ok"])
    row("nodes/s, end to end", fl and n / fl["wall_s"], sc and n / sc["wall_s"],
        lib and n / lib["wall_s"], an and n / an["wall_s"])
    row("scanning window, s", None, st.get("window_s"), lst.get("window_s"))
    row("nodes/s, scanning window", None, st.get("window_s") and n / st["window_s"],
        lst.get("window_s") and n / lst["window_s"])
    row("start-up before the first node, s", None, st.get("startup_s"), lst.get("startup_s"))
    row("after the last node until exit, s", None, st.get("after_scan_s"),
        lst.get("after_scan_s"))
    row("client CPU per node, ms (whole process tree)", fl and per(fl["cpu_s"], 1000),
        sc and per(sc["cpu_total_s"], 1000), lib and per(lib["cpu_total_s"], 1000),
        an and per(an["cpu_s"], 1000))
    row("  controller process only (sampled)", None, per(ctl.get("cpu_s"), 1000),
        per(lproc.get("cpu_s"), 1000))
    row("  Prefect server (sampled)", None, per(srv.get("cpu_s"), 1000))
    row("peak RSS, MB: client / controller", fl and fl["maxrss_mb"], ctl.get("hwm_mb"),
        lproc.get("hwm_mb"))
    row("peak RSS, MB: Prefect server", None, srv.get("hwm_mb"))
    fsim, ssim, lsim = res.get("sim_floor", {}), res.get("sim_scan", {}), res.get(
        "sim_library", {})
    row("commands per node (counted by the simulator)", per(fsim.get("commands")),
        per(ssim.get("commands")), per(lsim.get("commands")))
    row("KB sent per node by the simulator", per(fsim.get("bytes_out"), 1 / 1024),
        per(ssim.get("bytes_out"), 1 / 1024), per(lsim.get("bytes_out"), 1 / 1024))
    row("simulator CPU per node, ms", per(fsim.get("cpu_s"), 1000), per(ssim.get("cpu_s"), 1000),
        per(lsim.get("cpu_s"), 1000))
    row("store rows/s after the last node", None, st.get("store_rows_per_s_after_scan"),
        lst.get("store_rows_per_s_after_scan"))
    lines.append("")
    if fl and sc:
        lines.append(f"Ratios: end to end / floor = **{fl['wall_s'] / sc['wall_s']:.1%}**"
                     + (f"; scanning window / floor = **{fl['wall_s'] / st['window_s']:.1%}**"
                        if st.get("window_s") else "")
                     + (f"; end to end / ansible = **{an['wall_s'] / sc['wall_s']:.1f}x**"
                        if an else ""))
    po = res.get("prefect_overhead") or {}
    if po:
        lines.append("")
        lines.append(
            f"Prefect overhead (flow vs library call): wall {po['flow_wall_s']:.1f} s vs "
            f"{po['library_wall_s']:.1f} s (**{po['wall_ratio']:.2f}x**, +{po['extra_wall_s']:.1f}"
            f" s); CPU {po['flow_cpu_s']:.1f} s vs {po['library_cpu_s']:.1f} s: Prefect's share "
            f"of the controller's CPU **{fmt_pct(po['prefect_cpu_share'])}** (ephemeral server "
            f"alone {fmt_pct(po['prefect_server_cpu_share'])})")
    if res.get("goals"):
        lines.append("")
        lines.append("Goals (issue 10): " + "; ".join(
            f"{k} {fmt(g['value'], 3) if isinstance(g['value'], float) else fmt(g['value'])} "
            f"({g['goal']}{': met' if g.get('met') else ': NOT met' if 'met' in g else ''})"
            for k, g in res["goals"].items()))
    if st:
        lines.append("")
        lines.append(f"Store: {fmt(st.get('parquet_rows'))} Parquet rows, "
                     f"{fmt(st.get('parquet_bytes', 0) / 1e6, 2)} MB in "
                     f"{sum(t['files'] for t in st.get('tables', {}).values())} files "
                     + ", ".join(f"{k} {fmt(v['rows'])} rows" for k, v in st.get("tables",
                                                                                 {}).items())
                     + f"; {st.get('other_files')} other files (reports ...), "
                     f"{fmt(st.get('other_bytes', 0) / 1e6)} MB. Parquet written "
                     f"{fmt(st.get('parquet_first_write_after_scan_s'))} .. "
                     f"{fmt(st.get('parquet_last_write_after_scan_s'))} s after the last node "
                     f"ended: {fmt(st.get('store_rows_per_s_after_scan'), 0)} rows/s, "
                     f"{fmt(st.get('store_mb_per_s_after_scan'), 2)} MB/s over that span.")
        lines.append(f"Statuses: {st.get('statuses')}; injected: {st.get('faults')}; "
                     f"check: {'OK' if not st.get('problem_count') else 'PROBLEMS'}"
                     + "".join(f"\n  - {p}" for p in st.get("problems", [])))
    for name, run in (("scan", sc), ("library call", lib)):
        if run and run.get("exit_code"):
            lines.append(f"{name} exit code {run['exit_code']}: "
                         f"{run.get('stderr_tail', '')[-600:]}")
    if res.get("profile"):
        for role, p in res["profile"].items():
            lines.append("")
            lines.append(f"### py-spy: {role} ({fmt(p['seconds'], 0)} s of samples), "
                         "top functions by inclusive share (on the stack)")
            lines.append("| % inclusive | function |")
            lines.append("|---|---|")
            for k, v in p["top_inclusive"][:40]:
                lines.append(f"| {v} | `{k}` |")
            lines.append("")
            lines.append("| % self (innermost frame) | function |")
            lines.append("|---|---|")
            for k, v in p["top_self"][:15]:
                lines.append(f"| {v} | `{k}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "floor":
        return floor_main(argv[1:])
    if argv and argv[0] == "profile":  # profile SPEEDSCOPE RESULTS_JSON: re-analyse a recording
        results = json.loads(Path(argv[2]).read_text())
        print(report({"nodes": results["nodes"], "mix": results["mix"],
                      "faults": results["faults"], "concurrency": results["concurrency"],
                      "profile": analyze_speedscope(argv[1], _pid_roles(results["scan"]))}))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--mix", default="debian12-host=100")
    p.add_argument("--faults", default="refused=0.005,garbage=0.005,auth=0.005",
                   help="fault fractions for fleet_sim ('none' for a healthy fleet). hang and "
                        "slow nodes are off by default: one such node makes the tail (hang: "
                        "--command-timeout per node) and hides the throughput")
    p.add_argument("--fault-nodes", default="", help="exact fault counts (fleet_sim)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--slow-ms", type=float, default=1000.0)
    p.add_argument("--command-timeout", type=float, default=30.0,
                   help="inventory command_timeout (hang nodes fail after it)")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=50, help="the product's default is 50")
    p.add_argument("--sim-workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default=None, help="default: /tmp/pfbench/n<NODES> (keys cached)")
    p.add_argument("--prefect-home", default=None,
                   help="default: /tmp/pfbench/prefect-home (created and warmed up once)")
    p.add_argument("--fresh-prefect-home", action="store_true",
                   help="a new, empty PREFECT_HOME for the timed scan (pays DB creation)")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--skip-scan", action="store_true")
    p.add_argument("--skip-library", action="store_true",
                   help="skip the same scan as a plain library call (Prefect overhead)")
    p.add_argument("--batch-size", type=int, default=100,
                   help="nodes per scan-batch task (the product's default), for both scans")
    p.add_argument("--ansible", action="store_true", help="also Ansible raw (forks 50)")
    p.add_argument("--scan-arg", action="append", default=[],
                   help="extra argument for patchfleet scan (repeatable)")
    p.add_argument("--scan-timeout", type=float, default=3600)
    p.add_argument("--py-spy", default=None, help="record the scan with py-spy into this file")
    p.add_argument("--py-spy-format", default="speedscope")
    p.add_argument("--py-spy-rate", type=int, default=50)
    p.add_argument("--json", default=None, help="write every figure here")
    a = p.parse_args(argv)
    if a.ansible and a.nodes > 1000:
        print("note: --ansible with more than 1000 nodes takes long (about 3-15 hosts/s)",
              file=sys.stderr)

    base = Path("/tmp/pfbench")
    workdir = Path(a.workdir) if a.workdir else base / f"n{a.nodes}"
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    home = Path(a.prefect_home) if a.prefect_home else base / "prefect-home"
    if a.fresh_prefect_home:
        home = run_dir / "prefect-home"
    res: dict[str, Any] = {"nodes": a.nodes, "mix": a.mix, "faults": a.faults or "none",
                           "concurrency": a.concurrency, "run_dir": str(run_dir),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           "machine": {"cpus": os.cpu_count()}, "product": product()}
    sim = Sim(a, workdir)
    try:
        info = sim.wait_ready()
        res["sim"] = {k: info[k] for k in ("nodes", "listening", "base_port", "startup_s")}
        print(f"== simulator ready: {info['listening']} of {a.nodes} nodes listening from port "
              f"{info['base_port']} in {info['startup_s']} s", file=sys.stderr)
        if not a.skip_scan and not a.fresh_prefect_home:
            warm = warm_prefect_home(home, sim, run_dir)
            if warm is not None:
                res["prefect_warmup_s"] = warm
                print(f"== Prefect home {home} created ({warm:.0f} s, not timed)",
                      file=sys.stderr)
        if not a.skip_floor:
            s0 = sim.stats()
            print("== raw SSH floor ...", file=sys.stderr)
            out = subprocess.run(
                [sys.executable, __file__, "floor", info["manifest"], "--concurrency",
                 str(a.concurrency), "--command-timeout", str(a.command_timeout),
                 "--connect-timeout", str(a.connect_timeout)],
                capture_output=True, text=True, check=True)
            res["floor"] = json.loads(out.stdout.strip().splitlines()[-1])
            res["sim_floor"] = stats_delta(s0, sim.stats())
            print(f"   {res['floor']['wall_s']:.1f} s, {res['floor']['ok']} ok",
                  file=sys.stderr)
        if not a.skip_scan:
            s0 = sim.stats()
            print(f"== patchfleet scan ({'py-spy, ' if a.py_spy else ''}store {run_dir}/store)"
                  " ...", file=sys.stderr)
            scan = run_scan(a, sim, run_dir, home)
            exited = scan["launched_at"] + scan["wall_s"]
            res["sim_scan"] = stats_delta(s0, sim.stats())
            if (Path(scan["store"]) / "node_summaries").is_dir():
                scan["store_check"] = check_store(Path(scan["store"]), sim.manifest,
                                                  scan["launched_at"], exited)
            res["scan"] = scan
            print(f"   {scan['wall_s']:.1f} s, exit {scan['exit_code']}", file=sys.stderr)
            if a.py_spy and Path(a.py_spy).exists():
                res["profile"] = analyze_speedscope(a.py_spy, _pid_roles(scan))
        if not a.skip_library:
            s0 = sim.stats()
            print(f"== library call, no Prefect (store {run_dir}/library-store) ...",
                  file=sys.stderr)
            lib = run_library(a, sim, run_dir)
            res["sim_library"] = stats_delta(s0, sim.stats())
            if (Path(lib["store"]) / "node_summaries").is_dir():
                lib["store_check"] = check_store(Path(lib["store"]), sim.manifest,
                                                 lib["launched_at"],
                                                 lib["launched_at"] + lib["wall_s"])
            res["library"] = lib
            print(f"   {lib['wall_s']:.1f} s, exit {lib['exit_code']}", file=sys.stderr)
        res["prefect_overhead"] = prefect_overhead(res)
        res["goals"] = goals(res)
        if a.ansible:
            s0 = sim.stats()
            print("== ansible raw ...", file=sys.stderr)
            res["ansible"] = run_ansible(a, sim, run_dir)
            res["sim_ansible"] = stats_delta(s0, sim.stats())
    finally:
        sim.stop()
    text = report(res)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    (run_dir / "report.md").write_text(text + "\n")
    (run_dir / "results.json").write_text(json.dumps(res, indent=1, default=str))
    ok = not any(res.get(k, {}).get("store_check", {}).get("problem_count")
                 or res.get(k, {}).get("exit_code") for k in ("scan", "library"))
    return 0 if ok else 1


def product() -> dict[str, str]:
    """Which code the run measures: the patchfleet package the scan imports, and its commit."""
    where = subprocess.run([sys.executable, "-c", "import patchfleet; print(patchfleet.__file__)"],
                           capture_output=True, text=True, check=False).stdout.strip()
    src = Path(where).parents[2] if where else REPO
    commit = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {"patchfleet": where, "commit": commit[:100] + (" (+ uncommitted src)" if dirty
                                                          else "")}


def _pid_roles(scan: dict[str, Any]) -> dict[int, str]:
    return {int(pid): role for pid, role in scan.get("pid_roles", {}).items()}


if __name__ == "__main__":
    sys.exit(main())
