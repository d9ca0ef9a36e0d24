"""`patchfleet query` is read-only in fact: every attack from the hardening issue fails with a
one-line error (exit 2) and leaves the store byte-identical, on a store of real Parquet files
(tests/cases/store/v1, written by an earlier patchfleet from real scans)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.errors import QueryError
from patchfleet.store.query import ComplianceStore

V1 = Path(__file__).resolve().parents[1] / "cases" / "store" / "v1" / "initial"
runner = CliRunner()


def _fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(V1, root)
    return root


ATTACKS = [
    "SELECT * FROM read_text('/etc/shadow')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('/tmp/**/*.parquet')",
    "COPY (SELECT 1) TO '/tmp/patchfleet-query-attack.csv'",
    "ATTACH '/tmp/patchfleet-query-attack.db' AS evil",
    "COPY (SELECT * REPLACE ('COMPLIANT' AS status) FROM node_summaries) TO '{store}/node_"
    "summaries' (FORMAT parquet, PARTITION_BY (date, run_id), OVERWRITE_OR_IGNORE)",
    "COPY (SELECT * FROM patch_states LIMIT 0) TO '{store}/patch_states' (FORMAT parquet, "
    "PARTITION_BY (date, run_id), OVERWRITE)",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "PRAGMA enable_profiling",
    "CREATE TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/patchfleet-query-attack.csv'",
    "SELECT 1; COPY (SELECT 1) TO '/tmp/patchfleet-query-attack.csv'",
    "",
    "   ",
    "SELEC * FROM node_summaries",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_attacks_fail_cleanly_and_change_nothing(store: Path, sql: str) -> None:
    before = _fingerprint(store)
    result = runner.invoke(app, ["query", sql.format(store=store), "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3, result.output
    assert _fingerprint(store) == before
    assert not list(Path("/tmp").glob("patchfleet-query-attack*"))


def test_reading_the_views_still_works(store: Path) -> None:
    result = runner.invoke(app, ["query", "WITH n AS (SELECT * FROM latest_node_summaries) "
                                 "SELECT count(*) FROM n", "--store", str(store), "-o", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "3"


def test_the_session_stays_locked(store: Path) -> None:
    """Through the library too (the notebooks' helper): no statement reopens the session."""
    with ComplianceStore(store) as cs:
        settings = dict(cs.query(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',"
            " 'lock_configuration', 'autoinstall_known_extensions', "
            "'autoload_known_extensions', 'allow_community_extensions')")[1])
        assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                            "autoinstall_known_extensions": "false",
                            "autoload_known_extensions": "false",
                            "allow_community_extensions": "false"}
        with pytest.raises(QueryError, match="SET statements are refused"):
            cs.query("SET enable_external_access = true")
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            cs.connection.sql("SELECT * FROM read_text('/etc/hostname')").fetchall()


def test_query_csv_output_neutralises_formulas(store: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT '=HYPERLINK(1)' AS a, '-2+3' AS b, 7 AS c",
                                 "--store", str(store), "-o", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "'=HYPERLINK(1),'-2+3,7"


def test_query_json_has_no_bare_nan(store: Path) -> None:
    """Issue 13 #15: NaN and infinities are null in JSON (bare NaN is not JSON)."""
    result = runner.invoke(app, ["query", "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, "
                                 "1.5 AS c", "--store", str(store), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.output and "Infinity" not in result.output
    assert json.loads(result.output) == [{"a": None, "b": None, "c": 1.5}]
