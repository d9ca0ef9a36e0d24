"""fetch_text on local paths, file:// URLs and an unreachable https URL (no server; http and S3
against real servers on loopback: tests/integration/test_fetch_servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.config.fetch import fetch_text
from patchfleet.errors import ConfigError

DOC = "patches:\n  - id: 'kernel.x86_64'\n"


def test_local_path_and_file_url(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text(DOC)
    assert fetch_text(str(f)) == (DOC, str(f))
    assert fetch_text(f)[0] == DOC
    assert fetch_text(f"file://{f}")[0] == DOC


def test_local_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        fetch_text(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="directory"):
        fetch_text(str(tmp_path))
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(ConfigError, match="larger than 10 bytes"):
        fetch_text(str(big), max_bytes=10)
    assert fetch_text(str(big), max_bytes=11)[0] == "x" * 11
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        fetch_text(str(binary))
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        fetch_text("ftp://host/list.yaml")


def test_https_connection_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot connect"):
        fetch_text("https://127.0.0.1:9/list.yaml", timeout=5)
