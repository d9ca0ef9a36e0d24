"""The analyst notebook runs headless, top to bottom, on a store written by a real pipeline
(replayed test-node output) and on an empty store."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.inventory import Inventory, Node
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.ops.scan import ScanOptions, scan_node
from patchfleet.store.writer import write_run
from patchfleet.transport import ReplayConnector

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "compliance.ipynb"
GOLDEN = REPO / "tests" / "golden" / "apt"


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATCHFLEET_STORE", str(tmp_path / "store"))
    yield tmp_path / "store"


def _write_replayed_run(store: Path) -> None:
    registry = load_baselines(embedded_baselines_dir())
    inv = Inventory(nodes=[Node(id="deb-fresh"), Node(id="deb-upgraded")])
    replay = ReplayConnector.from_dirs({"deb-fresh": GOLDEN / "debian12-fresh",
                                        "deb-upgraded": GOLDEN / "debian12-upgraded"})
    results = [asyncio.run(scan_node(n, registry, replay, ScanOptions()))
               for n in inv.resolved()]
    assert all(not r.failed for r in results)
    write_run(store, RunContext(run_id="nb-run-1", operation=Operation.SCAN,
                                started_at=datetime.now(UTC)), results)


def _execute() -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    return nb


def test_notebook_runs_on_a_store(store_env: Path) -> None:
    _write_replayed_run(store_env)
    nb = _execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "deb-fresh" in text and "NON_COMPLIANT" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells
                   for o in c.get("outputs", []))


def test_notebook_runs_on_an_empty_store(store_env: Path) -> None:
    assert os.environ["PATCHFLEET_STORE"] == str(store_env)
    _execute()
