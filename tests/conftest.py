"""Shared fixtures: a real Prefect API for flow tests (one temporary server per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from patchfleet import prefect_env

prefect_env.apply_defaults()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real, temporary Prefect server (SQLite) for the whole session.

    Starting it costs 10-25 s on this machine (reference/calibration.md), so tests share it.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=int(
            os.environ.get("PATCHFLEET_TEST_PREFECT_TIMEOUT", "180"))):
        yield
