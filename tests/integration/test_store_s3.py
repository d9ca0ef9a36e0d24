"""The compliance store on S3, against a real S3 API on loopback (moto's server), configured the
way users configure boto3 (environment variables, no code-level endpoint): the real writer, the
real readers (``ComplianceStore``, ``patchfleet query`` and ``report``) and a real scan."""

from __future__ import annotations

import io
import json
import re
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from s3_env import SECRET, aws_env, closed_port, report_fleet
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.domain.snapshot import Snapshot
from patchfleet.errors import StoreError
from patchfleet.report.csv_reports import write_reports_from_store
from patchfleet.store import object_store
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore
from patchfleet.store.s3_access import StoreBucket
from patchfleet.store.snapshot_files import load_snapshot, save_snapshot
from patchfleet.store.writer import check_writable, write_run

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()



_FLEET = report_fleet()
T0, results = _FLEET.T0, _FLEET.results
RUN_A = RunContext(run_id="run-a", operation=Operation.SCAN, started_at=T0)
RUN_B = RunContext(run_id="run-b", operation=Operation.INSTALL, started_at=T0 + timedelta(days=1),
                   snapshot_id="snap-1", reboot_option="NoReboot")



@pytest.fixture()
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """An S3 client of the loopback server, with the environment pointing boto3 at it."""
    import boto3

    aws_env(monkeypatch, moto_endpoint, tmp_path)
    return boto3.client("s3")


@pytest.fixture()
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = "pf-s3-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    s3.create_bucket(Bucket=name)
    return name


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in _keys(s3, bucket)}



def test_listing_follows_continuation_tokens(s3: Any, bucket: str) -> None:
    """Commit markers, audit entries and shard keys are listed page by page: every key of a
    prefix comes back, across pages, and none of a neighbouring prefix."""
    for i in range(7):
        s3.put_object(Bucket=bucket, Key=f"store/_commits/k{i}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="store/_commitsX/other", Body=b"x")
    pages = list(StoreBucket(StoreLocation.resolve(f"s3://{bucket}/store"))
                 .list_pages("read", "store/_commits/", page_size=3))
    assert [len(p.get("Contents", [])) for p in pages] == [3, 3, 1]
    assert sorted(o["Key"] for p in pages for o in p["Contents"]) == [
        f"store/_commits/k{i}" for i in range(7)]


def _two_runs(root: str | Path) -> None:
    write_run(root, RUN_A, results())
    write_run(root, RUN_B, results()[:2])


def _every_view(store: ComplianceStore) -> dict[str, Any]:
    return {view: store.query(f"SELECT * FROM {view} ORDER BY ALL")
            for view in ComplianceStore.VIEWS}


def test_two_runs_on_s3_answer_like_a_local_store(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}/fleet/store"
    local = tmp_path / "local"
    _two_runs(uri)
    _two_runs(local)

    assert _keys(s3, bucket) == [
        "fleet/store/_commits/run_id=run-a.json",
        "fleet/store/_commits/run_id=run-b.json",
        "fleet/store/fact_elements/date=2024-05-01/run_id=run-a/part-0.parquet",
        "fleet/store/fact_elements/date=2024-05-02/run_id=run-b/part-0.parquet",
        "fleet/store/fact_lists/date=2024-05-01/run_id=run-a/part-0.parquet",
        "fleet/store/fact_lists/date=2024-05-02/run_id=run-b/part-0.parquet",
        "fleet/store/node_summaries/date=2024-05-01/run_id=run-a/part-0.parquet",
        "fleet/store/node_summaries/date=2024-05-02/run_id=run-b/part-0.parquet",
        "fleet/store/patch_states/date=2024-05-01/run_id=run-a/part-0.parquet",
        "fleet/store/patch_states/date=2024-05-02/run_id=run-b/part-0.parquet",
    ]
    for key in _keys(s3, bucket):  # same files: schema, version and run id in the metadata
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            remote = pq.read_table(io.BytesIO(body))
            twin = pq.read_table(local / key.removeprefix("fleet/store/"))
            assert remote.schema.equals(twin.schema, check_metadata=True)
            assert remote.equals(twin)

    with ComplianceStore(uri) as remote_store, ComplianceStore(local) as local_store:
        answers = _every_view(remote_store)
        assert answers == _every_view(local_store)
        assert remote_store.root == uri
        assert len(answers["node_summaries"][1]) == 5
        columns, history = answers["compliance_history"]
        assert [row[columns.index("run_id")] for row in history] == ["run-a", "run-b"]
        _, types = remote_store.query(
            "SELECT typeof(date), typeof(run_id) FROM patch_states LIMIT 1")
        assert types == [("DATE", "VARCHAR")]
        # filters reach the dataset: a partition and a column
        assert remote_store.query(
            "SELECT count(*) FROM patch_states WHERE date = DATE '2024-05-02' AND "
            "run_id = 'run-b'") == local_store.query(
            "SELECT count(*) FROM patch_states WHERE date = DATE '2024-05-02' AND "
            "run_id = 'run-b'")

    marker = json.loads(_objects(s3, bucket)["fleet/store/_commits/run_id=run-b.json"])
    assert marker["run_id"] == "run-b" and marker["date"] == "2024-05-02"
    assert marker["schema_version"] == 2 and marker["written_at"].endswith("Z")
    files = marker["tables"]["patch_states"]["files"]
    assert [f["key"] for f in files] == [
        "patch_states/date=2024-05-02/run_id=run-b/part-0.parquet"]
    head = s3.head_object(Bucket=bucket, Key="fleet/store/" + files[0]["key"])
    assert files[0]["bytes"] == head["ContentLength"]
    assert marker["tables"]["node_summaries"]["rows"] == 2


def test_query_and_report_commands_read_the_s3_store(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}/p"
    local = tmp_path / "local"
    _two_runs(uri)
    _two_runs(local)
    sql = "SELECT node_id, status, reason FROM noncompliant_nodes ORDER BY node_id"
    remote = runner.invoke(app, ["query", "--store", uri, "-o", "json", sql])
    assert remote.exit_code == 0, remote.output
    twin = runner.invoke(app, ["query", "--store", str(local), "-o", "json", sql])
    assert json.loads(remote.stdout) == json.loads(twin.stdout) != []

    report = runner.invoke(app, ["report", "--store", uri, "--run-id", "run-a"])
    assert report.exit_code == 0, report.output
    folder = tmp_path / "xdg" / "patchfleet" / "reports" / "run-a"  # a local folder
    expected = write_reports_from_store(local, tmp_path / "expected", run_id="run-a")
    for path in expected:
        relative = path.relative_to(expected.folder)
        if path.suffix == ".csv":
            assert (folder / relative).read_bytes() == path.read_bytes(), relative


def test_a_run_without_its_commit_marker_is_invisible(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    """run-b's data files are in place (copied from a scratch store) but it has no marker: an
    upload that stopped before the commit."""
    uri = f"s3://{bucket}/store"
    write_run(uri, RUN_A, results())
    write_run(f"s3://{bucket}/scratch", RUN_B, results()[:2])
    for key in _keys(s3, bucket):
        if key.startswith("scratch/") and key.endswith(".parquet"):
            s3.copy_object(Bucket=bucket, Key=key.replace("scratch/", "store/", 1),
                           CopySource={"Bucket": bucket, "Key": key})
    assert "store/patch_states/date=2024-05-02/run_id=run-b/part-0.parquet" in _keys(s3, bucket)

    with ComplianceStore(uri) as store:
        assert store.query("SELECT DISTINCT run_id FROM patch_states")[1] == [("run-a",)]
        assert store.query("SELECT DISTINCT run_id FROM node_summaries")[1] == [("run-a",)]

    written = write_run(uri, RUN_B, results()[:2])  # the retry commits over the leftovers
    assert written.node_summaries_path == (
        f"s3://{bucket}/store/node_summaries/date=2024-05-02/run_id=run-b/part-0.parquet")
    assert written.rows == {"patch_states": written.rows["patch_states"], "node_summaries": 2,
                            "fact_elements": 0, "fact_lists": 0}
    with ComplianceStore(uri) as store:
        assert store.query("SELECT run_id, count(*) FROM node_summaries GROUP BY ALL "
                           "ORDER BY ALL")[1] == [("run-a", 3), ("run-b", 2)]


def test_empty_store_has_typed_views_and_sees_a_later_commit(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}"
    with ComplianceStore(uri) as store, ComplianceStore(tmp_path / "empty") as local:
        assert store.query("SELECT count(*) FROM latest_node_summaries")[1] == [(0,)]
        for table in ("patch_states", "node_summaries"):
            assert store.query(f"DESCRIBE {table}") == local.query(f"DESCRIBE {table}")
        write_run(uri, RUN_A, results())
        assert store.query("SELECT count(*) FROM node_summaries")[1] == [(3,)]
    assert "_commits/run_id=run-a.json" in _keys(s3, bucket)  # bucket root: no prefix


def test_a_committed_run_id_is_refused_and_nothing_changes(s3: Any, bucket: str) -> None:
    uri = f"s3://{bucket}/store"
    write_run(uri, RUN_A, results())
    before = _objects(s3, bucket)
    with pytest.raises(StoreError, match=r"run 'run-a' is already in the compliance store \(s3://"
                       + bucket + r"/store/_commits/run_id=run-a\.json\); history is never "
                       r"overwritten: use a new run id"):  # fmt: skip
        write_run(uri, RUN_A, results()[:1])
    assert _objects(s3, bucket) == before
    # Two writers racing on one run id: both pass the check, only one marker PUT succeeds.
    location = StoreLocation.parse(uri)
    marker = object_store.committed_runs(StoreBucket(location))[0][0]
    with pytest.raises(object_store.DuplicateRunError, match="history is never overwritten"):
        object_store._put_marker(StoreBucket(location), marker)
    assert _objects(s3, bucket) == before
    with pytest.raises(StoreError, match="looks like a number or a date"):
        write_run(uri, RunContext(run_id="20240501", operation=Operation.SCAN, started_at=T0),
                  results())
    assert _objects(s3, bucket) == before


def test_snapshots_live_in_the_bucket(s3: Any, bucket: str) -> None:
    location = StoreLocation.parse(f"s3://{bucket}/store")
    assert load_snapshot(location, "snap-1") is None
    snapshot = Snapshot(snapshot_id="snap-1", created_at=T0)
    assert save_snapshot(location, snapshot) == f"s3://{bucket}/store/snapshots/snap-1.json"
    assert load_snapshot(location, "snap-1") == snapshot
    s3.put_object(Bucket=bucket, Key="store/snapshots/bad.json", Body=b"{not json")
    with pytest.raises(StoreError, match=r"s3://.*/store/snapshots/bad\.json: unreadable "
                       "snapshot"):  # fmt: skip
        load_snapshot(location, "bad")


def test_writable_check_probes_and_cleans_up(s3: Any, bucket: str) -> None:
    check_writable(f"s3://{bucket}/store")
    assert _keys(s3, bucket) == []


def test_missing_bucket_says_create_it(s3: Any) -> None:
    uri = "s3://pf-s3-no-such-bucket/store"
    for attempt in (lambda: check_writable(uri), lambda: ComplianceStore(uri),
                    lambda: write_run(uri, RUN_A, results())):  # fmt: skip
        with pytest.raises(StoreError, match=r"bucket 'pf-s3-no-such-bucket' of compliance store "
                           r"s3://pf-s3-no-such-bucket/store does not exist at "
                           r"http://127\.0\.0\.1:\d+: create it") as caught:  # fmt: skip
            attempt()
        assert SECRET not in str(caught.value)


def test_unreachable_endpoint_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env(monkeypatch, f"http://127.0.0.1:{closed_port()}", tmp_path)
    start = time.monotonic()
    for attempt in (lambda: check_writable("s3://pf-closed/x"),
                    lambda: ComplianceStore("s3://pf-closed/x")):  # fmt: skip
        with pytest.raises(StoreError, match=r"cannot reach the S3 endpoint "
                           r"http://127\.0\.0\.1:\d+ of compliance store s3://pf-closed/x: "
                           r".*AWS_ENDPOINT_URL_S3") as caught:  # fmt: skip
            attempt()
        assert SECRET not in str(caught.value)
    assert time.monotonic() - start < 60


def test_no_credentials_says_where_they_come_from(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env(monkeypatch, None, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    with pytest.raises(StoreError, match=r"no usable AWS credentials for compliance store "
                       r"s3://pf-s3-no-creds: .*AWS_PROFILE"):  # fmt: skip
        check_writable("s3://pf-s3-no-creds")


@pytest.mark.parametrize(
    ("store", "code", "needle"),
    [
        ("s3://Bad_Bucket/x", 2, "--store: 'Bad_Bucket' is not a valid bucket name"),
        ("s3://user:pw@bucket/x", 2, "credentials and ports don't belong in the URI"),
        ("gs://bucket/x", 2, "a compliance store is a local folder or s3://BUCKET/PREFIX"),
        ("s3://pf-s3-cli-missing/x", 1, "bucket 'pf-s3-cli-missing' of compliance store"),
    ],
)
def test_cli_refuses_a_bad_store_before_scanning(
    s3: Any, tmp_path: Path, store: str, code: int, needle: str
) -> None:
    for argv in (["scan", "--no-refresh", "--store", store],
                 ["query", "--store", store, "SELECT 1"], ["report", "--store", store]):
        result = runner.invoke(app, argv)
        assert result.exit_code == code, (argv, result.output)
        assert needle in result.output, result.output
        assert "Traceback" not in result.output and SECRET not in result.output
        assert "user:pw" not in result.output
        assert not (tmp_path / "xdg" / "patchfleet" / "reports").exists()


def test_readme_snippet_reads_the_store_without_patchfleet(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's plain pyarrow + DuckDB recipe, run as printed (bucket and prefix swapped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Store on S3"):]
    snippet = section[section.index("```python") + len("```python"):]
    snippet = snippet[: snippet.index("```")].replace("my-bucket/compliance", f"{bucket}/c")
    write_run(f"s3://{bucket}/c", RUN_A, results())
    write_run(f"s3://{bucket}/scratch", RUN_B, results()[:2])
    s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key":
                   "scratch/node_summaries/date=2024-05-02/run_id=run-b/part-0.parquet"},
                   Key="c/node_summaries/date=2024-05-02/run_id=run-b/part-0.parquet")
    capsys.readouterr()
    exec(compile(textwrap.dedent(snippet), "README.md", "exec"), {})
    shown = capsys.readouterr().out
    assert "web-1" in shown and "run-a" in shown and "run-b" not in shown


def test_cli_scan_of_a_test_node_into_the_s3_store(
    prefect_api: None, fleet: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}/fleet"
    result = runner.invoke(app, ["scan", "-i", str(fleet.inventory), "-t", "deb-a", "--store",
                                 uri, "--snapshot-id", "snap-s3", "-o", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run_id = summary["run_id"]
    assert summary["store"] == uri
    assert summary["node_summaries_file"].startswith(f"{uri}/node_summaries/date=")
    assert summary["patch_states_file"].endswith(f"/run_id={run_id}/part-0.parquet")
    report = Path(summary["report_files"][0])
    assert report.parent == tmp_path / "xdg" / "patchfleet" / "reports" / run_id
    assert report.is_file()
    assert not list((tmp_path / "xdg" / "patchfleet").glob("_staging/run_id=*"))  # discarded
    assert f"fleet/_commits/run_id={run_id}.json" in _keys(s3, bucket)
    assert "fleet/snapshots/snap-s3.json" in _keys(s3, bucket)

    q = runner.invoke(app, ["query", "--store", uri, "-o", "json",
                            "SELECT node_id, status, missing_count, snapshot_id, run_id "
                            "FROM latest_node_summaries"])
    assert q.exit_code == 0, q.output
    assert json.loads(q.stdout) == [{"node_id": "deb-a", "status": "NON_COMPLIANT",
                                     "missing_count": 6, "snapshot_id": "snap-s3",
                                     "run_id": run_id}]


def test_a_committed_file_that_went_missing_is_an_error_not_fewer_rows(
    s3: Any, bucket: str
) -> None:
    uri = f"s3://{bucket}/store"
    write_run(uri, RUN_A, results())
    s3.delete_object(Bucket=bucket,
                     Key="store/patch_states/date=2024-05-01/run_id=run-a/part-0.parquet")
    with ComplianceStore(uri) as store, pytest.raises(StoreError) as caught:
        store.query("SELECT count(*) FROM patch_states")
    message = str(caught.value)
    assert message.startswith(f"query failed on store {uri}: ")
    assert "patch_states/date=2024-05-01/run_id=run-a/part-0.parquet" in message
    assert SECRET not in message


def test_facts_and_what_if_read_from_s3_as_from_a_local_store(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    """A store on S3 keeps the facts (schema v2) and a what-if reads them back as from a local
    folder: the same nodes, facts and verdict changes."""
    import asyncio

    from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
    from patchfleet.domain.inventory import Inventory, Node
    from patchfleet.ops.scan import ScanOptions, scan_nodes
    from patchfleet.ops.what_if import evaluate_stored
    from patchfleet.store.facts_reader import load_facts
    from patchfleet.transport import ReplayConnector

    registry = load_baselines(embedded_baselines_dir())
    results = []
    for family, case in (("apt", "debian12-host"), ("dnf", "rocky9-fresh")):
        nodes = Inventory(nodes=[Node(id=f"{case}-{i}") for i in range(2)]).resolved()
        connector = ReplayConnector.fleet(REPO / "tests" / "golden" / family / case)
        results += asyncio.run(scan_nodes(nodes, registry, ScanOptions(now=T0), connector))
    uri, local = f"s3://{bucket}/facts", tmp_path / "local"
    for root in (uri, local):
        write_run(root, RUN_A, results)
    with ComplianceStore(uri) as remote, ComplianceStore(local) as here:
        assert [n.facts for n in load_facts(remote, "run-a")] == [r.facts for r in results]
        assert (remote.query("SELECT * FROM package_facts ORDER BY ALL")
                == here.query("SELECT * FROM package_facts ORDER BY ALL"))
    other = {"DEBIAN": registry.get("example-debian-all-updates")}
    changes = [evaluate_stored(StoreLocation.resolve(str(root)), other, at=T0).patch_flips
               for root in (uri, local)]
    assert changes[0] == changes[1] and changes[0]
