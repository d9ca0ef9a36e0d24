"""load_nodes_source dispatches on the spec: patchfleet YAML, Ansible INI/YAML, ec2:// URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.config.sources import load_nodes_source
from patchfleet.errors import ConfigError

PATCHFLEET = """\
defaults: {user: admin}
nodes:
  - id: web-1
    host: 10.0.0.5
    tags: {PatchGroup: web}
"""
ANSIBLE_YAML = """\
all:
  children:
    web:
      hosts:
        web-1: {ansible_host: 10.0.0.5}
"""
ANSIBLE_INI = "[web]\nweb-1 ansible_host=10.0.0.5 ansible_user=admin\n"


def test_patchfleet_yaml(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_text(PATCHFLEET)
    inv = load_nodes_source(str(p))
    assert inv.defaults.user == "admin" and inv.nodes[0].tags == {"PatchGroup": "web"}
    p.write_text("nodez: []\n")
    with pytest.raises(ConfigError, match=r"inv.yaml: .*nodes: required field is missing"):
        load_nodes_source(str(p))


def test_ansible_yaml(tmp_path: Path) -> None:
    p = tmp_path / "hosts.yml"
    p.write_text(ANSIBLE_YAML)
    n = load_nodes_source(str(p)).resolved()[0]
    assert (n.id, n.host, n.tags) == ("web-1", "10.0.0.5", {"ansible_group/web": "true"})


@pytest.mark.parametrize("name", ["hosts", "inventory.ini", "prod.INI"])
def test_ansible_ini(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_text(ANSIBLE_INI)
    n = load_nodes_source(str(p)).resolved()[0]
    assert (n.id, n.host, n.user) == ("web-1", "10.0.0.5", "admin")


def test_ansible_ini_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "hosts"
    p.write_text("[web]\nweb-1\n[web:bogus]\n")
    with pytest.raises(ConfigError, match=rf"{p}: line 3: unknown section kind"):
        load_nodes_source(str(p))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("s3://bucket/inv.yaml", "unsupported URL scheme"),
        ("https://example.com/inv", "unsupported URL scheme"),
        ("inventory.json", r"unknown inventory file type '\.json'"),
        ("missing.yaml", "file not found"),
        ("missing-hosts", "file not found"),
        ("ec2://eu-west-1?bogus=1", "unknown parameter 'bogus'"),
    ],
)
def test_unsupported_specs(tmp_path: Path, spec: str, match: str,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match):
        load_nodes_source(spec)


def test_bad_yaml_and_directory(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("nodes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_nodes_source(str(p))
    d = tmp_path / "inventory"
    d.mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        load_nodes_source(str(d))


def test_an_unchanged_file_is_parsed_once_and_a_changed_one_again(tmp_path: Path) -> None:
    """The CLI and the flow both plan a run in one process; the second read must not parse
    a large inventory again, but must see any edit made in between."""
    p = tmp_path / "inv.yaml"
    p.write_text(PATCHFLEET)
    first = load_nodes_source(str(p))
    assert load_nodes_source(str(p)) is first
    p.write_text(PATCHFLEET.replace("10.0.0.5", "10.0.0.6"))
    changed = load_nodes_source(str(p))
    assert changed.nodes[0].host == "10.0.0.6" and first.nodes[0].host == "10.0.0.5"
    p.write_text("nodes: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_nodes_source(str(p))
