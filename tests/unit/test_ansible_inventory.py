"""Ansible INI and YAML inventories read as patchfleet inventories."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from patchfleet.config.ansible_inventory import (
    expand_host_pattern,
    parse_ansible_ini,
    parse_ansible_yaml,
)
from patchfleet.domain.inventory import Inventory, ResolvedNode
from patchfleet.domain.selectors import select_targets
from patchfleet.errors import ConfigError

INI = """\
# top comment
bastion ansible_host=203.0.113.9

[web]
web[01:03] ansible_user=ubuntu
web04:2222 ansible_host=10.0.0.4 PatchGroup=web-canary

[db]
db-[a:b].example.com ansible_become=yes ansible_ssh_private_key_file=~/.ssh/db

[prod:children]
web
db

[prod:vars]
ansible_user=admin
PatchGroup=prod
ansible_become=false

[web:vars]
ansible_port = 2200
PatchGroup="web"
"""


def _by_id(inv: Inventory) -> dict[str, ResolvedNode]:
    return {n.id: n for n in inv.resolved()}


def test_ini_hosts_vars_children_and_ranges() -> None:
    inv = parse_ansible_ini(INI, "hosts")
    nodes = _by_id(inv)
    assert list(nodes) == ["bastion", "web01", "web02", "web03", "web04",
                           "db-a.example.com", "db-b.example.com"]
    b = nodes["bastion"]
    assert (b.host, b.port, b.user, b.tags) == ("203.0.113.9", 22, "root", {})
    w1 = nodes["web01"]
    # host var beats group var; child group (web) beats parent (prod)
    assert (w1.host, w1.port, w1.user, w1.sudo) == ("web01", 2200, "ubuntu", False)
    assert w1.tags == {"ansible_group/web": "true", "ansible_group/prod": "true",
                       "PatchGroup": "web"}
    w4 = nodes["web04"]
    assert (w4.host, w4.port, w4.user, w4.patch_group) == ("10.0.0.4", 2222, "admin",
                                                          "web-canary")
    db = nodes["db-a.example.com"]
    assert (db.sudo, db.identity_file, db.user, db.patch_group) == (True, "~/.ssh/db", "admin",
                                                                   "prod")
    resolved = inv.resolved()
    assert [n.id for n in select_targets(resolved, "tag-key:ansible_group/db")] == [
        "db-a.example.com", "db-b.example.com"]
    assert [n.id for n in select_targets(resolved, "group:web*")] == [
        "web01", "web02", "web03", "web04"]


YAML = """\
all:
  vars:
    ansible_user: ec2-user
  hosts:
    local:
      ansible_connection: local
  children:
    web:
      vars: {PatchGroup: web, ansible_become: true}
      hosts:
        web[1:5:2]:
          ansible_port: 2201
        other:
    staging:
      children:
        web:
"""


def test_yaml_inventory() -> None:
    inv = parse_ansible_yaml(yaml.safe_load(YAML), "inv.yml")
    nodes = _by_id(inv)
    assert list(nodes) == ["local", "web1", "web3", "web5", "other"]
    assert nodes["local"].local and nodes["local"].tags == {}
    w = nodes["web3"]
    assert (w.port, w.user, w.sudo, w.patch_group) == (2201, "ec2-user", True, "web")
    assert w.tags["ansible_group/staging"] == "true"
    assert nodes["other"].port == 22


def test_ranges() -> None:
    assert expand_host_pattern("web[08:10]") == ["web08", "web09", "web10"]
    assert expand_host_pattern("n[0:10:5]-[a:b]") == ["n0-a", "n0-b", "n5-a", "n5-b",
                                                       "n10-a", "n10-b"]
    assert expand_host_pattern("plain") == ["plain"]
    with pytest.raises(ConfigError, match="same width"):
        expand_host_pattern("web[01:100]")
    with pytest.raises(ConfigError, match="bad host range"):
        expand_host_pattern("web[a:9]")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[web:hostvars]\nx\n", r"hosts: line 1: unknown section kind ':hostvars'"),
        ("[web\nx\n", r"hosts: line 1: .*not a section header"),
        ("[web:vars]\njustaword\n", r"line 2: .*KEY=VALUE"),
        ("h1 port\n", r"line 1: 'port' on host line .*not KEY=VALUE"),
        ("h1 ansible_password=x\n", r"line 1: ansible_password: password authentication"),
        ("h1 ansible_become=maybe\n", r"line 1: ansible_become='maybe' is not a boolean"),
        ("h1 ansible_become_method=su\n", r"line 1: .*only with sudo"),
        ("h1 ansible_connection=local\n", r"rename the host to 'local'"),
        ("h1 ansible_connection=winrm\n", r"only over ssh"),
        ("h1 ansible_port=abc\n", r"line 1: host 'h1': port"),
        ("[a:children]\nb\n[b:children]\na\n[b]\nh\n", r"cycle"),
        ("[a:children]\nb c\n", r"line 2: .*one group name per line"),
        ("# nothing\n", r"lists no hosts"),
        ("h1 x='unterminated\n", r"line 1: cannot split"),
    ],
)
def test_ini_errors_name_file_line_and_fix(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_ansible_ini(text, "hosts")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"all": {"host": {}}}, r"inv.yml: all.host: unknown key 'host'"),
        ({"all": {"hosts": ["a", "b"]}}, r"all.hosts: hosts: must be a mapping"),
        ({"all": {"hosts": {"a": "x"}}}, r"all.hosts.a: host variables must be a mapping"),
        ({"all": {"children": {"web": {"hosts": {"a": {"ansible_ssh_pass": "x"}}}}}},
         r"all.children.web.hosts.a.ansible_ssh_pass: ansible_ssh_pass: password"),
        ([1], r"top-level keys are groups"),
    ],
)
def test_yaml_errors(data: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_ansible_yaml(data, "inv.yml")


def test_patchfleet_os_declares_the_node_os() -> None:
    inv = parse_ansible_ini(
        "[debian]\nd1\nd2 patchfleet_os=ubuntu\n[rocky]\nr1\nother\n"
        "[debian:vars]\npatchfleet_os=DEBIAN\n[rocky:vars]\npatchfleet_os=Rocky_Linux\n", "hosts")
    nodes = _by_id(inv)
    assert {k: n.os for k, n in nodes.items()} == {
        "d1": "DEBIAN", "d2": "UBUNTU", "r1": "ROCKY_LINUX", "other": "ROCKY_LINUX"}
    assert "patchfleet_os" not in nodes["d1"].tags
    assert [n.id for n in select_targets(inv.resolved(), "os:DEBIAN,os:UBUNTU")] == ["d1", "d2"]
    yml = parse_ansible_yaml({"all": {"hosts": {"a": None, "b": {"patchfleet_os": "suse"}},
                                      "vars": {"patchfleet_os": "AMAZON_LINUX_2023"}}}, "inv.yml")
    assert {n.id: n.os for n in yml.resolved()} == {"a": "AMAZON_LINUX_2023", "b": "SUSE"}


@pytest.mark.parametrize(("parse", "data", "match"), [
    (parse_ansible_ini, "[web]\nh1\n[web:vars]\npatchfleet_os=debain\n",
     r"hosts: line 4: patchfleet_os: 'debain' is not an operating system; did you mean "
     r"DEBIAN\? use one of WINDOWS, "),
    (parse_ansible_yaml, {"all": {"hosts": {"h1": {"patchfleet_os": "fedora"}}}},
     r"inv: all.hosts.h1.patchfleet_os: patchfleet_os: 'fedora' is not an operating system"),
])
def test_bad_patchfleet_os_names_where_and_allowed_values(parse: Any, data: Any,
                                                          match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(data, "hosts" if isinstance(data, str) else "inv")


def test_a_huge_host_range_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(ConfigError, match="makes 10,000,000 hosts, more than the 100,000"):
        parse_ansible_ini("[web]\nw[0:9999999]\n", "hosts")
    with pytest.raises(ConfigError, match="makes 1,000,000 hosts"):
        parse_ansible_ini("[web]\nw[0:999]-[0:999]\n", "hosts")
    lines = "".join(f"w{i}-[00000:99999]\n" for i in range(2))
    with pytest.raises(ConfigError, match="more than 100,000 hosts"):
        parse_ansible_ini(f"[web]\n{lines}", "hosts")
