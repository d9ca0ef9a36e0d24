"""Publishing reports to S3 against a real S3 API on loopback (moto's server), configured the way
users configure boto3: environment variables, no code-level endpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from s3_env import SECRET, aws_env, closed_port, report_fleet
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.errors import PublishError
from patchfleet.report.csv_reports import write_reports_from_results
from patchfleet.report.publish import normalize_s3_uri, parse_s3_uri, publish_reports
from patchfleet.store.staging import StagingArea, StagingWriter
from patchfleet.store.writer import write_run

_FLEET = report_fleet()
T0, results = _FLEET.T0, _FLEET.results
runner = CliRunner()



@pytest.fixture()
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """An S3 client of the loopback server, with the environment pointing boto3 at it."""
    import boto3

    aws_env(monkeypatch, moto_endpoint, tmp_path)
    return boto3.client("s3")


def _bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = "pf-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    s3.create_bucket(Bucket=name)
    return name


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}



def test_objects_equal_the_local_files_and_manifests_name_them(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bucket = _bucket(s3, request)
    uri = f"s3://{bucket}/patch/reports"
    files = write_reports_from_results(
        tmp_path / "out", results(), uri_prefix=normalize_s3_uri(uri)
    )
    uris = publish_reports(files.folder, uri, files=files)

    local = {f"patch/reports/{p.relative_to(files.folder).as_posix()}": p.read_bytes()
             for p in files}  # fmt: skip
    assert _objects(s3, bucket) == local
    assert len(local) == 2 + 1 + 2 * 3  # all-nodes + 2 manifests + summary/patches per node
    assert sorted(uris) == sorted(f"s3://{bucket}/{k}" for k in local)
    assert [u.rsplit("/", 1)[1] for u in uris[-2:]] == [
        "manifest-all-nodes.json",
        "manifest-patches.json",
    ]  # manifests last
    for key in local:
        head = s3.head_object(Bucket=bucket, Key=key)
        expected = "application/json" if key.endswith(".json") else "text/csv; charset=utf-8"
        assert head["ContentType"] == expected

    named: list[str] = []
    for manifest in ("manifest-all-nodes.json", "manifest-patches.json"):
        body = s3.get_object(Bucket=bucket, Key=f"patch/reports/{manifest}")["Body"].read()
        named += json.loads(body)["fileLocations"][0]["URIs"]
    assert named[0] == f"s3://{bucket}/patch/reports/all-nodes.csv"
    assert len(named) == 4
    for named_uri in named:
        named_bucket, key = parse_s3_uri(named_uri)
        assert named_bucket == bucket
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == local[key]


def test_bucket_root_and_folder_without_file_list(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bucket = _bucket(s3, request)
    folder = tmp_path / "out"
    write_reports_from_results(folder, results(), uri_prefix=normalize_s3_uri(f"s3://{bucket}"))
    (folder / "notes.txt").write_text("not a report file")
    (folder / ".all-nodes.csv.abc.tmp").write_text("left by a crash")
    uris = publish_reports(folder, f"s3://{bucket}/")
    assert len(uris) == 9
    assert set(_objects(s3, bucket)) == {u.removeprefix(f"s3://{bucket}/") for u in uris}
    assert "all-nodes.csv" in _objects(s3, bucket)


def _staged(root: Path, ctx: RunContext, nodes: list[Any]) -> StagingArea:
    """What a flow run's batches leave in its staging area."""
    area = StagingArea.of(root, ctx.run_id)
    StagingWriter(area, ctx, "test").write(nodes, range(len(nodes)))
    return area


def test_flow_task_uploads_each_run_under_its_own_prefix(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from tasks.store import write_reports

    bucket = _bucket(s3, request)
    ctx = RunContext(run_id="run-a", operation=Operation.SCAN, started_at=T0)
    staged = _staged(tmp_path, ctx, results())
    out = write_reports.fn(tmp_path, ctx, staged, None, report_uri=f"s3://{bucket}/fleet")
    base = f"s3://{bucket}/fleet/date=2024-05-01/run_id=run-a/"
    # a run's reports: the all-nodes CSV and its manifest (single-node reports are on demand)
    assert out["uris"] == [base + "all-nodes.csv", base + "manifest-all-nodes.json"]
    assert out["folder"] == str(tmp_path / "reports" / "run-a")
    manifest = json.loads((tmp_path / "reports" / "run-a" / "manifest-all-nodes.json").read_text())
    assert manifest["fileLocations"][0]["URIs"] == [base + "all-nodes.csv"]

    later = RunContext(run_id="run-b", operation=Operation.SCAN, started_at=T0)
    write_reports.fn(tmp_path, later, _staged(tmp_path, later, results()[:1]), None,
                     report_uri=f"s3://{bucket}/fleet")
    keys = set(_objects(s3, bucket))
    assert "fleet/date=2024-05-01/run_id=run-a/all-nodes.csv" in keys
    assert "fleet/date=2024-05-01/run_id=run-b/all-nodes.csv" in keys
    assert not [k for k in keys if "/nodes/" in k]

    plain = write_reports.fn(tmp_path, ctx, staged, str(tmp_path / "plain"))
    assert plain["uris"] == []
    local = json.loads((tmp_path / "plain" / "manifest-all-nodes-local.json").read_text())
    assert local["fileLocations"][0]["URIs"][0].startswith("file://")
    assert "upload only" in local["patchfleet_note"]  # a local folder: nothing to import


def test_missing_bucket_says_create_it(s3: Any, tmp_path: Path) -> None:
    uri = "s3://pf-no-such-bucket/r"
    files = write_reports_from_results(tmp_path, results(), uri_prefix=normalize_s3_uri(uri))
    with pytest.raises(PublishError, match=r"bucket 'pf-no-such-bucket' does not exist at "
                       r"http://127\.0\.0\.1:\d+: create it") as caught:  # fmt: skip
        publish_reports(files.folder, uri, files=files)
    assert not caught.value.transient
    assert SECRET not in str(caught.value)


def test_unreachable_endpoint_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env(monkeypatch, f"http://127.0.0.1:{closed_port()}", tmp_path)
    uri = "s3://pf-closed-port/r"
    files = write_reports_from_results(tmp_path, results(), uri_prefix=normalize_s3_uri(uri))
    start = time.monotonic()
    with pytest.raises(PublishError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:\d+"
                       r".*AWS_ENDPOINT_URL_S3") as caught:  # fmt: skip
        publish_reports(files.folder, uri, files=files)
    assert caught.value.transient
    assert SECRET not in str(caught.value)
    assert time.monotonic() - start < 30


def test_no_credentials_says_where_they_come_from(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env(monkeypatch, None, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    uri = "s3://pf-no-creds/r"
    files = write_reports_from_results(tmp_path, results(), uri_prefix=normalize_s3_uri(uri))
    with pytest.raises(PublishError, match=r"no usable AWS credentials.*AWS_PROFILE"):
        publish_reports(files.folder, uri, files=files)


def test_failure_midway_never_uploads_the_manifests(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The bucket disappears (for real, on the server) after two uploads."""
    bucket = _bucket(s3, request)
    sent: list[str] = []

    class DeletesBucketAfterTwo:
        meta = s3.meta

        def put_object(self, **kw: Any) -> Any:
            if len(sent) == 2:
                for key in sent:
                    s3.delete_object(Bucket=bucket, Key=key)
                s3.delete_bucket(Bucket=bucket)
            sent.append(kw["Key"])
            return s3.put_object(**kw)

    uri = f"s3://{bucket}/r"
    files = write_reports_from_results(tmp_path, results(), uri_prefix=normalize_s3_uri(uri))
    with pytest.raises(PublishError, match=r"does not exist.*2 of 9 files were uploaded"):
        publish_reports(files.folder, uri, files=files, s3_client_factory=DeletesBucketAfterTwo)
    assert len(sent) == 3 and not any(k.endswith(".json") for k in sent)


def test_manifests_naming_other_files_upload_nothing(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bucket = _bucket(s3, request)
    files = write_reports_from_results(tmp_path, results())  # file:// manifests
    with pytest.raises(PublishError, match=f"uri_prefix='s3://{bucket}/r/'"):
        publish_reports(files.folder, f"s3://{bucket}/r", files=files)
    files = write_reports_from_results(tmp_path, results(), uri_prefix=f"s3://{bucket}/other/")
    with pytest.raises(PublishError, match="which this upload does not create"):
        publish_reports(files.folder, f"s3://{bucket}/r", files=files)
    assert _objects(s3, bucket) == {}


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_report_upload(s3: Any, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    bucket = _bucket(s3, request)
    store = tmp_path / "store"
    write_run(store, RunContext("run-a", Operation.SCAN, T0), results())
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "rep"),
                                 "--upload", f"s3://{bucket}/weekly/"])  # fmt: skip
    assert result.exit_code == 0, result.output
    uploaded = [line.removeprefix("uploaded ") for line in result.stdout.splitlines()
                if line.startswith("uploaded ")]  # fmt: skip
    assert len(uploaded) == 9 and uploaded[-1] == f"s3://{bucket}/weekly/manifest-patches.json"
    objects = _objects(s3, bucket)
    assert {f"s3://{bucket}/{k}" for k in objects} == set(uploaded)
    for path in (tmp_path / "rep").rglob("*.*"):
        assert objects[f"weekly/{path.relative_to(tmp_path / 'rep').as_posix()}"] == (
            path.read_bytes()
        )
    manifest = json.loads(objects["weekly/manifest-all-nodes.json"])
    assert manifest["fileLocations"][0]["URIs"] == [f"s3://{bucket}/weekly/all-nodes.csv"]
    assert SECRET not in result.output


def test_cli_report_html_is_uploaded_with_the_csvs(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bucket = _bucket(s3, request)
    store = tmp_path / "store"
    write_run(store, RunContext("run-a", Operation.SCAN, T0), results())
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "rep"),
                                 "--node", results()[0].node_id, "--html",
                                 "--upload", f"s3://{bucket}/dash"])  # fmt: skip
    assert result.exit_code == 0, result.output
    uploaded = [line.removeprefix("uploaded ") for line in result.stdout.splitlines()
                if line.startswith("uploaded ")]  # fmt: skip
    page = f"s3://{bucket}/dash/dashboard.html"
    assert page in uploaded and uploaded[-1].endswith(".json")  # manifests still last
    head = s3.head_object(Bucket=bucket, Key="dash/dashboard.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    body = s3.get_object(Bucket=bucket, Key="dash/dashboard.html")["Body"].read()
    assert body == (tmp_path / "rep" / "dashboard.html").read_bytes()
    assert body.startswith(b"<!DOCTYPE html>")


def test_cli_report_upload_errors(s3: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_run(store, RunContext("run-a", Operation.SCAN, T0), results())
    bad = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "bad"),
                              "--upload", "s3:/bucket/x"])  # fmt: skip
    assert bad.exit_code == 2
    assert "--upload" in bad.output and "s3://BUCKET" in bad.output
    assert not (tmp_path / "bad").exists()

    missing = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "m"),
                                  "--upload", "s3://pf-cli-missing/x"])  # fmt: skip
    assert missing.exit_code == 1
    assert "does not exist" in missing.output and "create it" in missing.output
    assert SECRET not in missing.output
