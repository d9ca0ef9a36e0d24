#!/usr/bin/env python3
"""Cost of the HTML dashboard (``patchfleet report --html``) on an existing store: opening the
store, each view query the page makes, rendering; twice, each in a fresh ``ComplianceStore``.

Build a store first with ``benchmarks/bench_views.py --store DIR --keep`` (30 days x N nodes):

    .venv/bin/python benchmarks/bench_views.py --nodes 10000 --store /tmp/views-10k --keep \\
        --views fleet_trend
    .venv/bin/python benchmarks/bench_dashboard.py /tmp/views-10k

Run from the repository root (``PYTHONPATH=src:.``, or an installed patchfleet).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from patchfleet.report.dashboard import load_dashboard, render_dashboard
from patchfleet.store.query import ComplianceStore, Params


def main() -> None:
    root = sys.argv[1]
    for attempt in (1, 2):
        t0 = time.perf_counter()
        with ComplianceStore(root) as store:
            query = store.query
            times: list[tuple[str, float]] = []

            def timed(sql: str, params: Params = None,
                      query: Any = query, times: list[tuple[str, float]] = times) -> Any:
                start = time.perf_counter()
                result = query(sql, params)
                view = sql.split("FROM", 1)[1].split()[0]
                times.append((view, round(time.perf_counter() - start, 2)))
                return result

            store.query = timed  # type: ignore[method-assign]
            t1 = time.perf_counter()
            data = load_dashboard(store)
            t2 = time.perf_counter()
            page = render_dashboard(data)
            t3 = time.perf_counter()
        print(f"run {attempt}: open {t1 - t0:.2f} s, queries {t2 - t1:.2f} s, render "
              f"{t3 - t2:.3f} s, page {len(page) // 1024} KiB; per query: {times}", flush=True)


if __name__ == "__main__":
    main()
