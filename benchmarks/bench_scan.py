"""Benchmark a scan: the pure pipeline per node, and whole scans of real test nodes over SSH.

Two measurements, side by side in one process (the machine is shared and noisy, so compare the
ratios, not the absolute times):

1. ``pipeline``: parse + evaluate + summarise one node from replayed real output (no I/O):
   the CPU a scan costs the controller per node, for the test node (~130 packages) and a real
   Debian 12 host (~730 packages).
2. ``fleet`` (root only): start N real test nodes (sshd in chroots) and scan them all with
   concurrency 1 and with concurrency N, over real SSH, through the same code the flow runs.

    python benchmarks/bench_scan.py                 # both; fleet of 6 nodes, 3 repeats
    python benchmarks/bench_scan.py --nodes 10 --repeats 5
    python benchmarks/bench_scan.py --only pipeline
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.compliance import summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import NodeFacts
from patchfleet.managers.base import CollectOptions
from patchfleet.managers.registry import collect_facts
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_nodes
from patchfleet.transport.connector import SSHConnector
from patchfleet.transport.replay import ReplayTransport, load_replay_dir

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


def stats(samples: list[float]) -> str:
    s = sorted(samples)
    return f"{statistics.median(s):.3f} [{s[0]:.3f}-{s[-1]:.3f}] n={len(s)}"


def pipeline(repeats: int) -> None:
    registry = load_baselines(embedded_baselines_dir())
    print("## pipeline: parse + evaluate + summarise one node (ms of CPU, replayed output)")
    print("| case | packages | parse ms | evaluate+summarise ms |")
    print("|---|---|---|---|")
    cases = (("apt/debian12-fresh", "AWS-DebianDefaultPatchBaseline"),
             ("apt/debian12-host", "AWS-DebianDefaultPatchBaseline"),
             ("dnf/rocky9-fresh", "AWS-RockyLinuxDefaultPatchBaseline"),
             ("zypper/sles15-fresh", "AWS-SuseDefaultPatchBaseline"))
    for case, baseline_name in cases:
        baseline = registry.get(baseline_name)
        responses = load_replay_dir(GOLDEN / case)

        def collect(responses: dict = responses) -> NodeFacts:  # type: ignore[type-arg]
            transport = ReplayTransport("n", responses)

            async def go() -> NodeFacts:
                async with transport:
                    return await collect_facts(transport, "n", "h",
                                               options=CollectOptions(refresh=False))

            return asyncio.run(go())

        parse_t = timed(collect, repeats * 5)
        facts = collect()
        now = datetime.now(UTC)
        eval_t = timed(lambda facts=facts, now=now, baseline=baseline:
                       summarize(evaluate(facts, baseline, now)),
                       repeats * 5)
        print(f"| {case} | {len(facts.installed)} | {stats([t * 1000 for t in parse_t])} "
              f"| {stats([t * 1000 for t in eval_t])} |")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return out


def load_testnodes():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("testnodes", REPO / "testnodes/testnodes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["testnodes"] = module
    spec.loader.exec_module(module)
    return module


def fleet(n: int, repeats: int) -> None:
    if os.geteuid() != 0:
        print("## fleet: skipped (test nodes need root)")
        return
    tn = load_testnodes()
    state = Path(tempfile.mkdtemp(prefix="bench-nodes-"))
    manager = tn.Fleet(state_dir=state, tie_to_parent=True)
    names = [f"bench-{i}" for i in range(n)]
    manager.build(["default"])
    try:
        for name in names:
            manager.start(name)
        inventory = manager.write_inventory(state / "inventory.yaml", names)
        print(f"\n## fleet: scan {n} real test nodes over SSH (s of wall time, no refresh)")
        print("| concurrency | whole scan s | per node s | ok nodes |")
        print("|---|---|---|---|")
        for conc in (1, n):
            walls, ok = [], 0
            for _ in range(repeats):
                plan = plan_scan(inventory=str(inventory), refresh=False, concurrency=conc,
                                 store=str(state / "store"))
                t0 = time.perf_counter()
                with SSHConnector() as connector:
                    results = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options,
                                                     connector))
                walls.append(time.perf_counter() - t0)
                ok = sum(1 for r in results if not r.failed)
            print(f"| {conc} | {stats(walls)} | {statistics.median(walls) / n:.3f} | {ok}/{n} |")
    finally:
        for name in names:
            manager.stop(name)
        manager.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=("pipeline", "fleet"))
    args = ap.parse_args()
    if args.only in (None, "pipeline"):
        pipeline(args.repeats)
    if args.only in (None, "fleet"):
        fleet(args.nodes, args.repeats)


if __name__ == "__main__":
    main()
