"""Where patchfleet keeps data by default.

The compliance store is, in order: ``--store``, ``$PATCHFLEET_STORE``, then
``$XDG_DATA_HOME/patchfleet/store`` (``~/.local/share/patchfleet/store``); a local folder or
``s3://bucket/prefix`` (:class:`~patchfleet.store.location.StoreLocation` parses it). Reports of
a run go to ``<store>/reports/<run id>/`` unless ``--report-dir`` says otherwise; for a store on
S3 that is ``<data dir>/reports/<run id>/`` on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "PATCHFLEET_STORE"


def data_dir() -> Path:
    """``$XDG_DATA_HOME/patchfleet`` (``~/.local/share/patchfleet``)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "patchfleet"


def default_store_root() -> Path:
    return data_dir() / "store"


def store_setting(explicit: str | os.PathLike[str] | None) -> tuple[str, str]:
    """The store as the user gave it, and where it was given (for error messages): ``--store``,
    then ``$PATCHFLEET_STORE``, then the default folder."""
    if explicit is not None:  # "" too: StoreLocation.parse refuses it (not the default)
        return os.fspath(explicit), "--store"
    env = os.environ.get(STORE_ENV)
    if env:
        return env, STORE_ENV
    return str(default_store_root()), "default store"


def reports_dir(root: Path, run_id: str) -> Path:
    return root / "reports" / run_id
