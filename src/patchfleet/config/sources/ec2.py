"""EC2 discovery: running instances become inventory nodes (boto3 ``describe_instances``).

URL format::

    ec2://REGION?FILTERS&OPTIONS        REGION may be empty (ec2:///?...): boto3's default region

Filters (combined with AND, like EC2's own filters; a comma separates alternative values):

- ``tag:KEY=VALUE[,VALUE2]``   instances whose tag KEY has one of the values (``*`` wildcards)
- ``tag-key=KEY``              instances that carry tag KEY
- ``instance-id=i-1,i-2``      these instances only

Options: ``address=private`` (default: PrivateIpAddress) | ``public`` (PublicIpAddress) |
``private-dns`` | ``public-dns``; and connection defaults ``user``, ``port``, ``identity_file``,
``known_hosts``, ``host_key_policy``, ``sudo``, ``connect_timeout``.

Only ``running`` instances are listed. Node id = instance id; every instance tag becomes a node
tag (``Name``, ``PatchGroup``...). The tag ``patchfleet:os`` declares the instance's AWS
OperatingSystem (``DEBIAN``, ``AMAZON_LINUX_2023``..., case-insensitive; any other value is an
error), so ``--targets os:NAME`` selects it without connecting. Credentials, region and
endpoint come from boto3's usual environment (AWS_PROFILE, AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL...).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from patchfleet.domain.inventory import (
    Inventory,
    Node,
    NodeDefaults,
    format_validation_error,
    operating_system,
)
from patchfleet.errors import ConfigError

_ADDRESS_FIELDS = {
    "private": "PrivateIpAddress",
    "public": "PublicIpAddress",
    "private-dns": "PrivateDnsName",
    "public-dns": "PublicDnsName",
}
_DEFAULT_OPTIONS = ("user", "port", "identity_file", "known_hosts", "host_key_policy", "sudo",
                    "connect_timeout", "install_user", "install_identity_file")
OS_TAG = "patchfleet:os"
URL_HELP = ("use ec2://REGION?tag:KEY=VALUE&tag-key=KEY&instance-id=i-...&address=private|public"
            "&user=NAME&identity_file=PATH&install_user=NAME&install_identity_file=PATH")


@dataclass(frozen=True)
class Ec2Source:
    """A parsed ``ec2://`` URL."""

    url: str
    region: str | None
    filters: list[dict[str, Any]] = field(default_factory=list)
    address: str = "private"
    defaults: NodeDefaults = field(default_factory=NodeDefaults)


def parse_ec2_url(url: str) -> Ec2Source:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ec2":
        raise ConfigError(f"not an ec2:// URL; {URL_HELP}", source=url)
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"unexpected path {parts.path!r}; {URL_HELP}", source=url)
    region = parts.netloc or None
    filters: list[dict[str, Any]] = [{"Name": "instance-state-name", "Values": ["running"]}]
    address = "private"
    opts: dict[str, str] = {}
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                       strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"cannot parse the query {parts.query!r}; {URL_HELP}",
                          source=url) from None
    for key, value in pairs:
        values = [v for v in value.split(",") if v]
        if key.startswith("tag:") and len(key) > 4:
            if not values:
                raise ConfigError(f"{key} needs a value: {key}=VALUE (or tag-key=KEY)", url)
            filters.append({"Name": key, "Values": values})
        elif key in ("tag-key", "instance-id"):
            if not values:
                raise ConfigError(f"{key} needs a value: {key}=...", url)
            filters.append({"Name": key, "Values": values})
        elif key == "address":
            if value not in _ADDRESS_FIELDS:
                raise ConfigError(
                    f"address={value!r}; use one of {', '.join(_ADDRESS_FIELDS)}", url)
            address = value
        elif key in _DEFAULT_OPTIONS:
            opts[key] = value
        else:
            raise ConfigError(f"unknown parameter {key!r}; {URL_HELP}", source=url)
    try:
        defaults = NodeDefaults.model_validate(opts)
    except ValidationError as err:
        raise format_validation_error(err, url, NodeDefaults) from None
    return Ec2Source(url=url, region=region, filters=filters, address=address, defaults=defaults)


def discover_ec2(
    src: Ec2Source, client_factory: Callable[[], Any] | None = None, page_size: int | None = None
) -> Inventory:
    """List the running instances that match (every page) and return them as an inventory."""
    import botocore.exceptions

    if client_factory is None:
        import boto3

        def client_factory() -> Any:
            return boto3.client("ec2", region_name=src.region)

    instances: list[dict[str, Any]] = []
    try:
        paginator = client_factory().get_paginator("describe_instances")
        pages = paginator.paginate(
            Filters=src.filters, PaginationConfig={"PageSize": page_size} if page_size else {}
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                instances.extend(reservation.get("Instances", []))
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        hint = {
            "UnauthorizedOperation": "access denied; grant ec2:DescribeInstances",
            "AuthFailure": "AWS rejected the credentials; check AWS_PROFILE or the keys",
            "InvalidInstanceID.Malformed": "an instance-id is malformed; use i-0123456789abcdef0",
            "InvalidInstanceID.NotFound": "an instance-id does not exist in this region",
        }.get(code, f"{code}: {err}")
        raise ConfigError(hint, source=src.url) from None
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            "no AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            source=src.url,
        ) from None
    except botocore.exceptions.NoRegionError:
        raise ConfigError("no AWS region; put it in the URL (ec2://eu-west-1?...) or set "
                          "AWS_DEFAULT_REGION", source=src.url) from None
    except botocore.exceptions.BotoCoreError as err:
        raise ConfigError(f"cannot reach EC2: {err}; check AWS_ENDPOINT_URL and the region",
                          source=src.url) from None
    addr_field = _ADDRESS_FIELDS[src.address]
    nodes: list[Node] = []
    missing: list[str] = []
    for inst in sorted(instances, key=lambda i: str(i.get("InstanceId", ""))):
        iid = str(inst["InstanceId"])
        host = inst.get(addr_field) or None
        if host is None:
            missing.append(iid)
            continue
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in inst.get("Tags", []) or []}
        declared = None
        if OS_TAG in tags:
            try:
                declared = operating_system(tags[OS_TAG])
            except ValueError as err:
                raise ConfigError(f"instance {iid}: tag {OS_TAG}: {err}; fix or remove the "
                                  "tag", source=src.url) from None
        nodes.append(Node(id=iid, host=str(host), tags=tags, os=declared))
    if missing:
        other = "private" if src.address != "private" else "public"
        raise ConfigError(
            f"running instance(s) {', '.join(missing)} have no {addr_field}; use "
            f"address={other} or narrow the filters", source=src.url,
        )
    if not nodes:
        raise ConfigError("no running instance matches the filters; check the tags and region",
                          source=src.url)
    return Inventory(defaults=src.defaults, nodes=nodes)


def load_ec2_inventory(url: str, client_factory: Callable[[], Any] | None = None) -> Inventory:
    return discover_ec2(parse_ec2_url(url), client_factory)
