"""An empty value is bad input, never "use the default": ``-i ""`` once planned an install on
the controller itself, and ``--store ""`` wrote to the home store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchfleet.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("args", "flag"), [
    (["scan", "-i", ""], "--inventory"),
    (["install", "--inventory", " ", "--dry-run"], "--inventory"),
    (["scan", "--store", ""], "--store"),
    (["install", "--store", "", "--dry-run"], "--store"),
    (["scan", "--baselines-dir", ""], "--baselines-dir"),
    (["query", "SELECT 1", "--store", ""], "--store"),
])
def test_empty_values_are_refused_and_nothing_is_written(
        args: list[str], flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("PATCHFLEET_STORE", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{flag}: is empty" in result.output
    assert not (tmp_path / "data").exists()
