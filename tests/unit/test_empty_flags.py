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


@pytest.mark.parametrize(("args", "message"), [
    (["scan", "--snapshot-id", "../../x"], "--snapshot-id: '../../x'"),
    (["install", "--snapshot-id", "a/b", "--dry-run"], "--snapshot-id: 'a/b'"),
    (["scan", "--batch-size", "0"], "--batch-size: 0"),
    (["scan", "--concurrency", "0"], "--concurrency: 0"),
    (["scan", "--report-dir", "{file}"], "--report-dir"),
    (["install", "--reboot-option", "Sometimes", "--dry-run"], "--reboot-option: 'Sometimes'"),
])
def test_flags_are_checked_before_anything_is_created(
        args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 #9: these failed after Prefect started, or after the store was written."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    store = tmp_path / "store"
    result = runner.invoke(app, [*(a.format(file=a_file) for a in args), "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not store.exists() and not (tmp_path / "data").exists()


def test_query_on_a_store_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    """It exited 0 with no rows; a typo in --store looked like an empty fleet."""
    result = runner.invoke(app, ["query", "SELECT 1", "--store", str(tmp_path / "typo")])
    assert result.exit_code == 2, result.output
    assert "there is no compliance store at" in result.output
    assert not (tmp_path / "typo").exists()
