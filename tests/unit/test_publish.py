"""Publishing reports to S3 without a server: URI rules, the run layout, and how every S3 and
botocore error is explained (the uploads themselves: tests/integration/test_publish_s3.py)."""

from __future__ import annotations

import pickle
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_reports import T0  # the report tests' three-node fleet

from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.domain.uris import normalize_s3_uri, parse_s3_uri
from patchfleet.errors import ConfigError, PublishError
from patchfleet.report.publish import (
    explain_s3_error,
    publish_reports,
    run_report_uri,
)
from patchfleet.store.staging import StagingArea

SECRET = "pf-SECRET-must-never-show-0123456789"


def test_flow_task_refuses_a_bad_report_uri_before_writing(tmp_path: Path) -> None:
    from tasks.store import write_reports

    ctx = RunContext(run_id="run-a", operation=Operation.SCAN, started_at=T0)
    with pytest.raises(ConfigError, match=r"^report_uri: .*s3://BUCKET"):
        write_reports.fn(tmp_path, ctx, StagingArea.of(tmp_path, ctx.run_id), None,
                         report_uri="https://example.com/x")
    assert not (tmp_path / "reports").exists()


def test_run_layout() -> None:
    assert (
        run_report_uri("s3://b-1/a/b/", "0f1e-run", date(2024, 5, 1))
        == "s3://b-1/a/b/date=2024-05-01/run_id=0f1e-run/"
    )
    assert run_report_uri("s3://b-1", "r", date(2024, 5, 1)) == "s3://b-1/date=2024-05-01/run_id=r/"
    with pytest.raises(ConfigError, match="run id"):
        run_report_uri("s3://b-1", "../x", date(2024, 5, 1))


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://bucket.s3.amazonaws.com/x", "not an s3:// URI"),
        ("bucket/prefix", "not an s3:// URI"),
        ("s3://", "not a valid bucket name"),
        ("s3:///prefix", "not a valid bucket name"),
        ("s3://My_Bucket/x", "not a valid bucket name"),
        (f"s3://AKIA:{SECRET}@bucket/x", "credentials and ports don't belong"),
        ("s3://bucket:9000/x", "credentials and ports don't belong"),
        ("s3://bucket/a//b", "empty, '.' or '..' part"),
        ("s3://bucket/a/../b", "empty, '.' or '..' part"),
        ("s3://bucket/a b", "has a space"),
        ("s3://bucket/x?versionId=1", "has a space, '?'"),
    ],
)
def test_bad_uri_names_the_flag_and_the_fix(uri: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_s3_uri(uri, "--upload")
    message = str(caught.value)
    assert message.startswith("--upload: ") and problem in message
    assert "s3://BUCKET" in message or "a/b/c" in message
    assert SECRET not in message


def test_uri_forms() -> None:
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("S3://my.bucket-1/a/b=c/") == ("my.bucket-1", "a/b=c")
    assert normalize_s3_uri("s3://bucket") == "s3://bucket/"
    assert normalize_s3_uri("s3://bucket/a/b//") == "s3://bucket/a/b/"


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="no report files"):
        publish_reports(tmp_path, "s3://bucket/r")


def _client_error(code: str, status: int, message: str = "") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "says", "transient"),
    [
        (lambda: _client_error("AccessDenied", 403), "grant s3:PutObject on arn:aws:s3:::b/*",
         False),
        (lambda: _client_error("403", 403), "access denied", False),
        (lambda: _client_error("InvalidAccessKeyId", 403), "rejected the credentials", False),
        (lambda: _client_error("SignatureDoesNotMatch", 403), "AWS_SECRET_ACCESS_KEY", False),
        (lambda: _client_error("PermanentRedirect", 301), "set AWS_REGION", False),
        (lambda: _client_error("SlowDown", 503), "try again later", True),
        (lambda: _client_error("InternalError", 500), "try again later", True),
        (lambda: _client_error("InvalidStorageClass", 400, "bad class"),
         "InvalidStorageClass: bad class", False),
    ],
)  # fmt: skip
def test_every_s3_error_is_explained(error: Any, says: str, transient: bool) -> None:
    explained = explain_s3_error(error(), target="s3://b/k", bucket="b")
    assert isinstance(explained, PublishError) and says in str(explained)
    assert explained.transient is transient


def test_botocore_errors_are_explained_without_secrets() -> None:
    import botocore.exceptions as bex

    url = f"http://user:{SECRET}@127.0.0.1:9/b/k"
    cases = {
        bex.NoCredentialsError(): "no usable AWS credentials",
        bex.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"): "PROFILE",
        bex.ProfileNotFound(profile="prod"): "AWS profile 'prod' is not configured",
        bex.EndpointConnectionError(endpoint_url=url): "cannot reach the S3 endpoint http://127",
        bex.ConnectTimeoutError(endpoint_url=url): "AWS_ENDPOINT_URL_S3",
        bex.NoRegionError(): "set AWS_REGION",
        bex.SSLError(endpoint_url=url, error="bad cert"): "SSLError",
    }
    for err, says in cases.items():
        explained = explain_s3_error(err, target="s3://b/k", bucket="b", endpoint=url)
        assert says in str(explained), (err, explained)
        assert SECRET not in str(explained)


def test_publish_error_pickles_with_its_transience() -> None:
    error = pickle.loads(pickle.dumps(PublishError("cannot reach", transient=True)))
    assert isinstance(error, PublishError) and error.transient and str(error) == "cannot reach"
