"""Where patchfleet keeps data by default.

The compliance store root is, in order: ``--store``, ``$PATCHFLEET_STORE``, then
``$XDG_DATA_HOME/patchfleet/store`` (``~/.local/share/patchfleet/store``). Reports of a run go
to ``<store>/reports/<run id>/`` unless ``--report-dir`` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "PATCHFLEET_STORE"


def default_store_root() -> Path:
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "patchfleet" / "store"


def store_root(explicit: str | os.PathLike[str] | None) -> Path:
    return Path(explicit).expanduser() if explicit else default_store_root()


def reports_dir(root: Path, run_id: str) -> Path:
    return root / "reports" / run_id
