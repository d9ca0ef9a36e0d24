"""Benchmark the ``patch-nodes`` flow end to end on a replayed fleet: where a run's time goes.

Every node answers from one golden capture (default: a real Debian 12 host, ~730 packages)
through a :class:`~patchfleet.transport.ReplayConnector`, so the controller's own cost is
measured without SSH: planning, scanning (parse + evaluate), staging, the store commit, the CSV
reports and the artifacts. The flow runs for real on a temporary Prefect server; each task's
wall time is read back from the Prefect API.

    python benchmarks/bench_replay_flow.py --nodes 1000
    python benchmarks/bench_replay_flow.py --nodes 200 --case apt/debian12-fresh --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


def write_inventory(path: Path, nodes: int) -> None:
    lines = ["nodes:"]
    for i in range(nodes):
        lines += [f"  - id: node-{i:05d}", f"    host: 10.{i // 65536 % 256}.{i // 256 % 256}"
                  f".{i % 256}", "    tags: {PatchGroup: web}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def phase_times(flow_run_id: str) -> tuple[dict[str, float], dict[str, float]]:
    """Per task name: (wall seconds of the phase, seconds inside the task's runs).

    A phase runs from the end of the previous phase (the flow run's start for the first) to
    the end of its last task run, so it includes what Prefect does before a task starts
    (walking its parameters); the second figure is the time inside the task runs alone.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
    ends: dict[str, Any] = {}
    inside: dict[str, float] = defaultdict(float)
    for tr in runs:
        if tr.start_time and tr.end_time:
            name = tr.name.rsplit("-", 1)[0]
            inside[name] += (tr.end_time - tr.start_time).total_seconds()
            ends[name] = max(ends.get(name, tr.end_time), tr.end_time)
    phases: dict[str, float] = {}
    previous = flow_run.start_time
    for name, end in sorted(ends.items(), key=lambda kv: kv[1]):
        phases[name] = (end - previous).total_seconds()
        previous = end
    if flow_run.end_time is not None:
        phases["(flow end)"] = (flow_run.end_time - previous).total_seconds()
    return phases, dict(inside)


def run(nodes: int, case: str, batch_size: int, concurrency: int) -> dict[str, Any]:
    from prefect.testing.utilities import prefect_test_harness

    from flows.patch_nodes import patch_nodes
    from patchfleet.config import prefect_env
    from patchfleet.transport import ReplayConnector
    from tasks.connect import connector_factory

    prefect_env.apply_defaults()
    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    inventory = work / "inventory.yaml"
    write_inventory(inventory, nodes)
    post = GOLDEN / "post" / ("debian12-fresh" if case.startswith("apt/") else
                              "rocky9-upgraded" if case.startswith("dnf/") else "sles15-upgraded")
    replay = ReplayConnector.fleet(GOLDEN / case, post)
    with prefect_test_harness(server_startup_timeout=180), connector_factory(lambda: replay):
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = asyncio.run(patch_nodes(inventory=str(inventory), store=str(work / "store"),
                                          batch_size=batch_size, concurrency=concurrency,
                                          refresh=False))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        phases, inside = asyncio.run(phase_times(summary.run_id))
    return {
        "nodes": nodes, "case": case, "batch_size": batch_size, "concurrency": concurrency,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "cpu_ms_per_node": round(cpu * 1000 / nodes, 1),
        "nodes_per_s": round(nodes / wall, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "inside_tasks_s": {k: round(v, 2) for k, v in sorted(inside.items())},
        "compliant": summary.compliant, "non_compliant": summary.non_compliant,
        "failed": summary.failed, "store": str(work / "store"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--case", default="apt/debian12-host", help="golden case under tests/golden")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    result = run(args.nodes, args.case, args.batch_size, args.concurrency)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
