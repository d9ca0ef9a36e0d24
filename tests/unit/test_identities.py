"""Separate identities per operation (issue 16): scans connect as ``user`` with
``identity_file``; installs, reboots and hooks as ``install_user`` with
``install_identity_file`` when set (defaults and per node; Ansible and EC2 sources too)."""

from __future__ import annotations

import pytest

from patchfleet.config.ansible_inventory import parse_ansible_ini
from patchfleet.config.sources.ec2 import parse_ec2_url
from patchfleet.domain.inventory import parse_inventory
from patchfleet.errors import ConfigError


def test_install_identity_from_defaults_and_per_node() -> None:
    inv = parse_inventory({
        "defaults": {"user": "scanner", "identity_file": "/keys/scan",
                     "install_user": "root", "install_identity_file": "/keys/install"},
        "nodes": [{"id": "a"}, {"id": "b", "install_user": "patcher"}, {"id": "c",
                   "user": "audit"}],
    }, "inv.yaml")
    a, b, c = inv.resolved()
    assert (a.user, a.identity_file) == ("scanner", "/keys/scan")
    assert (a.for_install().user, a.for_install().identity_file) == ("root", "/keys/install")
    assert b.for_install().user == "patcher" and b.user == "scanner"
    assert c.user == "audit" and c.for_install().user == "root"
    plain = parse_inventory({"nodes": [{"id": "d", "user": "ops"}]}, "inv.yaml").resolved()[0]
    assert plain.for_install() is plain  # no install identity: one identity for everything


def test_install_user_is_validated_like_user() -> None:
    with pytest.raises(ConfigError, match=r"inv\.yaml.*install_user.*not a valid user name"):
        parse_inventory({"nodes": [{"id": "a", "install_user": "x;touch /tmp/p"}]}, "inv.yaml")
    with pytest.raises(ConfigError, match=r"inv\.yaml.*defaults\.install_user"):
        parse_inventory({"defaults": {"install_user": "a b"}, "nodes": [{"id": "a"}]},
                        "inv.yaml")


def test_ansible_and_ec2_sources_carry_the_install_identity() -> None:
    inv = parse_ansible_ini(
        "[web]\nw1 ansible_user=scanner patchfleet_install_user=root "
        "patchfleet_install_identity_file=/keys/install\n", "hosts")
    (node,) = inv.resolved()
    assert (node.user, node.for_install().user, node.for_install().identity_file) == (
        "scanner", "root", "/keys/install")
    source = parse_ec2_url("ec2://eu-west-1?tag:Env=prod&user=scanner&install_user=root"
                           "&install_identity_file=/keys/install")
    assert (source.defaults.user, source.defaults.install_user,
            source.defaults.install_identity_file) == ("scanner", "root", "/keys/install")
