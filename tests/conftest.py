"""Shared fixtures: a real Prefect API for flow tests (one temporary server per session), and
``tests/cases`` on ``sys.path`` for the Python-built test data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchfleet.config import prefect_env

prefect_env.apply_defaults()

# Test data built in Python (facts of the test nodes' package sets): `import apt_facts`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "cases"))


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real, temporary Prefect server (SQLite) for the whole session.

    Starting it costs 10-25 s on this machine (reference/calibration.md), so tests share it.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=int(
            os.environ.get("PATCHFLEET_TEST_PREFECT_TIMEOUT", "180"))):
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real AWS API (S3, EC2, ...) on loopback, moto's server, for the whole session; its URL.

    moto keeps its state per process, so every test uses its own bucket names and EC2 tags.
    """
    pytest.importorskip("flask", reason="the moto S3 server needs moto[server]")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
