"""Publish a report folder to S3 (AWS or any S3-compatible endpoint) with boto3.

The endpoint, region and credentials come from boto3's own configuration, nothing of ours:
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (or ``endpoint_url`` in the profile) for MinIO,
Ceph, moto and friends; ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, SSO or
an instance role for credentials; ``AWS_REGION``/``AWS_DEFAULT_REGION``; ``AWS_MAX_ATTEMPTS`` and
``AWS_RETRY_MODE`` for retries.

Each file becomes the object ``PREFIX/<path in the folder>``: CSVs as ``text/csv;
charset=utf-8``, manifests as ``application/json``, the dashboard as ``text/html;
charset=utf-8``. The manifests must already name those
objects, so the folder is written with ``uri_prefix`` = :func:`normalize_s3_uri` of the target
(checked before anything is uploaded). Uploads go CSVs first and manifests last, so a manifest
never names an object this upload failed to write. Objects under the prefix that this upload does
not write (per-node files of nodes no longer reported) are left alone; the manifests don't name
them.

Layout of flow runs (:func:`run_report_uri`), the store's partitions again::

    REPORT_URI/date=YYYY-MM-DD/run_id=<run id>/all-nodes.csv
    REPORT_URI/date=YYYY-MM-DD/run_id=<run id>/manifest-all-nodes.json
    REPORT_URI/date=YYYY-MM-DD/run_id=<run id>/manifest-patches.json
    REPORT_URI/date=YYYY-MM-DD/run_id=<run id>/nodes/<node>-summary.csv, <node>-patches.csv

Credentials are never put in a message: errors are rebuilt from botocore's error codes and
exception types, and URLs lose any ``user:password@`` part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from patchfleet.domain.uris import (
    BAD_KEY_CHARS,
    CREDENTIALS_HINT,
    ENDPOINT_HINT,
    normalize_s3_uri,
    parse_s3_uri,
    s3_uri,
    strip_userinfo,
)
from patchfleet.errors import ConfigError, PublishError
from patchfleet.report.csv_reports import NODES_DIR

if TYPE_CHECKING:
    from patchfleet.report.csv_reports import ReportFiles

CONTENT_TYPES: Final = {".csv": "text/csv; charset=utf-8", ".json": "application/json",
                         ".html": "text/html; charset=utf-8"}



def run_report_uri(report_uri: str, run_id: str, run_day: date, source: str = "report_uri") -> str:
    """Where the reports of one run go: ``REPORT_URI/date=YYYY-MM-DD/run_id=<id>/``.

    The same Hive-style partitions as the compliance store, so runs never overwrite each other
    and a listing sorts by day.
    """
    base = normalize_s3_uri(report_uri, source)
    if not run_id or "/" in run_id or BAD_KEY_CHARS.search(run_id) or run_id in (".", ".."):
        raise ConfigError(f"run id {run_id!r} can't be part of an S3 key", source=source)
    return normalize_s3_uri(f"{base}date={run_day.isoformat()}/run_id={run_id}", source)


# --- upload -----------------------------------------------------------------------------------


def _report_files(folder: Path) -> list[Path]:
    """The report layout only (never everything under the folder: it may be a home directory)."""
    found = [*folder.glob("*.csv"), *folder.glob("*.json"), *folder.glob("*.html"),
             *(folder / NODES_DIR).glob("*.csv")]
    return sorted(p for p in found if p.is_file() and not p.name.startswith("."))


def _manifest_uris(path: Path) -> list[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        uris: list[str] = []
        for location in doc["fileLocations"]:
            uris.extend(location.get("URIs", []))
            uris.extend(location.get("URIPrefixes", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublishError(
            f"{path} is not a QuickSight manifest ({exc}): regenerate the report folder"
        ) from None
    return [str(u) for u in uris]


def _check_manifests(manifests: list[Path], published: set[str], base: str) -> None:
    for manifest in manifests:
        for uri in _manifest_uris(manifest):
            if uri not in published and not (uri.endswith("/") and uri.startswith(base)):
                raise PublishError(
                    f"{manifest} names {uri}, which this upload does not create: write the "
                    f"reports with uri_prefix={base!r} (patchfleet report --upload does this) "
                    "and publish the folder to that same URI"
                )


def _redact(text: str) -> str:
    return strip_userinfo(text)


def explain_s3_error(
    err: Exception, *, target: str, bucket: str, endpoint: str | None = None
) -> PublishError:
    """A PublishError saying what went wrong and how to fix it, for a boto3/botocore error.

    Built from the error code and type only, never from request details, so no credential can
    leak into the message.
    """
    import botocore.exceptions as bex

    where = f" at {_redact(endpoint)}" if endpoint else ""
    if isinstance(err, bex.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404"):
            return PublishError(
                f"bucket {bucket!r} does not exist{where}: create it (aws s3 mb s3://{bucket}) "
                "or fix the bucket name"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem"):
            return PublishError(
                f"access denied writing {target}{where}: grant s3:PutObject on "
                f"arn:aws:s3:::{bucket}/* (and kms:GenerateDataKey for a KMS-encrypted bucket) "
                "to the credentials in use"
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                    "InvalidToken", "TokenRefreshRequired"):  # fmt: skip
            return PublishError(
                f"the S3 endpoint{where} rejected the credentials ({code}): {CREDENTIALS_HINT}, "
                "with credentials valid for this endpoint"
            )
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"):
            return PublishError(
                f"bucket {bucket!r} is in another region ({code}): set AWS_REGION to the "
                "bucket's region"
            )
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout") or (
            isinstance(status, int) and status >= 500
        ):
            return PublishError(
                f"S3{where} is busy or failing ({code or status}): try again later",
                transient=True,
            )
        message = _redact(str(error.get("Message", "")))[:200]
        return PublishError(
            f"S3{where} refused to store {target} ({code}{': ' + message if message else ''}); "
            "check the bucket's policy and settings"
        )
    if isinstance(err, bex.NoCredentialsError | bex.PartialCredentialsError):
        return PublishError(f"no usable AWS credentials for S3: {CREDENTIALS_HINT}")
    if isinstance(err, bex.ProfileNotFound):
        profile = err.kwargs.get("profile", "")
        return PublishError(
            f"AWS profile {profile!r} is not configured: fix AWS_PROFILE or add the profile to "
            "~/.aws/config"
        )
    if isinstance(err, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ReadTimeoutError
                  | bex.ConnectionClosedError):  # fmt: skip
        url = endpoint or getattr(err, "kwargs", {}).get("endpoint_url") or "the S3 endpoint"
        return PublishError(
            f"cannot reach the S3 endpoint {_redact(str(url))}: {ENDPOINT_HINT}", transient=True
        )
    if isinstance(err, bex.NoRegionError):
        return PublishError("no AWS region for S3: set AWS_REGION or AWS_DEFAULT_REGION")
    if isinstance(err, bex.BotoCoreError):
        return PublishError(
            f"S3 upload of {target} failed ({type(err).__name__}: {_redact(str(err))[:200]}): "
            f"{ENDPOINT_HINT}"
        )
    return PublishError(f"S3 upload of {target} failed ({type(err).__name__})")


def _default_client() -> Any:
    import boto3

    # A new session per publish: boto3's default session keeps the credentials and settings it
    # found first, which a long-lived worker would otherwise never re-read.
    return boto3.session.Session().client("s3")


def publish_reports(
    folder: Path,
    uri: str,
    *,
    files: ReportFiles | Iterable[Path] | None = None,
    source: str = "--upload",
    s3_client_factory: Callable[[], Any] | None = None,
) -> list[str]:
    """Upload a report folder to ``uri`` (``s3://bucket[/prefix]``); return the object URIs,
    CSVs first, manifests last (the upload order).

    ``files`` limits the upload to the files one report wrote (a ``ReportFiles``); without it,
    the report layout under ``folder`` (``*.csv``, ``*.json``, ``*.html``, ``nodes/*.csv``).
    The folder must have been written with ``uri_prefix=normalize_s3_uri(uri)`` so its
    manifests name the uploaded objects; otherwise nothing is uploaded. Raises ConfigError for
    a bad ``uri`` (named by ``source``) and PublishError when S3 fails.
    """
    bucket, prefix = parse_s3_uri(uri, source)
    base = normalize_s3_uri(uri, source)
    folder = Path(folder)
    paths = _report_files(folder) if files is None else sorted({Path(p) for p in files})
    if not paths:
        raise PublishError(f"no report files in {folder}: write the reports before publishing")

    keys: dict[Path, str] = {}
    for path in paths:
        try:
            relative = path.relative_to(folder).as_posix()
        except ValueError:
            raise ValueError(f"{path} is not inside the report folder {folder}") from None
        if path.suffix not in CONTENT_TYPES:
            raise PublishError(f"{path} is not a report file (.csv, .json or .html); leave it "
                               "out")
        keys[path] = f"{prefix}/{relative}" if prefix else relative
    manifests = [p for p in paths if p.suffix == ".json"]
    ordered = [p for p in paths if p.suffix != ".json"] + manifests
    _check_manifests(manifests, {s3_uri(bucket, k) for k in keys.values()}, base)

    import botocore.exceptions as bex

    uploaded: list[str] = []
    endpoint: str | None = None
    current: Path | None = None
    try:
        client = (s3_client_factory or _default_client)()
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        for current in ordered:
            with open(current, "rb") as body:
                client.put_object(
                    Bucket=bucket,
                    Key=keys[current],
                    Body=body,
                    ContentType=CONTENT_TYPES[current.suffix],
                )
            uploaded.append(s3_uri(bucket, keys[current]))
    except (bex.BotoCoreError, bex.ClientError) as exc:  # before OSError: some are both
        target = s3_uri(bucket, keys[current]) if current is not None else base
        error = explain_s3_error(exc, target=target, bucket=bucket, endpoint=endpoint)
        raise _with_progress(error, uploaded, ordered) from None
    except OSError as exc:
        raise PublishError(
            f"can't read report file {current} ({exc.strerror or exc}): regenerate the report "
            "folder"
        ) from None
    return uploaded


def _with_progress(error: PublishError, uploaded: list[str], ordered: list[Path]) -> PublishError:
    if not uploaded:
        return error
    return PublishError(
        f"{error} ({len(uploaded)} of {len(ordered)} files were uploaded before the error, "
        "manifests last, so no uploaded manifest names a missing file; publish again once fixed)",
        transient=error.transient,
    )
