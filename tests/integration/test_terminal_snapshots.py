"""What an operator's terminal shows, captured through a real pty at 80 and 200 columns:
``patchfleet scan`` of deb-a (a real sshd test node, non-compliant) and an unreachable node,
compared with the snapshots in ``snapshots/`` after normalising run ids, temporary paths,
dates and timing. ``UPDATE_SNAPSHOTS=1`` rewrites them (review the diff).

At 80 columns no line of the summary table is wider than the terminal and no status word is
broken; Prefect's log lines are absent (the progress line replaces them).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from pty_capture import run_in_pty

SNAPSHOTS = Path(__file__).parent / "snapshots"
PATCHFLEET = [sys.executable, str(Path(sys.executable).parent / "patchfleet")]

pytestmark = pytest.mark.nodes

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PROGRESS = re.compile(r"(?:scanned \d+/\d+ nodes  ok \d+  noncompliant \d+  failed \d+  "
                       r"[\d.]+/s  ETA [\d:-]+)+")


def normalise(text: str, tmp: Path) -> str:
    frames = _PROGRESS.findall(text)
    text = _PROGRESS.sub("", text)
    text = text.replace(str(tmp), "TMP")
    text = _UUID.sub("RUN_ID", text)
    text = re.sub(r"date=\d{4}-\d{2}-\d{2}", "date=DATE", text)
    text = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    # the last frame of the progress line, without its rate and ETA (they vary)
    counts = re.compile(r"scanned \d+/\d+ nodes  ok \d+  noncompliant \d+  failed \d+")
    last = counts.findall(frames[-1])[-1] if frames else "no progress line"
    return f"{last}\n{text}\n"


@pytest.fixture(scope="module")
def inventory(fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    inv = tmp_path_factory.mktemp("snap") / "inventory.yaml"
    inv.write_text(fleet.inventory.read_text() + "  - id: ghost\n    host: 127.0.0.1\n"
                   f"    port: {closed}\n")
    return inv, closed


@pytest.mark.parametrize("columns", [80, 200])
def test_scan_summary_snapshot(inventory: tuple[Path, int], columns: int,
                               tmp_path: Path) -> None:
    inv, closed = inventory
    env = {**os.environ, "PATCHFLEET_STORE": str(tmp_path / "store")}
    r = run_in_pty([*PATCHFLEET, "scan", "-i", str(inv), "-t", "deb-a,ghost",
                    "--no-refresh"], columns, env)
    assert r.returncode == 0, r.text
    got = normalise(re.sub(rf"\b{closed}\b", "PORT", r.text.replace(str(inv.parent), "INV")),
                    tmp_path)
    table = got.split(" compliant, ")[0]
    assert all(len(line) <= columns for line in table.splitlines()), table
    assert " | INFO " not in got and "Flow run" not in got, got
    snap = SNAPSHOTS / f"scan-{columns}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not snap.exists():
        snap.write_text(got)
    assert got == snap.read_text()
