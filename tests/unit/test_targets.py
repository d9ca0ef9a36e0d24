"""Target expressions with ``os:`` selectors: parsing, declared OS, static and run-time selection.

Run-time resolution here uses the ``local`` node (this machine's real /etc/os-release through
the local transport) and a closed loopback port; tests/integration/test_os_targets.py runs it
against real SSH test nodes.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from patchfleet.domain.inventory import ResolvedNode, parse_inventory
from patchfleet.domain.records import NodeStatus
from patchfleet.domain.selectors import node_selected, parse_targets, select_targets
from patchfleet.errors import ConfigError
from patchfleet.ops.targeting import OsTargets, resolve_os_targets
from patchfleet.parsers.os_release import os_info, parse_os_release
from patchfleet.transport.connector import SSHConnector

INVENTORY: dict[str, Any] = {
    "defaults": {"os": "DEBIAN"},
    "nodes": [
        {"id": "web-1", "tags": {"PatchGroup": "web"}},              # DEBIAN from defaults
        {"id": "web-2", "os": "ubuntu", "tags": {"PatchGroup": "web"}},
        {"id": "db-1", "os": "ROCKY_LINUX", "tags": {"env": "prod"}},
        {"id": "al-1", "os": "AMAZON_LINUX_2023"},
        {"id": "al-2", "os": "amazon_linux_2"},
        {"id": "sles-1", "os": "SUSE"},
    ],
}


def nodes(data: dict[str, Any] | None = None) -> list[ResolvedNode]:
    return parse_inventory(data or INVENTORY, "inv.yaml").resolved()


def ids(expr: str, ns: list[ResolvedNode] | None = None) -> list[str]:
    return [n.id for n in select_targets(ns if ns is not None else nodes(), expr)]


def test_declared_os_comes_from_node_or_defaults() -> None:
    by_id = {n.id: n.os for n in nodes()}
    assert by_id == {"web-1": "DEBIAN", "web-2": "UBUNTU", "db-1": "ROCKY_LINUX",
                     "al-1": "AMAZON_LINUX_2023", "al-2": "AMAZON_LINUX_2", "sles-1": "SUSE"}
    assert nodes({"nodes": [{"id": "x"}]})[0].os is None


def test_os_selectors_match_the_declared_os() -> None:
    assert ids("os:DEBIAN") == ["web-1"]
    assert ids("os:debian") == ["web-1"]  # case-insensitive
    assert ids("OS:Rocky_Linux") == ["db-1"]
    assert ids("os:AMAZON_LINUX*") == ["al-1", "al-2"]
    assert ids("os:*") == ["web-1", "web-2", "db-1", "al-1", "al-2", "sles-1"]
    assert ids("os:*U*") == ["web-2", "db-1", "al-1", "al-2", "sles-1"]  # not DEBIAN
    assert ids("os:ROCKY_LINUX, os:SUSE") == ["db-1", "sles-1"]


def test_os_selectors_or_with_other_selectors() -> None:
    assert ids("web-*,os:SUSE") == ["web-1", "web-2", "sles-1"]
    assert ids("tag:env=prod, os:UBUNTU") == ["web-2", "db-1"]
    assert ids("group:web,os:AMAZON_LINUX_2") == ["web-1", "web-2", "al-2"]


def test_undeclared_nodes_may_match_and_stay_selected() -> None:
    ns = nodes({"nodes": [{"id": "known", "os": "SUSE"}, {"id": "unknown"},
                          {"id": "other", "os": "DEBIAN", "tags": {"role": "db"}}]})
    assert ids("os:DEBIAN", ns) == ["unknown", "other"]
    assert ids("os:UBUNTU", ns) == ["unknown"]
    assert ids("os:UBUNTU,tag:role=db", ns) == ["unknown", "other"]
    known, unknown, other = ns
    sel = parse_targets("os:UBUNTU,tag:role=db")
    assert (node_selected(sel, known), node_selected(sel, unknown),
            node_selected(sel, other)) == (False, None, True)
    # the OS found at run time decides, and beats a declaration
    assert node_selected(sel, unknown, "UBUNTU") is True
    assert node_selected(sel, unknown, "DEBIAN") is False
    assert node_selected(sel, known, "UBUNTU") is True
    assert node_selected(parse_targets("unknown"), unknown) is True  # no os: -> decided


def test_selecting_nothing_names_the_declared_oses() -> None:
    with pytest.raises(ConfigError, match=r"'os:CENTOS' selects no node; the inventory has: "
                                          r"web-1 \(os DEBIAN\), web-2 \(os UBUNTU\)"):
        select_targets(nodes(), "os:CENTOS")


@pytest.mark.parametrize(("expr", "needle"), [
    ("os:", r"'os:' needs an operating system: os:NAME, one of WINDOWS, .*DEBIAN"),
    ("os:FEDORA", r"'os:FEDORA' matches no operating system; use os:NAME \(wildcards allowed, "
                  r"e.g. os:AMAZON_LINUX\*\) with one of .*ROCKY_LINUX"),
    ("web-1,os:debain", r"--targets: 'os:debain' matches no operating system"),
    ("os:AMAZON*2024", "matches no operating system"),
    ("platform:DEBIAN", r"not a target selector; use an id, .*os:NAME"),
])
def test_bad_os_selectors(expr: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_targets(expr)


def test_parse_normalises_os_names() -> None:
    assert parse_targets(" os:amazon_linux* , web-1,tag:a=b") == [
        "os:AMAZON_LINUX*", "web-1", "tag:a=b"]


@pytest.mark.parametrize(("text", "needle"), [
    ("nodes:\n  - id: a\n    os: debain\n",
     "nodes.0.os: 'debain' is not an operating system; did you mean DEBIAN? use one of "
     "WINDOWS, AMAZON_LINUX"),
    ("defaults:\n  os: Fedora\nnodes:\n  - id: a\n",
     "defaults.os: 'Fedora' is not an operating system; use one of WINDOWS"),
    ("nodes:\n  - id: a\n    os: 12\n", "nodes.0.os: 12 is not an operating system"),
    ("nodes:\n  - id: a\n    os: [DEBIAN]\n", "nodes.0.os: ['DEBIAN'] is not an operating"),
])
def test_bad_inventory_os_names_file_field_and_fix(tmp_path: Path, text: str,
                                                   needle: str) -> None:
    from patchfleet.config.inventory import load_inventory

    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_inventory(path)
    assert str(exc.value).startswith(f"{path}: ") and needle in str(exc.value)


# --- run time: the local node's real os-release -------------------------------------------


def _this_os() -> str:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() \
        else Path("/usr/lib/os-release").read_text()
    return os_info(parse_os_release(text)).operating_system


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _resolve(ns: list[ResolvedNode], expression: str) -> OsTargets:
    with SSHConnector() as connector:
        return asyncio.run(resolve_os_targets(ns, expression, connector))


def test_run_time_reads_the_local_os() -> None:
    real = _this_os()
    other = "SUSE" if real != "SUSE" else "DEBIAN"
    ns = nodes({"nodes": [{"id": "local"}, {"id": "declared", "os": other}]})
    kept, failed, dropped = _resolve(ns, f"os:{real.lower()}")
    assert [n.id for n in kept] == ["local"] and failed == []
    assert dropped == {"declared": other}  # declared: decided without connecting
    kept, failed, dropped = _resolve(ns, f"os:{other}")
    assert [n.id for n in kept] == ["declared"] and dropped == {"local": real}
    with pytest.raises(ConfigError, match=rf"selects no node; the nodes run: local \({real}\)"):
        _resolve(ns[:1], "os:WINDOWS")


def test_run_time_without_os_selectors_reads_nothing() -> None:
    ns = nodes({"nodes": [{"id": "a", "host": "127.0.0.1", "port": _closed_port()},
                          {"id": "b"}]})
    kept, failed, dropped = _resolve(ns, "a")
    assert [n.id for n in kept] == ["a"] and failed == [] and dropped == {"b": "not targeted"}


def test_run_time_unreachable_node_fails_with_the_reason(tmp_path: Path) -> None:
    import asyncssh

    known_hosts, key = tmp_path / "known_hosts", tmp_path / "id_ed25519"
    known_hosts.write_text("")
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    ns = nodes({"defaults": {"known_hosts": str(known_hosts), "identity_file": str(key),
                             "connect_timeout": 5},
                "nodes": [{"id": "ghost", "host": "127.0.0.1", "port": _closed_port(),
                           "tags": {"PatchGroup": "web"}},
                          {"id": "deb", "os": "DEBIAN"}]})
    kept, failed, dropped = _resolve(ns, "os:DEBIAN")
    assert [n.id for n in kept] == ["deb"] and dropped == {}
    (ghost,) = failed
    assert ghost.node_id == "ghost" and ghost.summary.status is NodeStatus.FAILED
    assert ghost.records == () and ghost.patch_group == "web"
    assert ghost.failure_reason is not None
    assert ghost.failure_reason.startswith(
        "UNREACHABLE: could not read the node's OS (/etc/os-release) to match the target "
        "selector os:DEBIAN, so it was neither scanned nor patched: ")
    # nothing kept but a failure: not a config error, the failure is the run's outcome
    kept, failed, _ = _resolve(ns[:1], "os:SUSE")
    assert kept == [] and [r.node_id for r in failed] == ["ghost"]
