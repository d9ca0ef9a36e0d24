"""The one way patchfleet replaces a file: a reader sees the old file or the new one, never half.

:func:`stage` writes a temporary file beside the target (same folder, so the rename can't cross
filesystems) and flushes and fsyncs it; :func:`commit` renames it over the target with
``os.replace`` and fsyncs the folder so the rename itself survives a crash. :func:`write_atomic`
does both. Writers that must publish several files together (the compliance store) stage them
all first and commit them in their chosen order.

Temporary names are ``.<name>.<random>.tmp``: hidden, and never ending in the target's suffix, so
globs such as DuckDB's ``**/*.parquet`` don't pick up a half-written file. A failed write removes
its temporary file and leaves the target as it was. Errors are the ``OSError`` the system raised;
callers turn them into their own error with the fix. Stdlib only, importable from any layer that
may do I/O (not domain/ or parsers/).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["commit", "discard", "fsync_dir", "stage", "temp_path", "write_atomic"]


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target``: ``.<name>.<12 hex>.tmp``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def stage(target: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Create a temporary file beside ``target``, fill it with ``write(fh)``, flush and fsync
    it, and return its path. The target is not touched; on any error the temporary file is
    removed and the error re-raised."""
    tmp = temp_path(target)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        discard(tmp)
        raise
    return tmp


def commit(tmp: Path, target: Path) -> None:
    """Rename a staged file over ``target`` and fsync the folder. On failure the staged file is
    removed and ``target`` is unchanged."""
    try:
        os.replace(tmp, target)
    except BaseException:
        discard(tmp)
        raise
    fsync_dir(target.parent)


def write_atomic(target: Path, data: str | bytes, *, parents: bool = False) -> None:
    """Replace ``target`` with ``data`` (text is written as UTF-8, newlines untouched).

    ``parents``: create missing parent folders first."""
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    commit(stage(target, lambda fh: fh.write(payload)), target)


def discard(tmp: Path) -> None:
    """Remove a staged file that will not be committed (a missing one is fine)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Best effort: some filesystems can't fsync a folder,
    and the rename is atomic without it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
