"""Markers of flow runs this machine's CLI is running, to find the ones a kill -9 cut short.

A ``patchfleet scan`` / ``install`` killed with SIGKILL cannot tell Prefect its run ended: the
run stays RUNNING in Prefect's database for ever. While a run started from the CLI (not from a
deployment: a worker reports its own crashes) is in progress, a marker file names it, with the
process id and that process's start time (so a recycled pid is not taken for it); the run
removes the marker when it ends, whatever the outcome. The next CLI run lists markers whose
process is gone (:func:`orphaned`) and marks those runs Crashed (cli/crashed_runs.py).

Markers live in ``<data dir>/runs/<flow run id>.json``. Plain files, no Prefect here.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from patchfleet.atomicio import write_atomic
from patchfleet.config.paths import data_dir

__all__ = ["RunMarker", "marked", "orphaned"]


def markers_dir() -> Path:
    return data_dir() / "runs"


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True, slots=True)
class RunMarker:
    """A CLI flow run in progress (or cut short): its id, process and Prefect API."""

    run_id: str
    pid: int
    started: str | None
    api_url: str
    """``PREFECT_API_URL`` of the run, empty for the CLI's temporary server."""
    path: Path

    @property
    def alive(self) -> bool:
        return self.started is not None and _start_time(self.pid) == self.started


@contextlib.contextmanager
def marked(run_id: str) -> Iterator[None]:
    """A marker for ``run_id`` while the block runs (this process, this Prefect API)."""
    path = markers_dir() / f"{run_id}.json"
    body = {"run_id": run_id, "pid": os.getpid(), "started": _start_time(os.getpid()),
            "api_url": os.environ.get("PREFECT_API_URL", "")}
    try:
        write_atomic(path, json.dumps(body).encode(), parents=True)
    except OSError:  # a read-only home must not stop a run: it only loses the crash mark
        yield
        return
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def orphaned(api_url: str | None = None) -> list[RunMarker]:
    """Markers whose process is gone, for runs on ``api_url`` (default: the current one)."""
    api = os.environ.get("PREFECT_API_URL", "") if api_url is None else api_url
    found: list[RunMarker] = []
    folder = markers_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            marker = RunMarker(str(data["run_id"]), int(data["pid"]), data.get("started"),
                               str(data.get("api_url", "")), path)
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing can be done with it
            continue
        if marker.api_url == api and not marker.alive:
            found.append(marker)
    return found
