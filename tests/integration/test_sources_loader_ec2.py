"""load_nodes_source with an ec2:// URL, against a moto server on loopback (the other specs:
tests/unit/test_sources_loader.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patchfleet.config.sources import load_nodes_source


@pytest.fixture()
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    pytest.importorskip("flask", reason="the moto server needs moto[server]")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield endpoint
    server.stop()


def test_ec2_url(moto_env: str) -> None:
    import boto3

    c = boto3.client("ec2", region_name="ap-south-1")
    image = c.describe_images()["Images"][0]["ImageId"]
    iid = c.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": "PatchGroup", "Value": "db"}]}],
    )["Instances"][0]["InstanceId"]
    inv = load_nodes_source("ec2://ap-south-1?tag:PatchGroup=db&user=ubuntu")
    n = inv.resolved()[0]
    assert (n.id, n.user, n.patch_group) == (iid, "ubuntu", "db")
