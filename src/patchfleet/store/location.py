"""Where a compliance store lives: a local folder, or ``s3://bucket/prefix`` on any S3 endpoint.

``--store`` and ``$PATCHFLEET_STORE`` take either. A value with a URL scheme must be ``s3://``
with a valid bucket and prefix (:func:`~patchfleet.domain.uris.parse_s3_uri`); anything else is a
ConfigError with the fix, raised before a node is scanned. Everything else is a local folder, as
it always was.

A store on S3 still needs a folder on this machine for what is only ever local (the reports of a
run, unless ``--report-dir`` says otherwise): :attr:`StoreLocation.work_dir`, the user's data
folder. For a local store it is the store itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from patchfleet.config.paths import data_dir, store_setting
from patchfleet.domain.uris import URI_HELP, parse_s3_uri, s3_uri, strip_userinfo
from patchfleet.errors import ConfigError

__all__ = ["StoreLocation", "StoreRoot", "s3_location"]

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A local store (``path``) or a store on S3 (``bucket`` and ``prefix``, no slashes around
    the prefix; empty for the bucket's root). Small and frozen: a Prefect task parameter."""

    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @classmethod
    def parse(cls, value: str | os.PathLike[str], source: str = "--store") -> StoreLocation:
        """``s3://bucket[/prefix]`` or a local folder; ConfigError (naming ``source``) for any
        other URL or a bad bucket or prefix."""
        text = os.fspath(value)
        if text[:3].lower() == "s3:" or _SCHEME.match(text):
            if text[:5].lower() != "s3://":
                raise ConfigError(
                    f"{strip_userinfo(text)!r}: a compliance store is a local folder or "
                    f"s3://BUCKET/PREFIX; {URI_HELP}",
                    source=source,
                )
            bucket, prefix = parse_s3_uri(text, source)
            return cls(bucket=bucket, prefix=prefix)
        if not text.strip():
            raise ConfigError("is empty: give a folder or s3://BUCKET/PREFIX", source=source)
        return cls(path=Path(text).expanduser())

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None) -> StoreLocation:
        """``--store``, else ``$PATCHFLEET_STORE``, else the default folder."""
        return cls.parse(*store_setting(explicit))

    @classmethod
    def of(cls, root: StoreRoot) -> StoreLocation:
        """``root`` as a location: unchanged if it is one, parsed if it is an ``s3://`` string,
        else a local folder taken as is."""
        if isinstance(root, StoreLocation):
            return root
        text = os.fspath(root)
        if text[:5].lower() == "s3://":
            return cls.parse(text, "store")
        return cls(path=Path(text))

    @property
    def is_s3(self) -> bool:
        return self.path is None

    @property
    def local(self) -> Path:
        """The folder of a local store (ValueError for a store on S3: a programming error)."""
        if self.path is None:
            raise ValueError(f"{self} is not a local store")
        return self.path

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix`` or the local folder, as users write it."""
        if self.path is not None:
            return str(self.path)
        return s3_uri(self.bucket, self.prefix).rstrip("/")

    @property
    def work_dir(self) -> Path:
        """The local folder for a run's local files: the store itself, or for a store on S3 the
        user's data folder."""
        return self.path if self.path is not None else data_dir()

    def key(self, relative: str) -> str:
        """The object key of ``relative`` (a path inside the store) in the bucket."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def uri_of(self, relative: str) -> str:
        return s3_uri(self.bucket, self.key(relative))

    def __str__(self) -> str:
        return self.uri


StoreRoot = str | os.PathLike[str] | StoreLocation
"""What the store's functions accept: a location, an ``s3://`` URI or a local folder."""


def s3_location(root: StoreRoot) -> StoreLocation | None:
    """``root`` as an S3 location, or None for a local store."""
    location = StoreLocation.of(root)
    return location if location.is_s3 else None
