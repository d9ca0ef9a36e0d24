"""The example files shipped in deployments/ stay valid."""

from __future__ import annotations

from pathlib import Path

from patchfleet.config.hooks import load_hooks_file
from patchfleet.config.inventory import load_inventory

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def test_example_inventory_loads() -> None:
    inv = load_inventory(DEPLOYMENTS / "inventory.example.yaml")
    assert [n.id for n in inv.nodes] == ["local", "web-1", "edge-7"]


def test_example_hooks_load() -> None:
    path = DEPLOYMENTS / "hooks.example.yaml"
    hooks = load_hooks_file(path)
    assert hooks.pre_install and hooks.post_install and hooks.on_exit
