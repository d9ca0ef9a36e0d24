"""Reading a patchfleet inventory file (YAML) with the strict loader.

The model and its validation are :mod:`patchfleet.domain.inventory`; other node sources (Ansible,
EC2) and the dispatch between them are in :mod:`patchfleet.config.sources`.
"""

from __future__ import annotations

from pathlib import Path

from patchfleet.config.files import read_text_file
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.inventory import Inventory, parse_inventory

__all__ = ["MISSING_INVENTORY", "load_inventory"]

MISSING_INVENTORY = "file not found; pass an existing inventory with --inventory"


# The last inventories read, by path and exact content: `patchfleet scan` plans the run before
# it starts Prefect (bad input fails fast) and the flow plans it again in the same process; a
# 10,000-node inventory takes seconds to parse. Inventories are frozen models.
_RECENT: dict[tuple[str, str], Inventory] = {}
_RECENT_MAX = 4


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory YAML file (the file is read every time; an unchanged one
    is not parsed again)."""
    p = Path(path).expanduser()
    text = read_text_file(p, MISSING_INVENTORY)
    key = (str(p), text)
    inventory = _RECENT.get(key)
    if inventory is None:
        inventory = parse_inventory(parse_yaml(text, str(p)), str(p))
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = inventory
    return inventory
