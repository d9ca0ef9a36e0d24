"""Reading the user's files (inventories, baselines, override lists, hooks) with one error form.

A missing or unreadable file is a :class:`ConfigError` naming the file, never a traceback. Files
are read up to :data:`MAX_CONFIG_BYTES`: a larger one is refused before it is parsed, so a
mistaken path (a log, a disk image) can't exhaust memory.
"""

from __future__ import annotations

from pathlib import Path

from patchfleet.errors import ConfigError

MAX_CONFIG_BYTES = 10 * 1024 * 1024
"""The largest configuration file patchfleet reads (10 MiB)."""


def too_large(source: str, max_bytes: int = MAX_CONFIG_BYTES) -> ConfigError:
    """The error for a file or document over ``max_bytes``."""
    return ConfigError(
        f"larger than {max_bytes // (1024 * 1024)} MiB, the limit for a configuration file; "
        "check the path, or split the file",
        source=source,
    )


def read_bounded_text(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The file's UTF-8 text with universal newlines (as ``Path.read_text``), reading at most
    ``max_bytes``. OS and decoding errors propagate for the caller's message; a larger file is
    a ConfigError."""
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(str(path), max_bytes)
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def read_text_file(path: Path, missing: str = "file not found") -> str:
    """The file's UTF-8 text. ``missing`` is the message (with its fix) for a missing file."""
    try:
        return read_bounded_text(path)
    except FileNotFoundError:
        raise ConfigError(missing, source=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", source=str(path)) from None
