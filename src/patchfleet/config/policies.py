"""Reading the deployments file (patch policies and maintenance windows) with the strict loader.

The models and their checks are :mod:`patchfleet.domain.policies`; this module reads the file and
runs those checks against the loaded baselines and inventories.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from patchfleet.config.files import read_bounded_text
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.baseline import BaselineRegistry
from patchfleet.domain.policies import (
    DeploymentsFile,
    InventoryLoader,
    check_deployments,
    parse_deployments,
)
from patchfleet.errors import ConfigError

__all__ = ["load_deployments", "validate_deployments"]


def load_deployments(path: str | Path) -> DeploymentsFile:
    """Read and validate a deployments file (schedules, windows, rate control)."""
    p = Path(path)
    try:
        text = read_bounded_text(p)
    except OSError as err:
        raise ConfigError(f"cannot read the deployments file: {err.strerror}; pass an existing "
                          "file", source=str(p)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"cannot read the deployments file: not UTF-8 text ({err.reason} at "
                          f"byte {err.start}); save it as UTF-8", source=str(p)) from None
    return parse_deployments(parse_yaml(text, str(p)), str(p))


def validate_deployments(path: str | Path, registry: BaselineRegistry,
                         inventory_loader: InventoryLoader,
                         now: datetime | None = None) -> list[str]:
    """Load and check a deployments file; raise ConfigError on the first error, return
    warnings (see :func:`patchfleet.domain.policies.check_deployments`). Hooks files must
    exist (relative paths from the working directory, as the worker resolves them)."""
    dep = load_deployments(path)
    hooks = [(f"policies[{i}].hooks", p.hooks) for i, p in enumerate(dep.policies)]
    hooks += [(f"windows[{i}].tasks[{j}].hooks", t.hooks) for i, w in enumerate(dep.windows)
              for j, t in enumerate(w.tasks)]
    for field, hook in hooks:
        if hook is not None and not Path(hook).expanduser().is_file():
            raise ConfigError(f"hooks file {hook!r} does not exist (relative paths are from "
                              f"the working directory, {Path.cwd()}); create it or fix the "
                              "path", source=dep.source, field=field)
    return check_deployments(dep, registry, inventory_loader, now)
