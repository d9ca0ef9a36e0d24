#!/usr/bin/env python3
"""Query time of each analyst view (store/sql/70_* to 85_*) on a generated store.

Builds a store of ``--days`` daily scans of ``--nodes`` nodes (plus a weekly install run on a
tenth of them) with the store's own writer (``write_run``), from synthetic results that move
like a fleet: each node runs one of ``--images`` images (OS, patch group, tags) with
``--packages`` package rows; ``--vulnerable`` packages per image become MISSING on a day of
their own, carry CVEs and a severity, and get patched after a per-node delay (some never);
about 1% of the scans fail, some nodes want a reboot, one OS's baseline changes content
mid-way. No facts are written (``time_to_patch`` then uses the runs' times). Then each view is
read in full (``SELECT * FROM view``, to Arrow) twice, in a fresh ``ComplianceStore``; both
times are printed.

    .venv/bin/python benchmarks/bench_views.py --nodes 2000 --days 30 --json /tmp/views-2k.json
    .venv/bin/python benchmarks/bench_views.py --store /tmp/views-store   # re-time a store

Run from the repository root (``PYTHONPATH=src:.``, or an installed patchfleet).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from patchfleet.domain.records import (
    LEVEL_ORDER,
    ComplianceLevel,
    ComplianceSummary,
    ExecutionType,
    NodeStatus,
    Operation,
    PatchRecord,
    PatchState,
)
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.store.query import ANALYST_VIEWS, ComplianceStore
from patchfleet.store.writer import write_run

OSES = ("DEBIAN", "ROCKY_LINUX", "SUSE")
LEVELS = (ComplianceLevel.CRITICAL, ComplianceLevel.HIGH, ComplianceLevel.MEDIUM,
          ComplianceLevel.LOW)
SEVERITIES = ("Critical", "Important", "Moderate", "Low")
START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


class Fleet:
    """The synthetic fleet: shared record objects (as scans of one image share theirs)."""

    def __init__(self, nodes: int, images: int, packages: int, vulnerable: int, days: int,
                 seed: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.nodes = [f"node-{i:05d}" for i in range(nodes)]
        self.image = {n: i % images for i, n in enumerate(self.nodes)}
        self.tags = {n: (("Env", ("prod", "staging", "dev")[i % 3]),
                         ("Team", f"team-{i % 5}")) for i, n in enumerate(self.nodes)}
        self.installed = [PatchRecord(f"pkg-{p:04d}", "amd64", "1.0", None,
                                      PatchState.INSTALLED) for p in range(packages)]
        self.missing: dict[int, PatchRecord] = {}
        self.pending: dict[int, PatchRecord] = {}
        for p in range(packages):
            k = rng.randrange(4)
            cves = tuple(f"CVE-2026-{p:04d}{c}" for c in range(rng.randrange(0, 4)))
            kw = dict(classification=rng.choice(("Security", "Bugfix")),
                      severity=SEVERITIES[k], compliance_level=LEVELS[k], cve_ids=cves)
            self.missing[p] = PatchRecord(f"pkg-{p:04d}", "amd64", "1.0", "1.1",
                                          PatchState.MISSING, **kw)  # type: ignore[arg-type]
            self.pending[p] = PatchRecord(f"pkg-{p:04d}", "amd64", "1.1", "1.1",
                                          PatchState.INSTALLED_PENDING_REBOOT, **kw)  # type: ignore[arg-type]
        # per image: its vulnerable packages and the day each appears
        self.vulns = {i: [(p, rng.randrange(days)) for p in rng.sample(range(packages),
                                                                        vulnerable)]
                      for i in range(images)}
        # per node and vulnerable package: days until patched (None: never)
        self.delay = {n: [None if rng.random() < 0.1 else rng.randrange(0, 25)
                          for _ in range(vulnerable)] for n in self.nodes}

    def states(self, node: str, day: int) -> dict[int, PatchState]:
        out: dict[int, PatchState] = {}
        for (p, appears), delay in zip(self.vulns[self.image[node]], self.delay[node],
                                       strict=True):
            if appears <= day and (delay is None or day < appears + delay):
                out[p] = PatchState.MISSING
        return out

    def result(self, node: str, day: int, start: datetime, install: bool = False
               ) -> NodeResult:
        image = self.image[node]
        os = OSES[image % len(OSES)]
        common = dict(node_id=node, host=f"{node}.example.net", operation_start_time=start,
                      operation_end_time=start + timedelta(seconds=40), operating_system=os,
                      platform_name=os.title(), platform_version="1", patch_group=f"pg-{image}",
                      baseline_id=f"{os.lower()}-default", tags=self.tags[node],
                      baseline_hash="h2" if os == "SUSE" and day >= 15 else "h1")
        if self.rng.random() < 0.01:
            return NodeResult(summary=ComplianceSummary(NodeStatus.FAILED, None), records=(),
                              failure_reason="TIMEOUT: synthetic", **common)  # type: ignore[arg-type]
        missing = self.states(node, day)
        records = list(self.installed)
        for p, _ in self.vulns[image]:
            if p in missing:
                records[p] = self.pending[p] if install else self.missing[p]
        bad = [r for r in records if r.state.non_compliant]
        levels = [r.compliance_level or ComplianceLevel.UNSPECIFIED for r in bad]
        summary = ComplianceSummary(
            status=NodeStatus.NON_COMPLIANT if bad else NodeStatus.COMPLIANT,
            overall_severity=min(levels, key=LEVEL_ORDER.index) if levels else None,
            installed_count=len(records) - len(bad),
            missing_count=sum(r.state is PatchState.MISSING for r in bad),
            installed_pending_reboot_count=sum(
                r.state is PatchState.INSTALLED_PENDING_REBOOT for r in bad),
            critical_non_compliant_count=sum(lv is ComplianceLevel.CRITICAL for lv in levels),
            security_non_compliant_count=sum(r.classification == "Security" for r in bad),
        )
        return NodeResult(summary=summary, records=tuple(records),
                          reboot_required=install or self.rng.random() < 0.02,
                          **common)  # type: ignore[arg-type]


def build(root: Path, args: argparse.Namespace) -> dict[str, float]:
    fleet = Fleet(args.nodes, args.images, args.packages, args.vulnerable, args.days, args.seed)
    rows = 0
    t0 = time.perf_counter()
    for day in range(args.days):
        start = START + timedelta(days=day)
        results = [fleet.result(n, day, start) for n in fleet.nodes]
        written = write_run(root, RunContext(f"scan-{day:03d}", Operation.SCAN, start), results)
        rows += written.rows["patch_states"]
        if day % 7 == 6:  # a weekly maintenance window on a tenth of the fleet
            at = start + timedelta(hours=4)
            window = [fleet.result(n, day, at, install=True) for n in fleet.nodes[::10]]
            write_run(root, RunContext(f"install-{day:03d}", Operation.INSTALL, at,
                                       execution_type=ExecutionType.PATCH_POLICY,
                                       reboot_option="NoReboot"), window)
        print(f"  day {day + 1}/{args.days} written", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in root.rglob("*.parquet"))
    return {"build_s": round(seconds, 1), "patch_states_rows": rows,
            "store_mb": round(size / 1e6, 1)}


def time_views(root: Path, views: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with ComplianceStore(root) as cs:
        for view in views:
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                table = cs.to_arrow(f"SELECT * FROM {view}")
                times.append(time.perf_counter() - t0)
            out[view] = {"first_s": round(times[0], 3), "second_s": round(times[1], 3),
                         "rows": table.num_rows}
            print(f"{view:28} {times[0]:8.3f} s {times[1]:8.3f} s {table.num_rows:8} rows",
                  flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--packages", type=int, default=300, help="package rows per node and scan")
    p.add_argument("--vulnerable", type=int, default=25, help="packages per image that go "
                   "MISSING at some point")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--store", type=Path, help="time this existing store (nothing is built); "
                   "or, with --keep, where to build")
    p.add_argument("--keep", action="store_true", help="build into --store and keep it")
    p.add_argument("--views", nargs="*", default=list(ANALYST_VIEWS))
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    report: dict[str, object] = {"nodes": args.nodes, "days": args.days,
                                 "packages": args.packages}
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        root = args.store if args.store is not None else Path(tmp) / "store"
        if args.store is None or args.keep:
            report.update(build(root, args))
            print(json.dumps(report), flush=True)
        report["views"] = time_views(root, args.views)
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
