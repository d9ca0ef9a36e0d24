"""Inputs that used to be accepted and silently mean something else are refused, naming the
file, field and fix (issue 13 #10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchfleet.config.baselines import load_aws_json_file
from patchfleet.domain.inventory import parse_inventory
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import plan_scan


@pytest.mark.parametrize("where", ["defaults", "node"])
def test_port_true_is_not_port_1(where: str) -> None:
    data: dict[str, object] = {"nodes": [{"id": "n1"}]}
    if where == "defaults":
        data["defaults"] = {"port": True}
    else:
        data["nodes"] = [{"id": "n1", "port": True}]
    with pytest.raises(ConfigError, match="True is not a port number"):
        parse_inventory(data, "inv.yaml")


def test_a_misspelt_os_in_patch_groups_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="'DEBAIN' is not an operating system; did you mean "
                                          "DEBIAN"):
        parse_inventory({"patch_groups": {"web": {"DEBAIN": "AWS-DebianDefaultPatchBaseline"}},
                         "nodes": [{"id": "n1"}]}, "inv.yaml")
    ok = parse_inventory({"patch_groups": {"web": {"debian": "AWS-DebianDefaultPatchBaseline"}},
                          "nodes": [{"id": "n1"}]}, "inv.yaml")
    assert ok.patch_groups == {"web": {"DEBIAN": "AWS-DebianDefaultPatchBaseline"}}


def test_a_patch_group_baseline_of_another_os_is_refused_when_planning(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("patch_groups: {web: {DEBIAN: AWS-UbuntuDefaultPatchBaseline}}\n"
                   "nodes: [{id: n1, tags: {PatchGroup: web}}]\n")
    with pytest.raises(ConfigError, match="is for UBUNTU, not DEBIAN") as err:
        plan_scan(inventory=str(inv), store=str(tmp_path / "store"))
    assert err.value.field == "patch_groups.web.DEBIAN"
    assert not (tmp_path / "store").exists()


def test_an_empty_baseline_override_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "override.json"
    path.write_text(json.dumps([]))
    with pytest.raises(ConfigError, match="BaselineOverride array is empty"):
        load_aws_json_file(path)
