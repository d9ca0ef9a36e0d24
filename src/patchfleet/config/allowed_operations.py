"""Which operations this machine's runs may perform: ``PATCHFLEET_OPERATIONS``.

A deployment's ``operation`` parameter is a default the caller can override (``prefect
deployment run 'patch-nodes/patch-now' -p operation=Install``), so the pool a deployment sits in
does not by itself keep Installs off a scan worker. The worker's own environment does: a worker
started with ``PATCHFLEET_OPERATIONS=Scan`` refuses every run that asks for an Install, at once
and in one line, before any node is contacted. Unset (or empty) allows every operation, as
before. The value is a comma-separated list of ``Scan`` and ``Install`` (any case); anything
else refuses every run (a typo must not open the door it was meant to close).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from patchfleet.domain.requests import Operation
from patchfleet.errors import ConfigError

__all__ = ["ENV_VAR", "allowed_operations", "check_operations", "refusal"]

ENV_VAR = "PATCHFLEET_OPERATIONS"

_BY_NAME = {op.value.lower(): op for op in Operation}
_CHOICES = ", ".join(op.value for op in Operation)
_WHERE = {
    Operation.INSTALL: "the install pool: prefect deployment run 'patch-nodes/install-now'",
    Operation.SCAN: "the scan pool: prefect deployment run 'patch-nodes/patch-now'",
}
"""Where an operation refused here belongs (deployments/least-privilege/prefect.yaml)."""


def allowed_operations(environ: Mapping[str, str] | None = None) -> frozenset[Operation]:
    """The operations ``environ`` (default: this process's environment) allows; raises
    ConfigError naming the variable when its value holds something that is not an operation."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not raw:
        return frozenset(Operation)
    allowed = set()
    for part in raw.split(","):
        op = _BY_NAME.get(part.strip().lower())
        if op is None:
            raise ConfigError(
                f"{part.strip()!r} is not an operation; set it to a comma-separated list of "
                f"{_CHOICES} (e.g. {ENV_VAR}=Scan on a scan worker), or unset it to allow both",
                source=ENV_VAR)
        allowed.add(op)
    return frozenset(allowed)


def check_operations(operations: Iterable[Operation | str],
                     environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError (one line: the variable, its value and the fix) unless every one of
    ``operations`` is allowed here."""
    allowed = allowed_operations(environ)
    for operation in operations:
        op = Operation(operation)
        if op not in allowed:
            value = (os.environ if environ is None else environ).get(ENV_VAR, "")
            raise ConfigError(
                f"{ENV_VAR}={value.strip()} on this machine does not allow {op.value}: run it "
                f"on a worker whose {ENV_VAR} allows {op.value} ({_WHERE[op]}), or add "
                f"{op.value} to {ENV_VAR} here", source=ENV_VAR)


def refusal(operations: Iterable[Operation | str],
            environ: Mapping[str, str] | None = None) -> str | None:
    """The one-line refusal of :func:`check_operations`, or None when every operation is
    allowed (for flows that end a deployment run Failed with a message, not a traceback)."""
    try:
        check_operations(operations, environ)
    except ConfigError as err:
        return str(err)
    return None
