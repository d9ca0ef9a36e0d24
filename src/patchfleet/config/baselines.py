"""Baseline files: the YAML form (one baseline per file), folders of them, and AWS JSON files.

The models and their validation are in :mod:`patchfleet.domain.baseline`, the AWS JSON mapping in
:mod:`patchfleet.domain.baseline_aws`; this module reads (and shapes for writing) the files. Every
problem is a ConfigError naming the file, and the field or line.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from patchfleet.config.files import read_text_file
from patchfleet.config.yaml_loader import load_yaml_file
from patchfleet.domain.baseline import Baseline, BaselineRegistry, OperatingSystem, parse_baseline
from patchfleet.domain.baseline_aws import baselines_from_aws_json
from patchfleet.domain.model_errors import short_repr
from patchfleet.errors import ConfigError

__all__ = [
    "baselines_from_file",
    "embedded_baselines_dir",
    "load_aws_json_file",
    "load_baseline",
    "load_baselines",
    "select_baseline",
    "to_yaml_data",
]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate one baseline YAML file."""
    p = Path(path).expanduser()
    data = load_yaml_file(p)
    if data is None:
        raise ConfigError(
            "the file is empty; a baseline needs at least 'name' and 'operating_system'",
            source=str(p),
        )
    return parse_baseline(data, str(p))


def load_baselines(directory: str | Path) -> BaselineRegistry:
    """Every ``*.yaml`` / ``*.yml`` file in ``directory`` (not recursive), one baseline each."""
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise ConfigError("is not a folder of baseline YAML files", source=str(d))
    files = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    registry = BaselineRegistry()
    for f in files:
        registry = registry.merged(BaselineRegistry([(load_baseline(f), str(f))]), replace=False)
    return registry


def embedded_baselines_dir() -> Path:
    """The predefined baselines: the repo's ``baselines/`` when running from a source checkout,
    else the copy installed as ``patchfleet/_data/baselines``."""
    repo = Path(__file__).resolve().parents[3]
    if (repo / "baselines").is_dir() and (repo / "pyproject.toml").is_file():
        return repo / "baselines"
    installed = importlib.resources.files("patchfleet").joinpath("_data", "baselines")
    if installed.is_dir():
        return Path(str(installed))
    raise ConfigError(
        "the predefined baselines are missing from this installation; reinstall patchfleet",
        source="patchfleet/_data/baselines",
    )


def _unique_keys(source: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A JSON object hook refusing a key given twice (json keeps the last one silently)."""
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise ConfigError(f"duplicate key {short_repr(key)} in a JSON object; keep only "
                                  "one of them", source=source)
            obj[key] = value
        return obj
    return build


def load_aws_json_file(path: str | Path) -> list[Baseline]:
    """Read a file of AWS baseline JSON (one object or a BaselineOverride array)."""
    p = Path(path).expanduser()
    text = read_text_file(p)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys(str(p)))
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}", source=str(p)
        ) from None
    except RecursionError:
        raise ConfigError(
            "JSON nested too deeply; a baseline needs only a few levels", source=str(p)
        ) from None
    return baselines_from_aws_json(data, str(p))


def baselines_from_file(path: Path) -> list[Baseline]:
    """The baselines of a file: AWS JSON (``*.json``) or one baseline in YAML."""
    if path.suffix.lower() == ".json":
        return load_aws_json_file(path)
    return [load_baseline(path)]


def select_baseline(
    registry: BaselineRegistry,
    operating_system: OperatingSystem | str,
    patch_group: str | None,
    patch_groups_map: Mapping[str, Mapping[str, str]] | None = None,
    explicit: str | Path | Baseline | Iterable[Baseline] | None = None,
) -> Baseline:
    """:meth:`BaselineRegistry.select`, where ``explicit`` may also name a baseline file (YAML,
    an AWS JSON object or a BaselineOverride array)."""
    if isinstance(explicit, Path) or (isinstance(explicit, str) and explicit not in registry):
        path = Path(explicit).expanduser()
        if path.is_file():
            return registry.select(operating_system, patch_group, patch_groups_map,
                                   explicit=baselines_from_file(path),
                                   explicit_source=str(explicit))
        if isinstance(explicit, Path) or explicit.endswith(_FILE_SUFFIXES) or "/" in explicit:
            raise ConfigError(
                "file not found; pass a baseline name or an existing baseline file",
                source=str(explicit),
            )
    return registry.select(operating_system, patch_group, patch_groups_map,
                           explicit=None if isinstance(explicit, Path) else explicit)


def to_yaml_data(b: Baseline) -> dict[str, Any]:
    """Baseline -> plain data for ``yaml.safe_dump`` (the baseline file format).

    Only the fields that were set (in the file or JSON it came from) are written, so a file
    read and written back keeps its shape; dates become ``YYYY-MM-DD`` strings.
    """
    data = b.model_dump(mode="json", exclude_unset=True)
    data.setdefault("name", b.name)
    data.setdefault("operating_system", b.operating_system.value)
    return data
