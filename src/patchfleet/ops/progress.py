"""Node-by-node progress of a run, for whoever watches in this process (the CLI's progress
display). Every node result recorded into a run's staging area is announced here; with no
watcher registered this costs one empty loop per node.

In-process only: a deployment run on a worker has no terminal, and its progress is the
Prefect logs and artifacts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from patchfleet.domain.records import NodeStatus
from patchfleet.domain.results import NodeResult
from patchfleet.ops.summary import RunSummary

__all__ = ["Watcher", "announce", "finished", "last_finished", "watching"]

Watcher = Callable[[str, NodeStatus], None]
"""Called with (node id, status) as each node's result is recorded."""

_watchers: list[Watcher] = []
_lock = threading.Lock()


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Register ``watcher`` for the duration of the block."""
    with _lock:
        _watchers.append(watcher)
    try:
        yield
    finally:
        with _lock:
            _watchers.remove(watcher)


def announce(result: NodeResult) -> None:
    """Tell the watchers that ``result`` was recorded."""
    for watcher in tuple(_watchers):
        watcher(result.node_id, result.summary.status)


_finished: list[RunSummary] = []


def finished(summary: RunSummary) -> None:
    """Record that a run's work is done (stored and reported), before Prefect is told: if the
    Prefect API fails after this, the CLI can still say what the run did."""
    with _lock:
        _finished[:] = [summary]


def last_finished() -> RunSummary | None:
    """The summary of the last run this process finished, if any."""
    with _lock:
        return _finished[0] if _finished else None
