"""A damaged Parquet file is left out of the views and named, not fatal to every query and scan
(issue 13 #13); `patchfleet store check` lists it and leftovers of killed runs, and
`--quarantine` moves them aside. On copies of the committed real v1 store."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.store.integrity import check_store
from patchfleet.store.query import ComplianceStore

V1 = Path(__file__).resolve().parents[1] / "cases" / "store" / "v1"
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two runs (the two v1 layouts) in one store."""
    root = tmp_path / "store"
    shutil.copytree(V1 / "initial", root)
    shutil.copytree(V1 / "boot_id", root, dirs_exist_ok=True)
    return root


def _damage(root: Path) -> Path:
    bad = next((root / "node_summaries").glob("**/run_id=v1-boot-id-scan/*.parquet"))
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])  # cut short
    return bad


def test_a_damaged_file_is_left_out_and_named(store: Path) -> None:
    bad = _damage(store)
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT DISTINCT run_id FROM node_summaries")
        assert rows == [("v1-initial-scan",)]
        assert list(cs.skipped) == [bad]
    result = runner.invoke(app, ["query", "SELECT count(*) FROM node_summaries", "--store",
                                 str(store), "-o", "csv"])
    assert result.exit_code == 0, result.output
    assert f"warning: left out {bad}" in result.output and "--quarantine" in result.output


def test_store_check_lists_and_quarantines(store: Path) -> None:
    bad = _damage(store)
    old_tmp = bad.parent / ".part-0.parquet.0123456789ab.tmp"
    old_tmp.write_bytes(b"half")
    stale = store / "_staging" / "run_id=killed"
    stale.mkdir(parents=True)
    hour_ago = time.time() - 7200
    for p in (old_tmp, stale):
        os.utime(p, (hour_ago, hour_ago))
    health = check_store(store)
    assert list(health.damaged) == [bad] and sorted(health.leftovers) == sorted([old_tmp, stale])

    listed = runner.invoke(app, ["store", "check", "--store", str(store)])
    assert listed.exit_code == 1
    assert "1 damaged, 2 leftover(s)" in listed.output and str(bad) in listed.output

    fixed = runner.invoke(app, ["store", "check", "--store", str(store), "--quarantine"])
    assert fixed.exit_code == 0, fixed.output
    assert (store / "_quarantine" / bad.relative_to(store)).is_file()
    assert not old_tmp.exists() and not stale.exists()
    again = runner.invoke(app, ["store", "check", "--store", str(store)])
    assert again.exit_code == 0 and "0 damaged, 0 leftover(s)" in again.output
    with ComplianceStore(store) as cs:
        assert cs.query("SELECT count(DISTINCT run_id) FROM patch_states")[1] == [(2,)]
        assert not cs.skipped


def test_a_fresh_tmp_file_of_a_running_run_is_not_a_leftover(store: Path) -> None:
    (store / "patch_states" / ".part-0.parquet.aaaaaaaaaaaa.tmp").write_bytes(b"writing")
    assert check_store(store).healthy
