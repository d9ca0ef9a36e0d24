"""Session fixtures that give integration tests real fleets of test nodes over SSH.

``fleet`` builds the cached layers if needed (``testnodes/testnodes.py build``; about a minute
from zero, instant afterwards), starts the Debian 12 nodes ``deb-a``, ``deb-b`` and ``deb-c`` on
free ports in a per-session state directory (so a session never sees what an earlier one
installed), writes a patchfleet inventory for them and stops them at the end. ``rpm_fleet`` does
the same for ``rocky-a`` (Rocky Linux 9, dnf), ``al-a`` (Amazon Linux 2023, dnf) and ``sles-a``
(SLES 15 SP6, zypper), in its own state directory with its own inventory and known_hosts. Any
test that uses either is marked ``nodes``. Root is required; without it the fixtures fail (CI
runs as root, and a silent skip would hide that the integration tests never ran).

Only the standard library and ``testnodes/testnodes.py`` are imported here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FLEET_NODES: dict[str, dict[str, str]] = {
    "deb-a": {"PatchGroup": "web"},
    "deb-b": {"PatchGroup": "web"},
    "deb-c": {"PatchGroup": "db"},
}
# node -> (testnodes variant, inventory tags)
RPM_FLEET_NODES: dict[str, tuple[str, dict[str, str]]] = {
    "rocky-a": ("rocky9", {"PatchGroup": "rhel"}),
    "al-a": ("al2023", {"PatchGroup": "amazon"}),
    "sles-a": ("sles15", {"PatchGroup": "suse"}),
}


def load_testnodes() -> ModuleType:
    """``testnodes/testnodes.py`` as a module (it is a script, not part of the package)."""
    if "testnodes" in sys.modules and hasattr(sys.modules["testnodes"], "Fleet"):
        return sys.modules["testnodes"]
    spec = importlib.util.spec_from_file_location("testnodes", REPO / "testnodes/testnodes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["testnodes"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def testnodes() -> ModuleType:
    """``testnodes/testnodes.py``, loaded once (tests that manage their own nodes use it)."""
    return load_testnodes()


@dataclass
class NodeFleet:
    """What the ``fleet`` and ``rpm_fleet`` fixtures yield.

    ``inventory`` is a patchfleet inventory YAML listing every node (tags ``PatchGroup``);
    ``ports`` maps node name to its sshd port on 127.0.0.1; ``identity_file`` and ``known_hosts``
    are what the inventory points at; ``variants`` maps node name to its testnodes variant.
    ``manager`` is the underlying ``testnodes.Fleet``.
    """

    manager: Any
    inventory: Path
    ports: dict[str, int]
    identity_file: Path
    known_hosts: Path
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.ports)

    def ssh(self, node: str, cmd: str, *, check: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the shell string ``cmd`` on ``node`` as root, host key verified."""
        return self.manager.ssh(node, cmd, check=check, timeout=timeout)

    def reboot(self, node: str) -> None:
        """Stop and start the node's namespaces: new boot id, empty /run, same disk and port."""
        self.ports[node] = self.manager.reboot(node)

    def rekey(self, node: str, *, trust: bool = False) -> str:
        """Give the node a new host key; known_hosts keeps the old one unless ``trust``."""
        return str(self.manager.rekey(node, trust=trust))

    def trust(self, node: str) -> None:
        """Put the node's current host key in known_hosts (undoes the effect of ``rekey``)."""
        self.manager.trust(node)

    def reset(self, node: str) -> None:
        """Back to the state the node started the session in (same name, port and host key)."""
        self.manager.reset(node)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marks on fixtures have no effect, so every test that uses the fleet is marked here.
    for item in items:
        if {"fleet", "rpm_fleet"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.nodes)


def _node_fleet(tmp_path_factory: pytest.TempPathFactory, state_name: str,
                nodes: dict[str, tuple[str, dict[str, str]]]) -> Iterator[NodeFleet]:
    """Build what ``nodes`` (name -> (variant, tags)) need, start them in a fresh state
    directory, yield them, stop them."""
    if os.geteuid() != 0:
        pytest.fail(
            "the `nodes` integration tests need root: test nodes are chroots with their own sshd "
            "in their own namespaces. Run pytest as root (CI does), or deselect them with "
            "-m 'not nodes'.",
            pytrace=False,
        )
    tn = load_testnodes()
    state = tmp_path_factory.mktemp(state_name)
    manager = tn.Fleet(state_dir=state, tie_to_parent=True)
    started: list[str] = []
    try:
        try:
            manager.build(sorted({variant for variant, _ in nodes.values()}))
            for name, (variant, tags) in nodes.items():
                manager.start(name, variant=variant, tags=tags)
                started.append(name)
        except tn.TestnodesError as err:
            pytest.fail(f"could not start the test nodes: {err}", pytrace=False)
        inventory = manager.write_inventory(state / "inventory.yaml", list(nodes))
        yield NodeFleet(
            manager=manager,
            inventory=inventory,
            ports={name: manager.port(name) for name in nodes},
            identity_file=manager.client_key,
            known_hosts=manager.known_hosts,
            tags={name: dict(tags) for name, (_, tags) in nodes.items()},
            variants={name: variant for name, (variant, _) in nodes.items()},
        )
    finally:
        for name in started:
            with contextlib.suppress(tn.TestnodesError):
                manager.stop(name)
        manager.close()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeFleet]:
    """Debian 12 nodes deb-a, deb-b (PatchGroup web) and deb-c (db), variant ``default``."""
    nodes = {name: ("default", tags) for name, tags in FLEET_NODES.items()}
    yield from _node_fleet(tmp_path_factory, "testnodes", nodes)


@pytest.fixture(scope="session")
def rpm_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeFleet]:
    """rocky-a (Rocky Linux 9, dnf), al-a (Amazon Linux 2023, dnf) and sles-a (SLES 15 SP6,
    zypper), fresh: every fake rpm at 1.0 with updates and advisories pending
    (``testnodes/rpmrepo.py``)."""
    yield from _node_fleet(tmp_path_factory, "rpm-testnodes", RPM_FLEET_NODES)


@pytest.fixture
def clean(fleet: NodeFleet) -> Iterator[NodeFleet]:
    """The Debian fleet, with every node reset to its start state after the test."""
    yield fleet
    for name in fleet.names:
        fleet.reset(name)


@pytest.fixture
def clean_rpm(rpm_fleet: NodeFleet) -> Iterator[NodeFleet]:
    """The rpm fleet, with every node reset to its start state after the test."""
    yield rpm_fleet
    for name in rpm_fleet.names:
        rpm_fleet.reset(name)
