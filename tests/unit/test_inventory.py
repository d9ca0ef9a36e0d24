"""Inventory loading and target selection: valid files resolve, bad ones name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.config.inventory import load_inventory
from patchfleet.domain.inventory import default_inventory
from patchfleet.domain.selectors import select_targets
from patchfleet.errors import ConfigError

GOOD = """
defaults:
  user: patch
  port: 2222
  identity_file: /keys/id
  sudo: true
patch_groups:
  web: {DEBIAN: example-debian-all-updates}
nodes:
  - id: local
  - id: web-1
    host: 10.0.0.5
    tags: {PatchGroup: web, env: prod}
  - id: web-2
    host: 10.0.0.6
    port: 22
    user: root
    sudo: false
    tags: {Patch Group: web, env: staging}
  - id: db-1
    tags: {env: prod}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "inventory.yaml"
    p.write_text(text)
    return p


def test_defaults_apply_and_nodes_override(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    nodes = {n.id: n for n in inv.resolved()}
    assert nodes["local"].local and nodes["local"].host == "localhost"
    web1 = nodes["web-1"]
    assert (web1.user, web1.port, web1.sudo, web1.identity_file) == ("patch", 2222, True,
                                                                      "/keys/id")
    web2 = nodes["web-2"]
    assert (web2.user, web2.port, web2.sudo) == ("root", 22, False)
    assert web2.patch_group == "web"  # the 'Patch Group' spelling counts too
    assert nodes["db-1"].host == "db-1" and not nodes["db-1"].local
    assert inv.patch_groups == {"web": {"DEBIAN": "example-debian-all-updates"}}


def test_embedded_default_is_the_local_node() -> None:
    (node,) = default_inventory().resolved()
    assert node.id == "local" and node.local


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nodes:\n  - id: a\n    hots: x\n", "nodes.0.hots: unknown key"),
        ("defaults:\n  prot: 22\nnodes: []\n", "defaults.prot: unknown key"),
        ("nodes:\n  - id: a\n    port: 70000\n", "nodes.0.port"),
        ("nodes:\n  - id: 'bad id!'\n", "not a valid node id"),
        ("nodes:\n  - id: a\n  - id: a\n", "appears twice"),
        ("defaults: {user: root}\n", "nodes: required field is missing"),
        ("- just\n- a list\n", "must be a mapping"),
        ("nodes: [\n", "not valid YAML"),
        ("nodes:\n  - id: a\n    host: 'a;rm -rf /'\n", "not a host name"),
        ("defaults:\n  host_key_policy: accept-all\nnodes: []\n", "host_key_policy"),
        ("nodes:\n  - id: a\n    os: redhat\n",
         "nodes.0.os: 'redhat' is not an operating system; use one of WINDOWS, AMAZON_LINUX"),
    ],
)
def test_bad_inventory_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_inventory(path)
    message = str(exc.value)
    assert str(path) in message and needle in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_inventory(tmp_path / "nope.yaml")


def test_target_selectors(tmp_path: Path) -> None:
    nodes = load_inventory(write(tmp_path, GOOD)).resolved()

    def ids(expr: str) -> list[str]:
        return [n.id for n in select_targets(nodes, expr)]

    assert ids("*") == ["local", "web-1", "web-2", "db-1"]
    assert ids("web-*") == ["web-1", "web-2"]
    assert ids("tag:env=prod") == ["web-1", "db-1"]
    assert ids("group:web") == ["web-1", "web-2"]
    assert ids("tag-key:env") == ["web-1", "web-2", "db-1"]
    assert ids("db-1, local") == ["local", "db-1"]


@pytest.mark.parametrize(("expr", "needle"), [
    ("", "is empty"), ("tag:env", "KEY=VALUE"), ("role:web", "not a target selector"),
    ("nothing-*", "selects no node"), ("os:BSD", "matches no operating system"),
])
def test_bad_targets(tmp_path: Path, expr: str, needle: str) -> None:
    nodes = load_inventory(write(tmp_path, GOOD)).resolved()
    with pytest.raises(ConfigError, match=needle):
        select_targets(nodes, expr)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("nodes:\n  - id: a\n    hots: x\n", "nodes.0.hots",
         "unknown key 'hots'; did you mean 'host'? allowed keys: id, host, port, user,"),
        ("defaults:\n  prot: 22\nnodes: []\n", "defaults.prot",
         "unknown key 'prot'; did you mean 'port'? allowed keys: user, port,"),
        ("node: []\nnodes: []\n", "node",
         "unknown key 'node'; did you mean 'nodes'? allowed keys: defaults, patch_groups, nodes"),
        ("nodes: []\ncolour: red\n", "colour",
         "unknown key 'colour'; remove it or check its spelling; allowed keys: defaults,"),
    ],
)
def test_unknown_key_is_named_with_the_allowed_ones(tmp_path: Path, text: str, field: str,
                                                    words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_inventory(path)
    assert str(exc.value).startswith(f"{path}: {field}: {words}")
