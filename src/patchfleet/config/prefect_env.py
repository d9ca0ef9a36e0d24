"""Safe Prefect defaults, applied before Prefect is imported.

Measured on the project machine (reference/calibration.md): the ephemeral server can need more
than its default 20 s to start on a fresh home, the amplitude client would try to phone home on a
closed network, and per-task cache keys cost ~20 %. Values already set by the user win.
"""

from __future__ import annotations

import os

DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_UI_ENABLED": "false",
}


def apply_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
