"""Benchmark the per-node install locks (tasks/locks.py) on a real Prefect server.

An Install creates the missing per-node limits once (``patchfleet-node-<id>``), then holds each
node's slot while it works on that node. This measures, for fleets of N nodes, side by side in
one process:

- ``create``: ensure_node_limits on N new nodes (lists the limits, creates N);
- ``ensure``: the same on later runs (lists only);
- ``lock``: per node, acquire + release of its slot, 50 nodes at a time (the rollout's usual
  concurrency), as wall time for all N and per node.
- ``concurrent``: the same lock requests sent concurrently instead of one at a time (what
  NodeLocks serialises; N <= 100);
- ``all-at-once``: the rejected design, one request for every node's slot (Prefect 3.9 emits an
  event per limit naming every other one: quadratic, and it fails past 100 limits).

It starts its own ``prefect server start`` (SQLite in a temporary PREFECT_HOME) on loopback, or
uses PREFECT_API_URL if set (it then creates ``patchfleet-node-bench-*`` limits there).

    python benchmarks/bench_locks.py                  # N = 10, 100, 1000
    python benchmarks/bench_locks.py --nodes 50 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def server() -> Iterator[None]:
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="bench-locks-") as home:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": home, "PREFECT_API_URL": url,
               "PREFECT_UI_ENABLED": "false", "DO_NOT_TRACK": "1",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
             "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health",
                                                                         timeout=2):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("prefect server did not start")
                time.sleep(0.5)
            os.environ.update(PREFECT_HOME=home, PREFECT_API_URL=url)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def measure(n: int) -> dict[str, float]:
    from prefect.concurrency.asyncio import concurrency

    from tasks.locks import NodeLocks, ensure_node_limits, lock_name

    nodes = [f"bench-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    await ensure_node_limits(nodes)
    out["create"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    await ensure_node_limits(nodes)
    out["ensure"] = time.perf_counter() - t0
    sem = asyncio.Semaphore(50)

    t0 = time.perf_counter()
    async with NodeLocks(timeout_seconds=60) as locks:

        async def one(node: str) -> None:
            async with sem, locks.lock(node):
                pass

        await asyncio.gather(*(one(x) for x in nodes))
    out["lock"] = time.perf_counter() - t0
    if n <= 100:
        t0 = time.perf_counter()
        async with NodeLocks(timeout_seconds=60) as free:
            free._serial = _NoLock()  # type: ignore[assignment]

            async def two(node: str) -> None:
                async with sem, free.lock(node):
                    pass

            await asyncio.gather(*(two(x) for x in nodes))
        out["concurrent"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with concurrency([lock_name(x) for x in nodes], occupy=1, timeout_seconds=60,
                               strict=True):
            pass
        out["all_at_once"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[10, 100, 1000])
    args = ap.parse_args()
    with server():
        print(f"{'nodes':>6} {'create (s)':>10} {'ensure (s)':>10} {'lock all (s)':>12} "
              f"{'per node (ms)':>13} {'concurrent (s)':>14} {'all-at-once (s)':>15}")
        for n in args.nodes:
            r = asyncio.run(measure(n))
            once = f"{r['all_at_once']:.2f}" if "all_at_once" in r else "fails >100"
            conc = f"{r['concurrent']:.2f}" if "concurrent" in r else "-"
            print(f"{n:>6} {r['create']:>10.2f} {r['ensure']:>10.2f} {r['lock']:>12.2f} "
                  f"{1000 * r['lock'] / n:>13.1f} {conc:>14} {once:>15}")


if __name__ == "__main__":
    main()
