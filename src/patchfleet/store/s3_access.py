"""Talking to the S3 endpoint of a compliance store: clients, the Arrow filesystem, errors.

Endpoint, region and credentials are boto3's own settings, resolved by a fresh boto3 session
each time (a long-lived worker sees a rotated key): ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` or ``endpoint_url`` in the profile for MinIO, Ceph, moto and friends;
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, SSO or an instance role;
``AWS_REGION``/``AWS_DEFAULT_REGION``. The Parquet files are read by pyarrow's S3 filesystem,
given what that session resolved, so both see the same endpoint and identity (its credentials
are frozen when a store is opened: a session kept open longer than temporary credentials live is
reopened to pick up new ones).

Every error becomes a :class:`StoreError` naming the bucket and the fix, rebuilt from botocore's
error codes and exception types only: no credential or request detail reaches a message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bex
import pyarrow.fs as pafs

from patchfleet.domain.uris import CREDENTIALS_HINT, ENDPOINT_HINT, strip_userinfo
from patchfleet.errors import StoreError
from patchfleet.store.location import StoreLocation

_AWS_HOSTS: Final = (".amazonaws.com", ".amazonaws.com.cn")

BOTO_ERRORS: Final = (bex.BotoCoreError, bex.ClientError)
"""What a boto3 call may raise; :func:`explain` turns each into a StoreError."""


class StoreBucket:
    """The bucket of one store on S3: a boto3 client of a fresh session (boto3's default session
    keeps what it read first), and that session's view of the endpoint and credentials."""

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        try:
            self._session = boto3.session.Session()
            self.client: Any = self._session.client("s3")
        except BOTO_ERRORS as exc:
            raise explain(exc, location, "open") from None
        self.endpoint: str | None = self.client.meta.endpoint_url

    def call(self, action: str, method: str, **kwargs: Any) -> Any:
        """``client.<method>(Bucket=..., **kwargs)``; errors become StoreError (``action``)."""
        try:
            return getattr(self.client, method)(Bucket=self.location.bucket, **kwargs)
        except BOTO_ERRORS as exc:
            raise explain(exc, self.location, action, self.endpoint) from None

    def list_pages(self, action: str, prefix: str, page_size: int | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Every ``list_objects_v2`` page of the keys under ``prefix`` (continuation tokens
        followed; ``page_size`` keys at most per page, S3's 1,000 by default); errors as
        :meth:`call`."""
        token: dict[str, Any] = {} if page_size is None else {"MaxKeys": page_size}
        while True:
            page: dict[str, Any] = self.call(action, "list_objects_v2", Prefix=prefix, **token)
            yield page
            if not page.get("IsTruncated"):
                return
            token = {**token, "ContinuationToken": page["NextContinuationToken"]}

    def attempt(self, action: str, method: str, tolerate: Collection[str],
                **kwargs: Any) -> tuple[Any, str]:
        """As :meth:`call`, but an error whose code is in ``tolerate`` (``NoSuchKey``, ...) comes
        back as ``(None, code)`` instead; a success as ``(response, "")``."""
        try:
            return getattr(self.client, method)(Bucket=self.location.bucket, **kwargs), ""
        except BOTO_ERRORS as exc:
            if (code := error_code(exc)) in tolerate:
                return None, code
            raise explain(exc, self.location, action, self.endpoint) from None

    def arrow_filesystem(self, region: str | None = None) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem on the same endpoint with the same (frozen) credentials;
        ``region`` is the bucket's own when a response told it."""
        parts = urlsplit(self.endpoint or "")
        options: dict[str, Any] = {
            "region": region or self.client.meta.region_name or "us-east-1"}
        if parts.hostname and not parts.hostname.endswith(_AWS_HOSTS):
            options["endpoint_override"] = parts.netloc.rpartition("@")[2]
            options["scheme"] = parts.scheme or "https"
        try:
            credentials = self._session.get_credentials()
        except BOTO_ERRORS as exc:
            raise explain(exc, self.location, "read", self.endpoint) from None
        if credentials is None:
            raise StoreError(f"no usable AWS credentials for compliance store {self.location}: "
                             f"{CREDENTIALS_HINT}")
        frozen = credentials.get_frozen_credentials()
        return pafs.S3FileSystem(access_key=frozen.access_key, secret_key=frozen.secret_key,
                                 session_token=frozen.token, **options)


def error_code(exc: Exception) -> str:
    """The S3 error code of a ClientError (``NoSuchKey``, ``404``, ...), else ``""``."""
    if isinstance(exc, bex.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def explain(err: Exception, location: StoreLocation, action: str,
            endpoint: str | None = None) -> StoreError:
    """A StoreError saying what failed while trying to ``action`` (read, write) the store at
    ``location``, and how to fix it."""
    where = f" at {strip_userinfo(endpoint)}" if endpoint else ""
    store, bucket = f"compliance store {location}", location.bucket
    if isinstance(err, bex.ClientError):
        code = error_code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return StoreError(f"bucket {bucket!r} of {store} does not exist{where}: create it "
                              f"(aws s3 mb s3://{bucket}) or fix --store / PATCHFLEET_STORE")
        if code in ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem"):
            return StoreError(
                f"access denied to {action} {store}{where}: grant s3:ListBucket on "
                f"arn:aws:s3:::{bucket} and s3:GetObject, s3:PutObject on "
                f"arn:aws:s3:::{bucket}/{location.key('*')} (and kms:GenerateDataKey, "
                "kms:Decrypt for a KMS-encrypted bucket) to the credentials in use")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                    "InvalidToken", "TokenRefreshRequired"):  # fmt: skip
            return StoreError(f"the S3 endpoint{where} rejected the credentials ({code}) for "
                              f"{store}: {CREDENTIALS_HINT}, with credentials valid for it")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"):
            return StoreError(f"bucket {bucket!r} of {store} is in another region ({code}): set "
                              "AWS_REGION to the bucket's region")
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout") or (
            isinstance(status, int) and status >= 500
        ):
            return StoreError(f"S3{where} is busy or failing ({code or status}) for {store}: "
                              "try again later")
        message = strip_userinfo(str(err.response.get("Error", {}).get("Message", "")))[:200]
        return StoreError(f"S3{where} refused to {action} {store} ({code}"
                          f"{': ' + message if message else ''}); check the bucket's policy")
    if isinstance(err, bex.NoCredentialsError | bex.PartialCredentialsError):
        return StoreError(f"no usable AWS credentials for {store}: {CREDENTIALS_HINT}")
    if isinstance(err, bex.ProfileNotFound):
        return StoreError(f"AWS profile {err.kwargs.get('profile', '')!r} is not configured: "
                          "fix AWS_PROFILE or add the profile to ~/.aws/config")
    if isinstance(err, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ReadTimeoutError
                  | bex.ConnectionClosedError):  # fmt: skip
        url = endpoint or getattr(err, "kwargs", {}).get("endpoint_url") or "the S3 endpoint"
        return StoreError(f"cannot reach the S3 endpoint {strip_userinfo(str(url))} of {store}: "
                          f"{ENDPOINT_HINT}")
    if isinstance(err, bex.NoRegionError):
        return StoreError(f"no AWS region for {store}: set AWS_REGION or AWS_DEFAULT_REGION")
    if isinstance(err, bex.BotoCoreError):
        return StoreError(f"S3 request to {action} {store} failed ({type(err).__name__}: "
                          f"{strip_userinfo(str(err))[:200]}): {ENDPOINT_HINT}")
    return StoreError(f"S3 request to {action} {store} failed ({type(err).__name__})")
