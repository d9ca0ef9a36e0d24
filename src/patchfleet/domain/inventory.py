"""Inventory: which nodes exist, how to reach them, and their tags.

The YAML contract (DESIGN.md)::

    defaults:            # applied to every node that doesn't set the field
      user: root
      port: 22
      identity_file: ~/.ssh/id_ed25519
      known_hosts: ~/.ssh/known_hosts
      sudo: false
      connect_timeout: 10
      os: DEBIAN         # optional: the nodes' AWS OperatingSystem, for --targets os:NAME
    patch_groups:        # patchfleet extension: PatchGroup tag value -> OS -> baseline name
      web: {DEBIAN: web-debian, UBUNTU: web-ubuntu}
    nodes:
      - id: local        # this machine, no SSH
      - id: web-1
        host: 10.0.0.5
        tags: {PatchGroup: web, env: prod}
        os: UBUNTU       # declared OS: os: selectors match it without connecting

Unknown keys are errors; messages name the file, the field and the fix. Files are read by
:mod:`patchfleet.config.inventory`; this module validates plain data. ``os`` is an AWS
OperatingSystem value (case-insensitive); a node that declares none has its OS read over SSH
when a run's targets select by OS (:mod:`patchfleet.ops.targeting`).
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from patchfleet.domain.baseline import OperatingSystem
from patchfleet.domain.model_errors import unknown_key_message
from patchfleet.errors import ConfigError

LOCAL_NODE_ID = "local"
NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
HOST_RE = re.compile(r"^[A-Za-z0-9_.:\-\[\]%]{1,253}$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_.\-]{0,31}\$?$", re.IGNORECASE)
PATCH_GROUP_TAGS = ("PatchGroup", "Patch Group")
OS_NAMES = ", ".join(OperatingSystem)


def operating_system(value: object) -> OperatingSystem:
    """An AWS OperatingSystem value, case-insensitively; ValueError naming the allowed ones."""
    name = value.strip().upper() if isinstance(value, str) else repr(value)
    try:
        return OperatingSystem(name)
    except ValueError:
        close = difflib.get_close_matches(str(name), list(OperatingSystem), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ValueError(f"{value!r} is not an operating system; {hint}use one of "
                         f"{OS_NAMES}") from None


def _check_user(v: str) -> str:
    """Every node's user goes into commands and suggested fixes: only a plain login name."""
    if not USER_RE.match(v):
        raise ValueError(f"{v[:64]!r} is not a valid user name (letters, digits, _ . -)")
    return v


def _not_bool(v: Any) -> Any:
    """YAML's ``true`` is not a port number (pydantic would take it as 1)."""
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a port number; give 1-65535")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeDefaults(_Strict):
    """Connection settings shared by every node unless a node overrides them."""

    user: str = "root"
    port: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=65535)] = 22
    identity_file: str | None = None
    """Private key file (OpenSSH format). None: use the SSH agent, then ~/.ssh/id_ed25519 etc."""
    install_user: str | None = None
    """The login for what changes a node (install, reboot, hooks); None: ``user``. Scans
    never use it, so the scan identity can be one that may not install."""
    install_identity_file: str | None = None
    """The key of ``install_user``; None: ``identity_file``."""
    known_hosts: str = "~/.ssh/known_hosts"
    """known_hosts file the node's host key is verified against. There is no accept-all."""
    host_key_policy: Literal["strict", "accept-new"] = "strict"
    """``accept-new`` records an unknown key on first contact (like OpenSSH's
    StrictHostKeyChecking=accept-new); a *changed* key is always refused."""
    sudo: bool = False
    """Run privileged commands through ``sudo -n`` (for non-root users)."""
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    command_timeout: Annotated[float, Field(gt=0, le=86400)] = 600.0
    max_output_bytes: Annotated[int, Field(gt=0)] = 64 * 1024 * 1024
    os: OperatingSystem | None = None
    """The nodes' operating system (AWS OperatingSystem value), when known without looking."""

    @field_validator("os", mode="before")
    @classmethod
    def _os(cls, v: Any) -> OperatingSystem | None:
        return None if v is None else operating_system(v)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        return _check_user(v)

    @field_validator("install_user")
    @classmethod
    def _install_user(cls, v: str | None) -> str | None:
        return None if v is None else _check_user(v)


class Node(_Strict):
    """One node. ``host`` defaults to the id; ``local`` is this machine, reached without SSH."""

    id: str
    host: str | None = None
    port: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=65535)] | None = None
    user: str | None = None
    identity_file: str | None = None
    install_user: str | None = None
    install_identity_file: str | None = None
    known_hosts: str | None = None
    host_key_policy: Literal["strict", "accept-new"] | None = None
    sudo: bool | None = None
    connect_timeout: Annotated[float, Field(gt=0, le=600)] | None = None
    command_timeout: Annotated[float, Field(gt=0, le=86400)] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    os: OperatingSystem | None = None
    """Declared OS: ``os:`` target selectors match it instead of reading /etc/os-release."""

    @field_validator("os", mode="before")
    @classmethod
    def _os(cls, v: Any) -> OperatingSystem | None:
        return None if v is None else operating_system(v)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not NODE_ID_RE.match(v):
            raise ValueError(
                f"{v!r} is not a valid node id: use 1-128 letters, digits, '_', '.', '-'"
            )
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not HOST_RE.match(v):
            raise ValueError(f"{v!r} is not a host name or IP address")
        return v

    @field_validator("user", "install_user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        return None if v is None else _check_user(v)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key, val in v.items():
                if isinstance(val, list | dict | tuple | set):
                    raise ValueError(f"tag {str(key)!r} has a {type(val).__name__} as its value; "
                                     "a tag value is one text (quote it, or join the items)")
            return {str(k): "" if val is None else str(val) for k, val in v.items()}
        return v

    @property
    def is_local(self) -> bool:
        return self.id == LOCAL_NODE_ID and self.host in (None, "localhost", LOCAL_NODE_ID)

    @property
    def patch_group(self) -> str | None:
        for key in PATCH_GROUP_TAGS:
            if key in self.tags:
                return self.tags[key]
        return None


class ResolvedNode(_Strict):
    """A node with the defaults applied: everything a transport needs."""

    id: str
    host: str
    port: int
    user: str
    identity_file: str | None
    known_hosts: str
    host_key_policy: Literal["strict", "accept-new"]
    sudo: bool
    connect_timeout: float
    command_timeout: float
    max_output_bytes: int
    tags: dict[str, str]
    local: bool
    os: OperatingSystem | None = None
    """Declared OS (node, else defaults); None: unknown until the node is looked at."""
    install_user: str | None = None
    install_identity_file: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        return _check_user(v)

    def for_install(self) -> ResolvedNode:
        """This node as an Install operation connects (its scans, the install, hooks, reboot):
        with the install identity when one is set; Scan operations use the node as it is."""
        if self.install_user is None and self.install_identity_file is None:
            return self
        return self.model_copy(update={
            "user": self.install_user or self.user,
            "identity_file": self.install_identity_file or self.identity_file})

    @property
    def patch_group(self) -> str | None:
        for key in PATCH_GROUP_TAGS:
            if key in self.tags:
                return self.tags[key]
        return None


class Inventory(_Strict):
    defaults: NodeDefaults = Field(default_factory=NodeDefaults)
    patch_groups: dict[str, dict[str, str]] = Field(default_factory=dict)
    nodes: list[Node]

    @field_validator("patch_groups", mode="before")
    @classmethod
    def _patch_group_oses(cls, v: Any) -> Any:
        """OS keys are AWS OperatingSystem values (a typo like DEBAIN was ignored)."""
        if not isinstance(v, dict):
            return v
        return {group: ({operating_system(os).value: name for os, name in by_os.items()}
                        if isinstance(by_os, dict) else by_os)
                for group, by_os in v.items()}

    @model_validator(mode="after")
    def _unique(self) -> Inventory:
        seen: set[str] = set()
        for n in self.nodes:
            if n.id in seen:
                raise ValueError(f"node id {n.id!r} appears twice; node ids must be unique")
            seen.add(n.id)
        return self

    def resolve(self, node: Node) -> ResolvedNode:
        d = self.defaults
        return ResolvedNode(
            id=node.id,
            host=node.host or ("localhost" if node.id == LOCAL_NODE_ID else node.id),
            port=node.port or d.port,
            user=node.user or d.user,
            identity_file=node.identity_file or d.identity_file,
            known_hosts=node.known_hosts or d.known_hosts,
            host_key_policy=node.host_key_policy or d.host_key_policy,
            sudo=d.sudo if node.sudo is None else node.sudo,
            connect_timeout=node.connect_timeout or d.connect_timeout,
            command_timeout=node.command_timeout or d.command_timeout,
            max_output_bytes=d.max_output_bytes,
            tags=dict(node.tags),
            local=node.is_local,
            os=node.os or d.os,
            install_user=node.install_user or d.install_user,
            install_identity_file=node.install_identity_file or d.install_identity_file,
        )

    def resolved(self) -> list[ResolvedNode]:
        return [self.resolve(n) for n in self.nodes]


def default_inventory() -> Inventory:
    """The embedded default: just this machine."""
    return Inventory(nodes=[Node(id=LOCAL_NODE_ID)])


def format_validation_error(
    err: ValidationError, source: str, model: type[BaseModel] = Inventory
) -> ConfigError:
    """Turn pydantic's error list into one ConfigError naming file, field and fix. ``model`` is
    the one validated, for the allowed keys an unknown key's message lists."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_key_message(model, e["loc"])
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{loc}: {msg}")
    return ConfigError("; ".join(lines), source=source)


def parse_inventory(data: Any, source: str) -> Inventory:
    if not isinstance(data, dict):
        raise ConfigError(
            "an inventory must be a mapping with a 'nodes:' list (and optional 'defaults:')",
            source=source,
        )
    try:
        return Inventory.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, source) from None

