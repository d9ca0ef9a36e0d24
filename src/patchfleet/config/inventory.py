"""Reading a patchfleet inventory file (YAML) with the strict loader.

The model and its validation are :mod:`patchfleet.domain.inventory`; other node sources (Ansible,
EC2) and the dispatch between them are in :mod:`patchfleet.config.sources`.
"""

from __future__ import annotations

from pathlib import Path

from patchfleet.config.yaml_loader import load_yaml_file
from patchfleet.domain.inventory import Inventory, parse_inventory

__all__ = ["MISSING_INVENTORY", "load_inventory"]

MISSING_INVENTORY = "file not found; pass an existing inventory with --inventory"


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory YAML file."""
    p = Path(path).expanduser()
    return parse_inventory(load_yaml_file(p, MISSING_INVENTORY), str(p))
