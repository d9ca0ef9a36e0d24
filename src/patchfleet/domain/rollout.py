"""Rate control: how many nodes run at once and how many errors stop a run (spec §6, §7).

``MaxConcurrency`` and ``MaxErrors`` are a number (``"10"``) or a percentage of the targets
(``"10%"``). patchfleet resolves a percentage against the number of targets with one rule,
the one AWS documents for its percentage rate controls (CloudFormation StackSets; SSM documents
none):

- ``floor(total * p / 100)``, computed in integers so no float rounding creeps in;
- for MaxConcurrency, never below 1 (a run always makes progress): 10% of 5 nodes is 1;
- for MaxErrors, 0 is a valid result: 10% of 5 nodes is 0, so the first error stops the run.
  Rounding down errs on the side of stopping early, which is what an error budget is for.

MaxErrors ``N`` means: stop starting nodes once the error count *exceeds* N (AWS: "3 means stop
sending after the 4th error arrives"). Nodes already running finish and may report more errors;
the nodes never started are reported NOT_ATTEMPTED. :class:`Rollout` is that state machine, pure:
the caller runs the nodes and reports back.

A maintenance window with CutoffBehavior ``CANCEL_TASK`` gives the rollout a deadline (the
window's cutoff, an aware wall-clock instant). From then on no node starts
(:meth:`Rollout.halt` with ``timed_out=True``: the nodes never started are TIMED_OUT, not
NOT_ATTEMPTED), and nodes in progress stop at their next safe point; :func:`deadline_passed`,
:func:`seconds_left` and :func:`cutoff_reason` are the pure pieces of that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from patchfleet.domain.model_errors import short_repr
from patchfleet.errors import ConfigError

__all__ = [
    "TIMED_OUT_PREFIX",
    "NodeOutcome",
    "NodeRunState",
    "Rate",
    "RateControl",
    "Rollout",
    "cutoff_reason",
    "deadline_passed",
    "is_timed_out",
    "parse_rate",
    "patch_now_defaults",
    "seconds_left",
    "simulate",
]

MAX_CONCURRENCY = "max_concurrency"
MAX_ERRORS = "max_errors"
_RATE_RE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """A MaxConcurrency or MaxErrors value: ``value`` nodes, or ``value`` percent of them."""

    value: int
    percent: bool = False
    minimum: int = 0

    def resolve(self, total: int) -> int:
        """The absolute number for ``total`` targets: ``floor(total * value / 100)`` for a
        percentage, never below ``minimum`` (1 for MaxConcurrency)."""
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        n = total * self.value // 100 if self.percent else self.value
        return max(self.minimum, n)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


_MAX_RATE_DIGITS = 7


def parse_rate(value: str | int, field: str) -> Rate:
    """Parse a MaxConcurrency / MaxErrors value: ``10``, ``"10"`` or ``"10%"``.

    ``field`` names the setting in errors; ``max_concurrency`` (or any name containing
    ``concurrency``) must be at least 1 (or 1%), percentages are 0–100 (1–100 for concurrency).
    """
    concurrency = "concurrency" in field.lower()
    low = 1 if concurrency else 0
    hint = "a number of nodes such as 10 or a percentage of the targets such as 10%" + (
        " (at least 1)" if concurrency else ""
    )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"expected {hint}, got {short_repr(value)}", field=field)
    if isinstance(value, int):
        number, percent = value, False
    else:
        m = _RATE_RE.match(value)
        if not m:
            raise ConfigError(f"{short_repr(value)} is not valid; use {hint}", field=field)
        if len(m.group(1)) > _MAX_RATE_DIGITS:  # AWS: at most 7 characters
            raise ConfigError(f"{short_repr(value)} is too large; use at most "
                              f"{'9' * _MAX_RATE_DIGITS} nodes, or a percentage", field=field)
        number, percent = int(m.group(1)), bool(m.group(2))
    if number > 10**_MAX_RATE_DIGITS - 1:
        raise ConfigError(f"{short_repr(number)} is too large; use at most "
                          f"{'9' * _MAX_RATE_DIGITS} nodes, or a percentage", field=field)
    if number < low:
        unit = "%" if percent else ""
        raise ConfigError(
            f"{number}{unit} is too low; use at least {low}{unit}"
            + (" so the run makes progress" if concurrency else ""),
            field=field,
        )
    if percent and number > 100:
        raise ConfigError(
            f"{number}% is above 100%; use a percentage from {low}% to 100%", field=field
        )
    return Rate(number, percent, minimum=1 if concurrency else 0)


@dataclass(frozen=True, slots=True)
class RateControl:
    """A MaxConcurrency / MaxErrors pair, resolved together against one target count."""

    max_concurrency: Rate
    max_errors: Rate

    def resolve(self, total: int) -> tuple[int, int]:
        return self.max_concurrency.resolve(total), self.max_errors.resolve(total)


_SCAN_ONLY = RateControl(Rate(1000, minimum=1), Rate(1000))
# (largest total of the tier, concurrency, errors), spec §7 "Scan and install".
_INSTALL_TIERS: tuple[tuple[int | None, Rate, Rate], ...] = (
    (24, Rate(1, minimum=1), Rate(1)),
    (100, Rate(5, percent=True, minimum=1), Rate(5)),
    (1000, Rate(8, percent=True, minimum=1), Rate(10)),
    (None, Rate(10, percent=True, minimum=1), Rate(10)),
)


def patch_now_defaults(total: int, operation: str) -> RateControl:
    """AWS "Patch now" built-in rate control for ``total`` target nodes.

    ``operation`` is ``SCAN`` / ``Scan`` (1,000 nodes at a time, 1,000 errors) or ``INSTALL`` /
    ``Install`` (Scan and install: the tiers of spec §7).
    """
    op = operation.upper()
    if op == "SCAN":
        return _SCAN_ONLY
    if op != "INSTALL":
        raise ConfigError(
            f"unknown operation {operation!r}; use Scan or Install", field="operation"
        )
    for upto, concurrency, errors in _INSTALL_TIERS:
        if upto is None or total <= upto:
            return RateControl(concurrency, errors)
    raise AssertionError("unreachable: the last tier has no upper bound")


class NodeRunState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"
    TIMED_OUT = "TIMED_OUT"
    """Never started: the deadline (a CANCEL_TASK window's cutoff) passed first."""


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    node_id: str
    state: NodeRunState


class Rollout:
    """Which node may start next, under a concurrency limit and an error threshold.

    Nodes start in the order given. ``next_batch()`` says which may start now without changing
    anything; ``start()`` marks one running; ``start_next()`` does both. Once errors exceed
    ``max_errors`` (or :meth:`halt` is called, e.g. at a maintenance window's cutoff) nothing new
    starts; running nodes still finish, and :meth:`outcomes` reports the rest NOT_ATTEMPTED, or
    TIMED_OUT when what stopped the rollout first was ``halt(..., timed_out=True)``.
    """

    def __init__(
        self,
        node_ids: Iterable[str],
        max_concurrency: int | Rate,
        max_errors: int | Rate,
    ) -> None:
        self._order: tuple[str, ...] = tuple(node_ids)
        seen: set[str] = set()
        for node in self._order:
            if node in seen:
                raise ConfigError(f"node {node!r} is targeted twice; list each node once")
            seen.add(node)
        total = len(self._order)
        if isinstance(max_concurrency, Rate):
            max_concurrency = max_concurrency.resolve(total)
        if isinstance(max_errors, Rate):
            max_errors = max_errors.resolve(total)
        if max_concurrency < 1:
            raise ConfigError("must be at least 1", field=MAX_CONCURRENCY)
        if max_errors < 0:
            raise ConfigError("must be at least 0", field=MAX_ERRORS)
        self.max_concurrency = max_concurrency
        self.max_errors = max_errors
        self._state = dict.fromkeys(self._order, NodeRunState.PENDING)
        self._pending = list(self._order)
        self._running: set[str] = set()
        self.errors = 0
        self.halted_reason: str | None = None
        # what the nodes never started become: decided by whatever stopped the rollout first
        self._unstarted: NodeRunState | None = None

    @property
    def stopped(self) -> bool:
        """True once no further node may start: the error threshold was crossed, or halted."""
        return self.errors > self.max_errors or self.halted_reason is not None

    @property
    def threshold_crossed(self) -> bool:
        return self.errors > self.max_errors

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    @property
    def done(self) -> bool:
        """Nothing runs and nothing more will start."""
        return not self._running and (self.stopped or not self._pending)

    def next_batch(self) -> list[str]:
        """The nodes that may start now (free slots, in order); empty once stopped."""
        if self.stopped:
            return []
        free = self.max_concurrency - len(self._running)
        return self._pending[: max(0, free)]

    def start(self, node_id: str) -> None:
        if self._state.get(node_id) is not NodeRunState.PENDING:
            raise ValueError(f"node {node_id!r} is not pending (state {self._state.get(node_id)})")
        if self.stopped:
            raise ValueError(f"the rollout is stopped; node {node_id!r} must not start")
        if len(self._running) >= self.max_concurrency:
            raise ValueError(f"{self.max_concurrency} nodes already running")
        self._pending.remove(node_id)
        self._running.add(node_id)
        self._state[node_id] = NodeRunState.RUNNING

    def start_next(self) -> list[str]:
        batch = self.next_batch()
        for node in batch:
            self.start(node)
        return batch

    def finish(self, node_id: str, ok: bool) -> None:
        if node_id not in self._running:
            raise ValueError(f"node {node_id!r} is not running")
        self._running.remove(node_id)
        self._state[node_id] = NodeRunState.SUCCEEDED if ok else NodeRunState.FAILED
        if not ok:
            self.errors += 1
            if self.threshold_crossed and self._unstarted is None:
                self._unstarted = NodeRunState.NOT_ATTEMPTED

    def halt(self, reason: str, *, timed_out: bool = False) -> None:
        """Start nothing more (running nodes finish), e.g. a maintenance window's cutoff.

        With ``timed_out`` the nodes never started are TIMED_OUT (unless the error threshold
        stopped the rollout earlier: then they stay NOT_ATTEMPTED).
        """
        if self._unstarted is None:
            self._unstarted = NodeRunState.TIMED_OUT if timed_out else NodeRunState.NOT_ATTEMPTED
        self.halted_reason = self.halted_reason or reason

    def state(self, node_id: str) -> NodeRunState:
        st = self._state[node_id]
        if st is NodeRunState.PENDING and self.stopped:
            return self._unstarted or NodeRunState.NOT_ATTEMPTED
        return st

    def outcomes(self) -> tuple[NodeOutcome, ...]:
        """Every node in the order given; pending nodes of a stopped rollout are NOT_ATTEMPTED."""
        return tuple(NodeOutcome(n, self.state(n)) for n in self._order)

    def not_attempted(self) -> list[str]:
        return [n for n in self._order if self.state(n) is NodeRunState.NOT_ATTEMPTED]

    def timed_out(self) -> list[str]:
        return [n for n in self._order if self.state(n) is NodeRunState.TIMED_OUT]


TIMED_OUT_PREFIX = "TIMED_OUT: "
"""How every failure_reason caused by a deadline starts (AWS shows such invocations TIMED_OUT)."""


def is_timed_out(failure_reason: str | None) -> bool:
    """Whether a node's failure_reason (reasons joined by ``"; "``) includes a deadline's."""
    reason = failure_reason or ""
    return reason.startswith(TIMED_OUT_PREFIX) or f"; {TIMED_OUT_PREFIX}" in reason


def deadline_passed(deadline: datetime | None, now: datetime) -> bool:
    """Whether ``now`` is at or past ``deadline`` (None: no deadline). Both must be aware."""
    return deadline is not None and now >= deadline


def seconds_left(deadline: datetime | None, now: datetime) -> float | None:
    """Seconds from ``now`` until ``deadline``, never negative; None without a deadline."""
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds())


def cutoff_reason(deadline: datetime, what: str) -> str:
    """The failure_reason for work skipped at a CANCEL_TASK window's cutoff ``deadline``;
    ``what`` says what was skipped, e.g. ``"before this node started"``."""
    return (f"{TIMED_OUT_PREFIX}the maintenance window's cutoff passed at "
            f"{deadline.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} {what} (CutoffBehavior CANCEL_TASK)")


def simulate(
    node_ids: Sequence[str], max_concurrency: int, max_errors: int, failing: Iterable[str]
) -> Rollout:
    """Run a rollout where every running node finishes in start order; for docs and tests."""
    bad = set(failing)
    r = Rollout(node_ids, max_concurrency, max_errors)
    order: list[str] = []
    while not r.done:
        order += r.start_next()
        node = next(n for n in order if n in r.running)
        r.finish(node, node not in bad)
    return r
