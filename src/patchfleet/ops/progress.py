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

__all__ = ["Watcher", "announce", "watching"]

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
