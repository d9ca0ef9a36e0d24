#!/usr/bin/env python3
"""The evidence store at fleet scale, without SSH: facts bytes per node, write rate, what-if.

Builds N nodes' scan results from real captures (tests/golden: the Debian 12 host, ~735
packages, plus Rocky 9 and SLES 15 nodes by ``--mix``), collected once per profile through the
replay transport. Nodes are not copies: each takes one of ``--variants`` variants in which
``--changed`` installed packages carry another version (as ``fleet_sim.py`` does), so the
store sees a few thousand distinct package rows, not one. Then, in one process:

1. **write**: converts the run to its tables and writes them with the store's own
   Parquet writer (``write_run``), timing ``package_facts`` and ``patch_states`` separately,
   and reports each file's bytes per node (the bound: facts, both tables, within 2x of
   patch_states);
2. **what-if**: ``patchfleet.ops.what_if.evaluate_stored`` on the written store with another
   baseline per OS (no node contacted), start to finish (read, rebuild, judge, compare).

    .venv/bin/python benchmarks/bench_facts.py --nodes 10000 --json /tmp/facts-10k.json

Run from the repository root (``PYTHONPATH=src:.``, or an installed patchfleet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.baseline import baseline_hash
from patchfleet.domain.compliance import summarize
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.managers.base import CollectOptions
from patchfleet.managers.registry import collect_facts
from patchfleet.ops.plan import load_override
from patchfleet.ops.what_if import evaluate_stored
from patchfleet.store.facts_table import fact_tables
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore
from patchfleet.store.schema import patch_states_table
from patchfleet.store.writer import write_run
from patchfleet.transport.replay import ReplayTransport, load_replay_dir

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
FAMILY = {"debian12-host": "apt", "debian12-fresh": "apt", "rocky9-fresh": "dnf",
          "al2023-fresh": "dnf", "sles15-fresh": "zypper", "leap15-fresh": "zypper"}
WHAT_IF = {"DEBIAN": "example-debian-all-updates", "ROCKY_LINUX":
           "AWS-RockyLinuxDefaultPatchBaseline", "SUSE": "AWS-SuseDefaultPatchBaseline",
           "AMAZON_LINUX_2023": "AWS-AmazonLinux2023DefaultPatchBaseline"}
NOW = datetime.now(UTC).replace(microsecond=0)


def collect(case: str) -> NodeFacts:
    transport = ReplayTransport("node", load_replay_dir(GOLDEN / FAMILY[case] / case))

    async def go() -> NodeFacts:
        async with transport:
            return await collect_facts(transport, "node", "127.0.0.1", options=CollectOptions())

    return asyncio.run(go())


def variants(facts: NodeFacts, count: int, changed: int, rng: random.Random) -> list[NodeFacts]:
    """``count`` versions of ``facts`` in which ``changed`` installed packages that no
    candidate or update names carry another version (variant 0 is the capture)."""
    named = {c.name for c in facts.candidates} | {u.package.name for u in facts.updates}
    untouched = [i for i, p in enumerate(facts.installed) if p.name not in named]
    out = [facts]
    for v in range(1, count):
        installed = list(facts.installed)
        for i in rng.sample(untouched, min(changed, len(untouched))):
            installed[i] = replace(installed[i], version=f"{installed[i].version}+v{v}")
        out.append(replace(facts, installed=tuple(installed)))
    return out


def build(nodes: int, mix: dict[str, int], count: int, changed: int) -> list[NodeResult]:
    registry = load_baselines(embedded_baselines_dir())
    rng = random.Random(7)
    pool: list[tuple[NodeFacts, Any]] = []
    for case, weight in mix.items():
        facts = collect(case)
        baseline = registry.select(facts.os.operating_system, None, {})
        pool += [(f, baseline) for f in variants(facts, count, changed, rng)] * weight
    results = []
    for i in range(nodes):
        facts, baseline = pool[i % len(pool)]
        node_id = f"node-{i:05d}"
        facts = replace(facts, node_id=node_id, collected_at=NOW)
        records = evaluate(facts, baseline, NOW)
        results.append(NodeResult(
            node_id=node_id, host=f"10.0.{i // 250}.{i % 250}", summary=summarize(records),
            records=records, operation_start_time=NOW, operation_end_time=NOW,
            platform_name=facts.os.name, platform_version=facts.os.version_id,
            baseline_id=baseline.name, operating_system=facts.os.operating_system,
            boot_id=f"boot-{i}", reboot_required=False, tags=(("Env", "bench"),),
            baseline_hash=baseline_hash(baseline), facts=facts))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--mix", default="debian12-host=8,rocky9-fresh=1,sles15-fresh=1",
                    help="capture=weight,... (tests/golden case folders)")
    ap.add_argument("--variants", type=int, default=50)
    ap.add_argument("--changed", type=int, default=3)
    ap.add_argument("--store", help="where to write (default: a temporary folder)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    mix = {k: int(v) for k, v in (part.split("=") for part in args.mix.split(","))}

    t = time.perf_counter()
    results = build(args.nodes, mix, args.variants, args.changed)
    built = time.perf_counter() - t
    ctx = RunContext(run_id="bench-facts", operation=Operation.SCAN, started_at=NOW,
                     inventory_source="bench")
    t = time.perf_counter()
    elements, _ = fact_tables(ctx.run_id, results)
    facts_convert = time.perf_counter() - t
    t = time.perf_counter()
    states_table = patch_states_table(ctx, results)
    states_convert = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.store or scratch) / "store"
        t = time.perf_counter()
        written = write_run(root, ctx, results)
        write_all = time.perf_counter() - t
        size = {table: Path(path).stat().st_size for table, path in written.paths.items()}
        size["facts"] = size["fact_elements"] + size["fact_lists"]
        with ComplianceStore(root) as cs:
            facts_rows = cs.query("SELECT count(*) FROM package_facts")[1][0][0]
        del results
        baselines = load_override(WHAT_IF, load_baselines(embedded_baselines_dir()))
        t = time.perf_counter()
        outcome = evaluate_stored(StoreLocation.resolve(str(root)), baselines,
                                  run_id=ctx.run_id, at=NOW)
        what_if = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.nodes
    figures = {
        "nodes": n, "mix": args.mix, "variants": args.variants,
        "package_facts_rows": facts_rows, "fact_elements_rows": elements.num_rows,
        "patch_states_rows": states_table.num_rows,
        "bytes_per_node": {t: round(b / n, 1) for t, b in size.items()},
        "facts_to_states_bytes": round(size["facts"] / size["patch_states"], 2),
        "facts_convert_s": round(facts_convert, 2), "states_convert_s": round(states_convert, 2),
        "write_run_s": round(write_all, 2), "write_rate_nodes_per_s": round(n / write_all),
        "what_if_s": round(what_if, 2), "what_if_nodes": len(outcome.results),
        "what_if_patch_changes": len(outcome.patch_flips), "build_s": round(built, 1),
        "max_rss_mb": round(rss_mb),
    }
    print(f"{n} nodes ({args.mix}, {args.variants} variants): facts "
          f"{figures['bytes_per_node']['facts']} B/node ({facts_rows / n:.0f} package_facts "
          f"rows/node, {elements.num_rows} distinct elements) vs patch_states "
          f"{figures['bytes_per_node']['patch_states']} B/node = "
          f"{figures['facts_to_states_bytes']}x")
    print(f"convert: facts {facts_convert:.2f} s, states {states_convert:.2f} s; write_run "
          f"(all tables) {write_all:.2f} s = {n / write_all:.0f} nodes/s")
    print(f"what-if of {len(outcome.results)} stored nodes: {what_if:.2f} s "
          f"({len(outcome.patch_flips)} patch changes); max RSS {rss_mb:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
