"""The three drawing notebooks (fleet overview, trend and time to patch, CVE exposure) run
headless in a real Jupyter kernel, top to bottom, and write their PNGs: on a store built from
real scans and a real install of the test nodes over two days, and on an empty store.

The store: on day 0 (clock pinned with ``domain.clock.frozen_at``) a scan of deb-a, deb-c
(Debian 12) and rocky-a (Rocky 9, dnf: its advisories name CVEs); on day 1 deb-a's approved set
is installed (the install of test_store_views_nodes.py). So the trend has two days, time to
patch has patched and still-missing episodes, and CVE exposure has open CVEs.

With ``PATCHFLEET_TEST_ARTIFACTS`` set, the two-day store's PNGs are copied to
``$PATCHFLEET_TEST_ARTIFACTS/notebook-figures/`` for a person (or a CI job) to look at.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import install_runs
import nbformat
import pytest
from nbclient import NotebookClient

from patchfleet.domain import clock
from patchfleet.domain.records import ExecutionType, Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_nodes
from patchfleet.store.writer import write_run
from patchfleet.transport.connector import SSHConnector

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FIGURES = {
    "fleet_overview": ("fleet_status", "compliance_by_os", "compliance_by_patch_group",
                       "compliance_by_baseline", "noncompliant_by_severity"),
    "trend_and_time_to_patch": ("fleet_trend", "time_to_patch"),
    "cve_exposure": ("cve_exposure", "top_cves"),
}
DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY1 = DAY0 + timedelta(days=1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scan(fleet: Any, store: Path, targets: str) -> list[NodeResult]:
    plan = plan_scan(inventory=str(fleet.inventory), targets=targets, store=str(store))
    with SSHConnector() as connector:
        results = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    assert all(not r.failed for r in results), [r.failure_reason for r in results]
    return results


@pytest.fixture(scope="module")
def two_day_store(fleet: Any, rpm_fleet: Any, tmp_path_factory: pytest.TempPathFactory
                  ) -> Path:
    tmp = tmp_path_factory.mktemp("notebooks-draw")
    store = tmp / "store"
    with clock.frozen_at(DAY0):
        first = scan(fleet, store, "deb-a,deb-c") + scan(rpm_fleet, store, "rocky-a")
        write_run(store, RunContext(run_id="day-0", operation=Operation.SCAN,
                                    started_at=DAY0), first)
    try:
        with clock.frozen_at(DAY1):
            _, done = install_runs.scan_and_install(fleet, tmp, "deb-a")
    finally:
        fleet.reset("deb-a")
    write_run(store, RunContext(run_id="day-1", operation=Operation.INSTALL, started_at=DAY1,
                                execution_type=ExecutionType.COMMAND,
                                reboot_option="NoReboot"), [done.result])
    return store


def execute(name: str) -> str:
    """Run notebooks/<name>.ipynb in a python3 kernel started in notebooks/ (as Jupyter and
    ``jupyter execute`` do); fail on any cell error; return the text of every output."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (and that it is a PNG at all)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def run_all(store: Path, figures: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PATCHFLEET_STORE", str(store))
    monkeypatch.setenv("PATCHFLEET_FIGURES", str(figures))
    return {name: execute(name) for name in FIGURES}


@pytest.fixture
def figures(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "figures"


def test_notebooks_draw_a_two_day_store(two_day_store: Path, figures: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = run_all(two_day_store, figures, monkeypatch)
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{f}.png" for names in FIGURES.values() for f in names)
    for names in FIGURES.values():
        for name in names:
            path = figures / f"{name}.png"
            width, height = png_size(path)
            # a chart, not the one-line "no data yet" placeholder (700 x 160 before trimming)
            assert width >= 400 and height >= 150 and path.stat().st_size > 10_000, name
    assert "no data yet" not in "".join(text.values())
    # what the figures draw, in the tables beside them
    assert "DEBIAN" in text["fleet_overview"] and "ROCKY_LINUX" in text["fleet_overview"]
    assert "2026-03-02" in text["trend_and_time_to_patch"]
    assert "2026-03-03" in text["trend_and_time_to_patch"]
    assert "CVE-" in text["cve_exposure"]
    if keep := os.environ.get("PATCHFLEET_TEST_ARTIFACTS"):
        shutil.copytree(figures, Path(keep) / "notebook-figures", dirs_exist_ok=True)


def test_notebooks_say_no_data_yet_on_an_empty_store(tmp_path: Path, figures: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    text = run_all(tmp_path / "store", figures, monkeypatch)
    for name, names in FIGURES.items():
        assert "no data yet" in text[name], name
        for figure in names:
            png_size(figures / f"{figure}.png")
