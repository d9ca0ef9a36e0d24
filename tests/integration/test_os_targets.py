"""``os:`` target selectors resolved against a real mixed fleet: Debian 12 (deb-a/b/c), Rocky 9,
Amazon Linux 2023 and SLES 15 nodes over SSH, each OS read from the node's own os-release."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.domain.records import NodeStatus
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.targeting import OsTargets, resolve_os_targets
from patchfleet.transport.connector import SSHConnector


def mixed_inventory(fleet: Any, rpm_fleet: Any, path: Path,
                    extra: list[dict[str, Any]] | None = None, **declared: str) -> Path:
    """Both fleets in one inventory (no declared OS unless given as node=OS), plus ``extra``."""
    nodes = []
    for f in (fleet, rpm_fleet):
        inv = yaml.safe_load(f.inventory.read_text())
        for n in inv["nodes"]:
            node = {**inv["defaults"], **n}
            if n["id"] in declared:
                node["os"] = declared[n["id"]]
            nodes.append(node)
    defaults = {k: v for k, v in nodes[0].items() if k in ("identity_file", "known_hosts")}
    nodes += [{**defaults, **e} for e in extra or []]
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    return path


def resolve(path: Path, targets: str, tmp_path: Path) -> tuple[list[ResolvedNode], OsTargets]:
    """What a run does: plan (static selection), then read the OS of undecided nodes."""
    plan = plan_scan(inventory=str(path), targets=targets, store=str(tmp_path / "store"))
    with SSHConnector() as connector:
        return plan.nodes, asyncio.run(resolve_os_targets(plan.nodes, targets, connector,
                                                          concurrency=3))


def kept(r: OsTargets) -> list[str]:
    return [n.id for n in r.kept]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_os_read_from_each_node_decides(fleet: Any, rpm_fleet: Any, tmp_path: Path) -> None:
    path = mixed_inventory(fleet, rpm_fleet, tmp_path / "mixed.yaml")
    planned, r = resolve(path, "os:DEBIAN", tmp_path)
    assert len(planned) == 6  # statically every undeclared node may be Debian
    assert kept(r) == ["deb-a", "deb-b", "deb-c"] and r.failed == []
    assert r.dropped == {"rocky-a": "ROCKY_LINUX", "al-a": "AMAZON_LINUX_2023",
                         "sles-a": "SUSE"}

    _, r = resolve(path, "os:rocky_linux, os:SUSE", tmp_path)
    assert kept(r) == ["rocky-a", "sles-a"] and r.failed == []
    assert set(r.dropped) == {"deb-a", "deb-b", "deb-c", "al-a"}

    _, r = resolve(path, "os:AMAZON_LINUX*", tmp_path)
    assert kept(r) == ["al-a"]

    # OR with other selectors: deb-c by its patch group, sles-a by its OS
    _, r = resolve(path, "group:db,os:SUSE", tmp_path)
    assert kept(r) == ["deb-c", "sles-a"]

    with pytest.raises(ConfigError, match=r"'os:UBUNTU' selects no node; the nodes run: "
                                          r"deb-a \(DEBIAN\), .*sles-a \(SUSE\)"):
        resolve(path, "os:UBUNTU", tmp_path)


def test_declared_os_wins_without_connecting(fleet: Any, rpm_fleet: Any, tmp_path: Path) -> None:
    # deb-a really runs Debian but is declared SUSE; rocky-a is declared correctly but its
    # port is closed: neither is contacted, so neither fails
    path = mixed_inventory(fleet, rpm_fleet, tmp_path / "declared.yaml",
                           **{"deb-a": "SUSE"})
    inv = yaml.safe_load(path.read_text())
    for n in inv["nodes"]:
        if n["id"] == "rocky-a":
            n.update(os="ROCKY_LINUX", port=_closed_port())
    path.write_text(yaml.safe_dump(inv))

    _, r = resolve(path, "os:SUSE,os:ROCKY_LINUX", tmp_path)
    assert kept(r) == ["deb-a", "rocky-a", "sles-a"] and r.failed == []
    planned, r = resolve(path, "os:DEBIAN", tmp_path)
    # declared non-Debian nodes are already left out by the plan; the rest are read
    assert [n.id for n in planned] == ["deb-b", "deb-c", "al-a", "sles-a"]
    assert kept(r) == ["deb-b", "deb-c"]
    assert r.dropped == {"al-a": "AMAZON_LINUX_2023", "sles-a": "SUSE"}


def test_unreadable_os_is_a_failed_node_never_a_target(fleet: Any, rpm_fleet: Any,
                                                       tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    path = mixed_inventory(fleet, rpm_fleet, tmp_path / "faulty.yaml", extra=[
        {"id": "ghost", "host": "127.0.0.1", "port": _closed_port(), "connect_timeout": 5,
         "tags": {"PatchGroup": "web"}},
        {"id": "locked-out", "host": "127.0.0.1", "port": fleet.ports["deb-b"],
         "identity_file": str(stranger)},
    ])
    _, r = resolve(path, "os:DEBIAN", tmp_path)
    assert kept(r) == ["deb-a", "deb-b", "deb-c"]
    failed = {f.node_id: f for f in r.failed}
    assert list(failed) == ["ghost", "locked-out"]
    for f in failed.values():
        assert f.summary.status is NodeStatus.FAILED and f.records == ()
    why = ("could not read the node's OS (/etc/os-release) to match the target selector "
           "os:DEBIAN, so it was neither scanned nor patched: ")
    ghost, locked = failed["ghost"].failure_reason, failed["locked-out"].failure_reason
    assert ghost and ghost.startswith(f"UNREACHABLE: {why}") and len(ghost) > len(why) + 13
    assert locked and locked.startswith(f"AUTH_FAILED: {why}")
    assert failed["ghost"].patch_group == "web"

    # the failure is the outcome even when nothing else is selected
    _, r = resolve(path, "ghost,os:UBUNTU", tmp_path)
    assert kept(r) == ["ghost"] and [f.node_id for f in r.failed] == ["locked-out"]
