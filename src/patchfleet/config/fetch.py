"""Read a small text document (an InstallOverrideList, a BaselineOverride) from where AWS allows it.

``fetch_text`` takes a local path, an ``https://`` URL (urllib; redirects only to https) or an
``s3://bucket/key`` URL (boto3 ``get_object``; boto3 itself honours ``AWS_ENDPOINT_URL`` and the
usual credential chain). Every failure is a :class:`~patchfleet.errors.ConfigError` naming the
source and the fix; a document larger than ``max_bytes`` is refused rather than truncated.
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchfleet.errors import ConfigError

__all__ = ["fetch_text"]

DEFAULT_MAX_BYTES = 1_000_000


def _too_big(source: str, max_bytes: int) -> ConfigError:
    return ConfigError(
        f"larger than {max_bytes} bytes; keep the document small or raise the limit", source=source
    )


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", source) from None


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(url: str, allow_http_loopback: bool) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_http_loopback and _is_loopback(parts.hostname)


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_http_loopback: bool) -> None:
        self.allow_http_loopback = allow_http_loopback

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if not _allowed(newurl, self.allow_http_loopback):
            raise ConfigError(
                f"redirected to {newurl}, which is not https; give the final https URL",
                source=req.full_url,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch_http(url: str, max_bytes: int, timeout: float, allow_http_loopback: bool) -> bytes:
    opener = urllib.request.build_opener(_SafeRedirect(allow_http_loopback))
    req = urllib.request.Request(url, headers={"User-Agent": "patchfleet"})
    try:
        with opener.open(req, timeout=timeout) as resp:
            data: bytes = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as err:
        raise ConfigError(
            f"HTTP {err.code} {err.reason}; check the URL and that it is readable", source=url
        ) from None
    except urllib.error.URLError as err:
        raise ConfigError(f"cannot connect: {err.reason}; check the URL", source=url) from None
    except TimeoutError:
        raise ConfigError(f"no answer within {timeout:g} s; check the URL", source=url) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err}", source=url) from None
    if len(data) > max_bytes:
        raise _too_big(url, max_bytes)
    return data


def _fetch_s3(url: str, max_bytes: int, client_factory: Callable[[], Any] | None) -> bytes:
    parts = urllib.parse.urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise ConfigError("an S3 URL needs a bucket and a key: s3://bucket/path/file", url)
    import botocore.exceptions

    if client_factory is None:
        import boto3

        def client_factory() -> Any:
            return boto3.client("s3")

    try:
        obj = client_factory().get_object(Bucket=bucket, Key=key)
        size = obj.get("ContentLength")
        if size is not None and size > max_bytes:
            raise _too_big(url, max_bytes)
        data: bytes = obj["Body"].read(max_bytes + 1)
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        hint = {
            "NoSuchKey": "the object does not exist; check the key",
            "NoSuchBucket": "the bucket does not exist; check its name",
            "AccessDenied": "access denied; grant s3:GetObject on the object",
            "403": "access denied; grant s3:GetObject on the object",
            "404": "not found; check the bucket and key",
        }.get(code, f"{code}: {err}")
        raise ConfigError(hint, source=url) from None
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            "no AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            source=url,
        ) from None
    except botocore.exceptions.BotoCoreError as err:
        raise ConfigError(f"cannot reach S3: {err}; check AWS_ENDPOINT_URL", source=url) from None
    if len(data) > max_bytes:
        raise _too_big(url, max_bytes)
    return data


def _fetch_file(path: str, max_bytes: int) -> bytes:
    p = Path(path).expanduser()
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory; give a file", source=str(p)) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", source=str(p)) from None
    if len(data) > max_bytes:
        raise _too_big(str(p), max_bytes)
    return data


def fetch_text(
    url_or_path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 30.0,
    s3_client_factory: Callable[[], Any] | None = None,
    allow_http_loopback: bool = False,
) -> tuple[str, str]:
    """Return ``(text, source)`` where ``source`` names what was read (for error messages).

    ``allow_http_loopback`` lets plain ``http://`` through for 127.0.0.1/::1/localhost only
    (tests and local mirrors); any other ``http://`` is refused.
    """
    source = str(url_or_path)
    scheme = urllib.parse.urlsplit(source).scheme if isinstance(url_or_path, str) else ""
    if scheme in ("http", "https"):
        if not _allowed(source, allow_http_loopback):
            raise ConfigError("plain http is not allowed; use an https:// or s3:// URL", source)
        data = _fetch_http(source, max_bytes, timeout, allow_http_loopback)
    elif scheme == "s3":
        data = _fetch_s3(source, max_bytes, s3_client_factory)
    elif scheme == "file":
        source = urllib.parse.unquote(urllib.parse.urlsplit(source).path)
        data = _fetch_file(source, max_bytes)
    elif scheme and len(scheme) > 1:
        raise ConfigError(
            f"unsupported URL scheme {scheme!r}; use a local path, https:// or s3://", source
        )
    else:
        data = _fetch_file(source, max_bytes)
    return _decode(data, source), source
