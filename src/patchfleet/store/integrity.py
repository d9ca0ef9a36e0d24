"""Is a local compliance store readable: damaged Parquet files, leftovers of killed runs.

One damaged file (a disk error, a copy cut short, a hand edit) used to make every query and
every scan fail, because the views read ``<table>/**/*.parquet`` as one glob. Here each file is
checked cheaply (Parquet's ``PAR1`` magic at both ends and a footer length that fits the file),
so :class:`~patchfleet.store.query.ComplianceStore` can read the good files, name the bad ones,
and ``patchfleet store check --quarantine`` can move them aside. Leftovers of runs that were
killed (``.*.tmp`` files beside the data, ``_staging/run_id=*`` folders) are listed too: they are
invisible to the views, only space.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from patchfleet.store.schema import VIEW_TABLES
from patchfleet.store.staging import STAGING_DIR

__all__ = ["QUARANTINE_DIR", "StoreHealth", "check_store", "quarantine"]

QUARANTINE_DIR: Final = "_quarantine"
_MAGIC: Final = b"PAR1"
STALE_SECONDS: Final = 3600
"""A temporary file or staging folder untouched this long belongs to a run that died."""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What :func:`check_store` found: readable files per table, damaged ones with the reason,
    and leftovers of killed runs."""

    root: Path
    good: dict[str, list[Path]] = field(default_factory=dict)
    damaged: dict[Path, str] = field(default_factory=dict)
    leftovers: list[Path] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.damaged and not self.leftovers


def _problem(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet file, or None."""
    try:
        size = path.stat().st_size
        if size < 12:
            return f"{size} bytes: too short to be Parquet"
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-8, 2)
            tail = fh.read(8)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if head != _MAGIC or tail[4:] != _MAGIC:
        return "not a Parquet file (no PAR1 magic at its start and end): damaged or cut short"
    footer = int.from_bytes(tail[:4], "little")
    if footer <= 0 or footer > size - 12:
        return f"damaged Parquet footer (length {footer} in a {size}-byte file)"
    return None


def check_store(root: Path, now: float | None = None) -> StoreHealth:
    """Check every data file of a local store (cheap: a few bytes per file)."""
    now = time.time() if now is None else now
    health = StoreHealth(root=root)
    for table in VIEW_TABLES:
        files = sorted((root / table).glob("**/*.parquet")) if (root / table).is_dir() else []
        good = health.good.setdefault(table, [])
        for path in files:
            problem = _problem(path)
            if problem is None:
                good.append(path)
            else:
                health.damaged[path] = problem
        if (root / table).is_dir():
            health.leftovers.extend(
                p for p in (root / table).glob("**/.*.tmp") if _stale(p, now))
    staging = root / STAGING_DIR
    if staging.is_dir():
        health.leftovers.extend(p for p in staging.glob("run_id=*") if _stale(p, now))
    return health


def _stale(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def quarantine(health: StoreHealth) -> list[tuple[Path, Path | None]]:
    """Move damaged files to ``<store>/_quarantine/<their path>`` (outside every table, so
    the views never read them) and delete leftovers; ``(what, where it went or None)``."""
    done: list[tuple[Path, Path | None]] = []
    for path in health.damaged:
        target = health.root / QUARANTINE_DIR / path.relative_to(health.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        done.append((path, target))
    for path in health.leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        done.append((path, None))
    return done
