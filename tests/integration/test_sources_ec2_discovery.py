"""EC2 discovery against a real moto server on loopback (no mocks; URL parsing:
tests/unit/test_sources_ec2.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from patchfleet.config.sources.ec2 import discover_ec2, load_ec2_inventory, parse_ec2_url
from patchfleet.errors import ConfigError

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


def _factory(endpoint: str, region: str = REGION) -> Callable[[], Any]:
    import boto3

    def make() -> Any:
        return boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return make


def _run(client: Any, tags: dict[str, str], count: int = 1, **kw: Any) -> list[str]:
    image = client.describe_images()["Images"][0]["ImageId"]
    spec = [{"ResourceType": "instance",
             "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    r = client.run_instances(ImageId=image, MinCount=count, MaxCount=count,
                             TagSpecifications=spec, **kw)
    return [i["InstanceId"] for i in r["Instances"]]


@pytest.fixture(scope="module")
def fleet(endpoint: str) -> dict[str, list[str]]:
    c = _factory(endpoint)()
    web = _run(c, {"Name": "web", "Env": "prod", "PatchGroup": "web"}, count=3)
    db = _run(c, {"Name": "db", "Env": "prod", "PatchGroup": "db"})
    stage = _run(c, {"Name": "stage", "Env": "staging"})
    stopped = _run(c, {"Name": "old", "Env": "prod", "PatchGroup": "web"})
    c.stop_instances(InstanceIds=stopped)
    return {"web": web, "db": db, "stage": stage, "stopped": stopped}


def test_discover_by_tag_running_only(endpoint: str, fleet: dict[str, list[str]]) -> None:
    inv = load_ec2_inventory(
        f"ec2://{REGION}?tag:Env=prod&user=ec2-user&identity_file=~/.ssh/fleet&sudo=true",
        _factory(endpoint))
    ids = [n.id for n in inv.nodes]
    assert ids == sorted(fleet["web"] + fleet["db"])
    assert fleet["stopped"][0] not in ids
    resolved = {n.id: n for n in inv.resolved()}
    w = resolved[fleet["web"][0]]
    assert w.tags == {"Name": "web", "Env": "prod", "PatchGroup": "web"}
    assert w.patch_group == "web"
    assert (w.user, w.identity_file, w.sudo, w.port) == ("ec2-user", "~/.ssh/fleet", True, 22)
    assert w.host.startswith("10.")  # private address by default


def test_filters_combine(endpoint: str, fleet: dict[str, list[str]]) -> None:
    make = _factory(endpoint)
    inv = load_ec2_inventory(f"ec2://{REGION}?tag:Env=prod&tag:PatchGroup=db", make)
    assert [n.id for n in inv.nodes] == fleet["db"]
    inv = load_ec2_inventory(f"ec2://{REGION}?tag-key=PatchGroup", make)
    assert {n.id for n in inv.nodes} == set(fleet["web"] + fleet["db"])
    ids = fleet["stage"] + fleet["web"][:1]
    inv = load_ec2_inventory(f"ec2://{REGION}?instance-id={','.join(ids)}", make)
    assert [n.id for n in inv.nodes] == sorted(ids)
    inv = load_ec2_inventory(f"ec2://{REGION}?tag:Env=prod,staging&tag:Name=st*", make)
    assert [n.id for n in inv.nodes] == fleet["stage"]


def test_public_address(endpoint: str, fleet: dict[str, list[str]]) -> None:
    c = _factory(endpoint)()
    inv = load_ec2_inventory(f"ec2://{REGION}?tag:Name=db&address=public", _factory(endpoint))
    desc = c.describe_instances(InstanceIds=fleet["db"])["Reservations"][0]["Instances"][0]
    assert inv.nodes[0].host == desc["PublicIpAddress"]


def test_no_match_and_missing_address(endpoint: str, fleet: dict[str, list[str]]) -> None:
    make = _factory(endpoint)
    with pytest.raises(ConfigError, match="no running instance matches"):
        load_ec2_inventory(f"ec2://{REGION}?tag:Env=nope", make)
    c = make()
    vpc = c.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = c.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    _run(c, {"Env": "private-only"}, SubnetId=subnet)
    with pytest.raises(ConfigError, match="have no PublicIpAddress; use address=private"):
        load_ec2_inventory(f"ec2://{REGION}?tag:Env=private-only&address=public", make)


def test_region_and_endpoint_from_environment(
    endpoint: str, fleet: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    inv = load_ec2_inventory("ec2://?tag:Name=db")
    assert [n.id for n in inv.nodes] == fleet["db"]
    inv = load_ec2_inventory(f"ec2://{REGION}?tag:Name=db")
    assert [n.id for n in inv.nodes] == fleet["db"]
    # another region holds none of them
    with pytest.raises(ConfigError, match="no running instance"):
        load_ec2_inventory("ec2://us-east-2?tag:Name=db")


def test_bad_instance_id_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="instance-id"):
        load_ec2_inventory(f"ec2://{REGION}?instance-id=i-0000000000000dead", _factory(endpoint))


def test_every_page_is_read(endpoint: str) -> None:
    make = _factory(endpoint)
    many = [i for _ in range(7) for i in _run(make(), {"Env": "many"})]  # 7 reservations
    pages: list[int] = []
    client = make()

    def count(parsed: dict[str, Any], **_: Any) -> None:
        pages.append(sum(len(r["Instances"]) for r in parsed["Reservations"]))

    client.meta.events.register("after-call.ec2.DescribeInstances", count)
    inv = discover_ec2(parse_ec2_url(f"ec2://{REGION}?tag:Env=many"), lambda: client,
                       page_size=5)
    assert [n.id for n in inv.nodes] == sorted(many)
    assert len(pages) >= 2 and sum(pages) == 7, pages


def test_os_tag_declares_the_node_os(endpoint: str, fleet: dict[str, list[str]]) -> None:
    from patchfleet.domain.selectors import select_targets

    c = _factory(endpoint)()
    deb = _run(c, {"Env": "os-tagged", "patchfleet:os": "DEBIAN"})
    al = _run(c, {"Env": "os-tagged", "patchfleet:os": "amazon_linux_2023"})
    bare = _run(c, {"Env": "os-tagged"})
    inv = load_ec2_inventory(f"ec2://{REGION}?tag:Env=os-tagged", _factory(endpoint))
    nodes = {n.id: n for n in inv.resolved()}
    assert (nodes[deb[0]].os, nodes[al[0]].os, nodes[bare[0]].os) == (
        "DEBIAN", "AMAZON_LINUX_2023", None)
    assert nodes[deb[0]].tags["patchfleet:os"] == "DEBIAN"  # still a tag too
    # declared instances are decided; the untagged one may be Amazon Linux until looked at
    assert {n.id for n in select_targets(inv.resolved(), "os:AMAZON_LINUX*")} == {
        al[0], bare[0]}
    c.terminate_instances(InstanceIds=deb + al + bare)


def test_bad_os_tag_names_the_instance_and_allowed_values(endpoint: str) -> None:
    c = _factory(endpoint)()
    (bad,) = _run(c, {"Env": "os-bad", "patchfleet:os": "Ubuntu 22.04"})
    with pytest.raises(ConfigError, match=(
            rf"ec2://{REGION}\?tag:Env=os-bad: instance {bad}: tag patchfleet:os: "
            r"'Ubuntu 22.04' is not an operating system; did you mean UBUNTU\? use one of "
            r"WINDOWS, .*; "
            r"fix or remove the tag")):
        load_ec2_inventory(f"ec2://{REGION}?tag:Env=os-bad", _factory(endpoint))
    c.terminate_instances(InstanceIds=[bad])
