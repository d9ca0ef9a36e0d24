"""The progress display of ``scan`` and ``install`` on a terminal: nodes done / total,
compliant / non-compliant / failed so far, nodes per second and time left, on one line that
rich redraws. Prefect's own log lines are hidden on a terminal (``-v`` shows them); piped
output gets the log lines and no display.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from rich.console import Console
from rich.live import Live
from rich.text import Text

from patchfleet.domain.records import NodeStatus
from patchfleet.ops.progress import watching

__all__ = ["Tally", "display", "quiet_prefect_console"]


class Tally:
    """Nodes recorded so far by status, and the line that shows them."""

    def __init__(self, total: int, verb: str, clock: float | None = None) -> None:
        self.total = total
        self.verb = verb
        self.started = time.monotonic() if clock is None else clock
        self.by_status: Counter[NodeStatus] = Counter()
        self._lock = threading.Lock()

    def add(self, node_id: str, status: NodeStatus) -> None:
        with self._lock:
            self.by_status[status] += 1

    @property
    def done(self) -> int:
        return sum(self.by_status.values())

    def line(self, now: float | None = None) -> str:
        """``scanned 40/120 nodes  ok 30  noncompliant 8  failed 2  3.1/s  ETA 0:26``."""
        elapsed = max((time.monotonic() if now is None else now) - self.started, 1e-9)
        done = self.done
        rate = done / elapsed
        eta = "--:--"
        if done and self.total > done:
            left = int((self.total - done) / rate)
            eta = f"{left // 60}:{left % 60:02d}"
        elif self.total and done >= self.total:
            eta = "0:00"
        return (f"{self.verb} {min(done, self.total)}/{self.total} nodes  "
                f"ok {self.by_status[NodeStatus.COMPLIANT]}  "
                f"noncompliant {self.by_status[NodeStatus.NON_COMPLIANT]}  "
                f"failed {self.by_status[NodeStatus.FAILED]}  {rate:.1f}/s  ETA {eta}")


def quiet_prefect_console(verbose: bool, console: Console) -> bool:
    """Hide Prefect's console log lines (below ERROR) on a terminal unless ``verbose``; the
    API still gets every log. Must run before Prefect configures logging. True when hidden."""
    if verbose or not console.is_terminal:
        return False
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "ERROR")
    return True


class _NoTraceback(logging.Formatter):
    """Prefect's console format without the traceback: one line per log record."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def one_line_prefect_errors() -> None:
    """Prefect's console log lines without tracebacks (``-v`` keeps them; the API still gets
    them in full). Call after Prefect has configured logging (importing a flow does)."""
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler" and not isinstance(
                handler.formatter, _NoTraceback):
            handler.setFormatter(_NoTraceback(handler.formatter or logging.Formatter()))


class _Renderable:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def __rich__(self) -> Text:
        return Text(self.tally.line(), overflow="ellipsis", no_wrap=True)


@contextmanager
def _live(console: Console, tally: Tally) -> Iterator[Tally]:
    with Live(_Renderable(tally), console=console, refresh_per_second=4, transient=False), \
            watching(tally.add):
        yield tally


def display(console: Console, total: int, verb: str, enabled: bool
            ) -> AbstractContextManager[object]:
    """The live progress line while the block runs (``enabled``: a terminal, no ``-v``)."""
    if not enabled:
        return nullcontext()
    return _live(console, Tally(total, verb))
