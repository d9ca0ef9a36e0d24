"""What the S3 integration tests share: a hermetic AWS environment, the report tests' fleet.

Only what :func:`aws_env` sets reaches boto3 (no user profile, config file or metadata service),
and the secret key is a marker the tests look for in every message they get.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import pytest

SECRET = "pf-SECRET-must-never-show-0123456789"
_REPO = Path(__file__).resolve().parents[2]


def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str | None, tmp_path: Path) -> None:
    """Point boto3 at ``endpoint`` (None: no endpoint and no credentials) and nothing else;
    the store and the data folder are the test's own too."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3",
                "PATCHFLEET_STORE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def report_fleet() -> Any:
    """The report unit tests' module, for their three-node fleet (``results``, ``T0``)."""
    path = _REPO / "tests" / "unit" / "test_reports.py"
    spec = importlib.util.spec_from_file_location("report_fleet_of_unit_tests", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def closed_port() -> int:
    """A loopback port nothing listens on (an unreachable endpoint)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
