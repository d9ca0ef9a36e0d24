"""Reading the user's files (inventories, baselines, override lists, hooks) with one error form.

A missing or unreadable file is a :class:`ConfigError` naming the file, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from patchfleet.errors import ConfigError


def read_text_file(path: Path, missing: str = "file not found") -> str:
    """The file's UTF-8 text. ``missing`` is the message (with its fix) for a missing file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(missing, source=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", source=str(path)) from None
