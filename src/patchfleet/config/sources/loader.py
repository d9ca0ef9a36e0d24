"""``load_nodes_source(spec)``: one entry point for every kind of node source.

- ``ec2://REGION?tag:Env=prod&address=private&user=ec2-user``  EC2 discovery (sources.ec2)
- ``*.yaml`` / ``*.yml`` with a top-level ``all:`` key          Ansible YAML inventory
- ``*.yaml`` / ``*.yml`` otherwise                              patchfleet inventory (nodes:)
- ``*.ini`` or a file without an extension (``hosts``)          Ansible INI inventory

Anything else (another URL scheme, another extension) is a ConfigError that says what works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchfleet.config.ansible_inventory import parse_ansible_ini, parse_ansible_yaml
from patchfleet.config.files import read_bounded_text
from patchfleet.config.inventory import MISSING_INVENTORY
from patchfleet.config.sources.ec2 import load_ec2_inventory
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.inventory import Inventory, parse_inventory
from patchfleet.errors import ConfigError

SOURCES_HELP = ("use a patchfleet inventory (.yaml/.yml), an Ansible inventory (.ini, a file "
                "without extension, or YAML with 'all:'), or ec2://REGION?tag:KEY=VALUE")


def _read(p: Path) -> str:
    try:
        return read_bounded_text(p)
    except FileNotFoundError:
        raise ConfigError(MISSING_INVENTORY, source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError(f"is a directory; {SOURCES_HELP}", source=str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"is not UTF-8 text; {SOURCES_HELP}", source=str(p)) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", source=str(p)) from None


def load_nodes_source(
    spec: str, ec2_client_factory: Callable[[], Any] | None = None
) -> Inventory:
    """The inventory that ``spec`` (a path or an ``ec2://`` URL) describes."""
    if spec.startswith("ec2:"):
        return load_ec2_inventory(spec, ec2_client_factory)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", spec):
        raise ConfigError(f"unsupported URL scheme; {SOURCES_HELP}", source=spec)
    p = Path(spec).expanduser()
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", "", ".ini"):
        raise ConfigError(f"unknown inventory file type {suffix!r}; {SOURCES_HELP}",
                          source=str(p))
    text = _read(p)
    key = (str(p), text)
    inventory = _RECENT.get(key)
    if inventory is None:
        inventory = _parse_file(p, suffix, text)
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = inventory
    return inventory


# The last inventory files parsed, by path and exact content. `patchfleet scan` plans the run
# before it starts Prefect (so bad input fails fast) and the flow plans it again in the same
# process: a 10,000-node file takes seconds to parse. Inventories are frozen models.
_RECENT: dict[tuple[str, str], Inventory] = {}
_RECENT_MAX = 4


def _parse_file(p: Path, suffix: str, text: str) -> Inventory:
    if suffix in (".yaml", ".yml"):
        data = parse_yaml(text, str(p))
        if isinstance(data, dict) and "all" in data and "nodes" not in data:
            return parse_ansible_yaml(data, str(p))
        return parse_inventory(data, str(p))
    return parse_ansible_ini(text, str(p))
