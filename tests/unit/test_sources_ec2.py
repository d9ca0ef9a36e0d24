"""ec2:// inventory URLs: parsing and their errors (discovery against a real moto server:
tests/integration/test_sources_ec2_discovery.py)."""

from __future__ import annotations

import pytest

from patchfleet.config.sources.ec2 import parse_ec2_url
from patchfleet.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ec2://r?foo=1", "unknown parameter 'foo'"),
        ("ec2://r?address=ipv6", "address='ipv6'; use one of private, public"),
        ("ec2://r?tag:Env=", r"tag:Env needs a value"),
        ("ec2://r?user=Bad User", r"user: .*not a valid user name"),
        ("ec2://r?port=99999", r"port: "),
        ("ec2://r/path", "unexpected path"),
        ("ec2://r?noequals", "cannot parse the query"),
    ],
)
def test_url_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_ec2_url(url)


def test_url_parsing() -> None:
    src = parse_ec2_url("ec2://us-west-2?tag:Env=prod,stage&tag-key=PatchGroup&address=public"
                        "&port=2222&host_key_policy=accept-new")
    assert src.region == "us-west-2" and src.address == "public"
    assert src.filters == [
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "tag:Env", "Values": ["prod", "stage"]},
        {"Name": "tag-key", "Values": ["PatchGroup"]},
    ]
    assert src.defaults.port == 2222 and src.defaults.host_key_policy == "accept-new"
    assert parse_ec2_url("ec2://").region is None
