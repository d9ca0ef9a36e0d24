"""Reading an InstallOverrideList (the YAML text, from a file or as fetched from S3/https).

The model, its validation and how it selects versions are :mod:`patchfleet.domain.install_override`.
The YAML goes through the strict loader like every other file: a duplicate key is an error, but
unknown keys are ignored, as AWS ignores them in this file.
"""

from __future__ import annotations

from pathlib import Path

from patchfleet.config.files import read_text_file
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.install_override import InstallOverrideList, parse_install_override

__all__ = ["load_install_override", "parse_install_override_text"]


def parse_install_override_text(text: str, source: str) -> InstallOverrideList:
    """Parse the YAML text of an InstallOverrideList (as :func:`patchfleet.config.fetch.fetch_text`
    returns it)."""
    return parse_install_override(parse_yaml(text, source), source)


def load_install_override(path: str | Path) -> InstallOverrideList:
    """Read and validate an InstallOverrideList file."""
    p = Path(path).expanduser()
    return parse_install_override_text(read_text_file(p), str(p))
