"""S3 URIs as patchfleet accepts them (``--upload``, ``report_uri``): validation, pure.

Checked before any run starts, so a typo in a policy's ``report_uri`` fails at validation, not
after the scan. Messages never show credentials: a ``user:password@`` part is cut out first.
"""

from __future__ import annotations

import re
from typing import Final

from patchfleet.errors import ConfigError

__all__ = [
    "BAD_KEY_CHARS",
    "CREDENTIALS_HINT",
    "ENDPOINT_HINT",
    "URI_HELP",
    "normalize_s3_uri",
    "parse_s3_uri",
    "s3_uri",
    "strip_userinfo",
]

URI_HELP: Final = (
    "give s3://BUCKET or s3://BUCKET/PREFIX (for another S3 endpoint set AWS_ENDPOINT_URL_S3; "
    "credentials come from AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
)
ENDPOINT_HINT: Final = (
    "check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or endpoint_url in the AWS profile) and that "
    "the S3 server is running"
)
"""The fix for an S3 endpoint that can't be reached (the store's and the reports' messages)."""
CREDENTIALS_HINT: Final = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance "
    "role is available"
)
"""The fix for missing or refused AWS credentials."""
BAD_KEY_CHARS: Final = re.compile(r"[\s?#\\\x00-\x1f\x7f]")
"""Characters refused in an S3 key patchfleet builds (a prefix, a run id)."""
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def strip_userinfo(text: str) -> str:
    """``text`` without the ``user:password@`` part of any URL in it."""
    return _USERINFO.sub("", text)


def parse_s3_uri(uri: str, source: str = "--upload") -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket[/prefix]``; the prefix has no leading or trailing
    slash. Raises ConfigError naming ``source`` (the flag or parameter) and the fix."""
    shown = strip_userinfo(uri)
    if uri[:5].lower() != "s3://":
        raise ConfigError(f"{shown!r} is not an s3:// URI; {URI_HELP}", source=source)
    bucket, _, prefix = uri[5:].partition("/")
    if "@" in bucket or ":" in bucket:
        raise ConfigError(
            "credentials and ports don't belong in the URI; set the endpoint with "
            f"AWS_ENDPOINT_URL_S3 and the credentials with AWS_PROFILE; {URI_HELP}",
            source=source,
        )
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, dots and "
            f"hyphens); {URI_HELP}",
            source=source,
        )
    prefix = prefix.rstrip("/")
    if BAD_KEY_CHARS.search(prefix):
        raise ConfigError(
            f"the prefix {prefix!r} has a space, '?', '#', '\\' or a control character; "
            f"choose a prefix without them; {URI_HELP}",
            source=source,
        )
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigError(
            f"the prefix {prefix!r} has an empty, '.' or '..' part; write it as a/b/c",
            source=source,
        )
    return bucket, prefix


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def normalize_s3_uri(uri: str, source: str = "--upload") -> str:
    """The canonical form ``s3://bucket/prefix/`` (or ``s3://bucket/``), for ``uri_prefix``."""
    bucket, prefix = parse_s3_uri(uri, source)
    return s3_uri(bucket, f"{prefix}/" if prefix else "")
