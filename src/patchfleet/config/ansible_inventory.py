"""Ansible inventories (INI and YAML) read as a patchfleet :class:`Inventory`. Pure: text in.

Mapping (host variables after Ansible's precedence: ``all`` vars, then group vars from the
outermost parent group to the innermost child, groups of one depth by name, then host vars)::

    inventory hostname                    -> node id (host defaults to it, as in Ansible)
    ansible_host / ansible_ssh_host       -> host
    ansible_port / ansible_ssh_port       -> port (also ``name:2222`` on an INI host line)
    ansible_user / ansible_ssh_user       -> user
    ansible_ssh_private_key_file
      / ansible_private_key_file          -> identity_file
    ansible_become                        -> sudo (patchfleet runs ``sudo -n``)
    ansible_timeout / ansible_ssh_timeout -> connect_timeout
    PatchGroup / patch_group              -> tag ``PatchGroup`` (so ``group:NAME`` targets it)
    patchfleet_os                         -> os (declared AWS OperatingSystem, e.g. DEBIAN,
                                             so ``os:NAME`` targets it without connecting)
    patchfleet_install_user               -> install_user (the login of installs, reboots
    patchfleet_install_identity_file      -> install_identity_file   and hooks; scans: user)
    every group the host is in            -> tag ``ansible_group/<group>`` = ``"true"``
      (direct groups and their parent groups, not ``all``/``ungrouped``), targeted with
      ``--targets tag-key:ansible_group/web``

Other variables (application vars) are ignored. Settings patchfleet cannot honour are errors
rather than silently dropped: passwords (``ansible_password``, ``ansible_become_password``...),
``ansible_become_method`` other than sudo, ``ansible_become_user`` other than root, and
``ansible_connection`` other than ssh (``local`` only for a host named ``local``).

INI: ``[group]`` host lines (``name key=value ...``), ``[group:vars]``, ``[group:children]``,
hosts before any section are ``ungrouped``, ``#``/``;`` comments, ranges ``web[01:03]``,
``db-[a:c]``, ``n[0:10:5]``. YAML: the ``all:`` tree of ``hosts``/``vars``/``children``.
Anything else raises :class:`ConfigError` naming the file, the line (INI) or key path (YAML)
and the fix.
"""

from __future__ import annotations

import re
import shlex
import string
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from patchfleet.domain.inventory import (
    LOCAL_NODE_ID,
    Inventory,
    Node,
    format_validation_error,
    operating_system,
)
from patchfleet.errors import ConfigError

GROUP_TAG_PREFIX = "ansible_group/"
_GROUP_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SECTION_RE = re.compile(r"^\[([^\]:]+)(?::([^\]]*))?\]$")
_RANGE_RE = re.compile(r"^(.*?)\[([^\]]+)\](.*)$")
_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}
_PASSWORD_VARS = (
    "ansible_password", "ansible_ssh_pass", "ansible_ssh_password",
    "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
)
_ALIASES = {
    "ansible_host": "host", "ansible_ssh_host": "host",
    "ansible_port": "port", "ansible_ssh_port": "port",
    "ansible_user": "user", "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file", "ansible_private_key_file": "identity_file",
    "ansible_timeout": "connect_timeout", "ansible_ssh_timeout": "connect_timeout",
    "patchfleet_install_user": "install_user",
    "patchfleet_install_identity_file": "install_identity_file",
}


@dataclass
class _Var:
    value: Any
    where: str


@dataclass
class _Group:
    vars: dict[str, _Var] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)
    """The group's hosts in the order first seen (a dict: membership in O(1))."""
    children: list[str] = field(default_factory=list)


@dataclass
class _Model:
    source: str
    groups: dict[str, _Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, _Var]] = field(default_factory=dict)
    host_where: dict[str, str] = field(default_factory=dict)

    def group(self, name: str, where: str) -> _Group:
        if not _GROUP_RE.match(name):
            raise ConfigError(
                f"{name!r} is not a valid group name; use letters, digits, '_', '.', '-'",
                source=self.source, field=where,
            )
        return self.groups.setdefault(name, _Group())

    def add_host(self, group: str, host: str, hvars: dict[str, _Var], where: str) -> None:
        if host not in self.host_vars and len(self.host_vars) >= MAX_HOSTS:
            raise ConfigError(
                f"more than {MAX_HOSTS:,} hosts; split the fleet into several inventories "
                "(one per policy or region)", source=self.source, field=where)
        g = self.group(group, where)
        g.hosts.setdefault(host, None)
        self.host_where.setdefault(host, where)
        self.host_vars.setdefault(host, {}).update(hvars)


MAX_HOSTS = 100_000
"""Most hosts one Ansible inventory may expand to (ranges included); sharded scans handle
100,000 nodes (README, Performance), and a range past that is a typo such as ``w[0:9999999]``."""


def expand_host_pattern(pattern: str, source: str = "", where: str | None = None) -> list[str]:
    """Expand Ansible host ranges: ``web[01:03]`` -> web01, web02, web03; ``[a:c]``; strides."""
    m = _RANGE_RE.match(pattern)
    if not m:
        return [pattern]
    head, body, tail = m.groups()
    parts = body.split(":")
    fix = "write a range as [START:END] or [START:END:STEP], e.g. web[01:10] or db-[a:f]"
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"bad host range [{body}] in {pattern!r}; {fix}", source, where)
    beg, end = parts[0], parts[1]
    step_s = parts[2] if len(parts) == 3 else "1"
    if not step_s.isdigit() or int(step_s) < 1:
        raise ConfigError(f"bad range step {step_s!r} in {pattern!r}; {fix}", source, where)
    step = int(step_s)
    rests = expand_host_pattern(tail, source, where)
    items: list[str]
    if beg.isdigit() and end.isdigit() and int(beg) <= int(end):
        count = (int(end) - int(beg)) // step + 1
        if count * len(rests) > MAX_HOSTS:
            raise ConfigError(
                f"range [{body}] in {pattern!r} makes {count * len(rests):,} hosts, more than "
                f"the {MAX_HOSTS:,} an inventory may hold; split the fleet into several "
                "inventories (one per policy or region)", source, where)
    if beg.isdigit() and end.isdigit():
        width = len(beg) if beg.startswith("0") and len(beg) > 1 else 0
        if width and len(end) != width:
            raise ConfigError(
                f"range [{body}] in {pattern!r}: a zero-padded start needs an end of the same "
                f"width, e.g. [{beg}:{end.zfill(width)}]", source, where,
            )
        if int(beg) > int(end):
            raise ConfigError(f"range [{body}] in {pattern!r} runs backwards; {fix}",
                              source, where)
        items = [str(i).zfill(width) for i in range(int(beg), int(end) + 1, step)]
    elif (len(beg) == 1 and len(end) == 1 and beg in string.ascii_letters
          and end in string.ascii_letters and beg.islower() == end.islower() and beg <= end):
        items = [chr(c) for c in range(ord(beg), ord(end) + 1, step)]
    else:
        raise ConfigError(f"bad host range [{body}] in {pattern!r}; {fix}", source, where)
    return [f"{head}{i}{rest}" for i in items for rest in rests]


def _ini_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_ansible_ini(text: str, source: str) -> Inventory:
    """Parse an Ansible INI inventory."""
    model = _Model(source)
    section = ("ungrouped", "hosts")
    for no, raw in enumerate(text.splitlines(), start=1):
        where = f"line {no}"
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            m = _SECTION_RE.match(line)
            if not m:
                raise ConfigError(
                    f"{line!r} is not a section header; use [group], [group:vars] or "
                    "[group:children]", source, where,
                )
            name, kind = m.group(1).strip(), m.group(2)
            if kind not in (None, "vars", "children"):
                raise ConfigError(
                    f"unknown section kind ':{kind}' in {line!r}; use [group], [group:vars] "
                    "or [group:children]", source, where,
                )
            model.group(name, where)
            section = (name, kind or "hosts")
            continue
        group, kind = section
        if kind == "vars":
            key, eq, value = line.partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"{line!r} is not a variable; write KEY=VALUE in a [{group}:vars] section",
                    source, where,
                )
            model.groups[group].vars[key.strip()] = _Var(_ini_value(value), where)
        elif kind == "children":
            if len(line.split()) != 1:
                raise ConfigError(
                    f"{line!r}: a [{group}:children] section lists one group name per line",
                    source, where,
                )
            model.group(line, where)
            if line not in model.groups[group].children:
                model.groups[group].children.append(line)
        else:
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as err:
                raise ConfigError(f"cannot split {line!r}: {err}; check the quotes",
                                  source, where) from None
            if not tokens:
                continue
            name, hvars = tokens[0], {}
            m = re.match(r"^([^:\[\]]+):(\d+)$", name)
            if m:
                name = m.group(1)
                hvars["ansible_port"] = _Var(m.group(2), where)
            for tok in tokens[1:]:
                key, eq, value = tok.partition("=")
                if not eq or not key:
                    raise ConfigError(
                        f"{tok!r} on host line {line!r} is not KEY=VALUE; host variables are "
                        "written name key=value key2=value2", source, where,
                    )
                hvars[key] = _Var(value, where)
            for host in expand_host_pattern(name, source, where):
                model.add_host(group, host, hvars, where)
    return _build(model)


def _yaml_group(model: _Model, name: str, data: Any, path: str) -> None:
    model.group(name, path)
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(
            "a group must be a mapping of hosts:, vars: and children:", model.source, path
        )
    for key in data:
        if key not in ("hosts", "vars", "children"):
            raise ConfigError(
                f"unknown key {key!r} in a group; a group has only hosts:, vars:, children: "
                "(put a sub-group under children:)", model.source, f"{path}.{key}",
            )
    g = model.groups[name]
    gvars = data.get("vars") or {}
    if not isinstance(gvars, dict):
        raise ConfigError("vars: must be a mapping of name: value", model.source, f"{path}.vars")
    for k, v in gvars.items():
        g.vars[str(k)] = _Var(v, f"{path}.vars.{k}")
    hosts = data.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise ConfigError(
            "hosts: must be a mapping of hostname: {vars} (a list is not Ansible's format)",
            model.source, f"{path}.hosts",
        )
    for hname, hv in hosts.items():
        hpath = f"{path}.hosts.{hname}"
        if hv is not None and not isinstance(hv, dict):
            raise ConfigError("host variables must be a mapping of name: value",
                              model.source, hpath)
        hvars = {str(k): _Var(v, f"{hpath}.{k}") for k, v in (hv or {}).items()}
        for host in expand_host_pattern(str(hname), model.source, hpath):
            model.add_host(name, host, hvars, hpath)
    children = data.get("children") or {}
    if not isinstance(children, dict):
        raise ConfigError("children: must be a mapping of group: {hosts, vars, children}",
                          model.source, f"{path}.children")
    for cname, cdata in children.items():
        cname = str(cname)
        _yaml_group(model, cname, cdata, f"{path}.children.{cname}")
        if cname not in g.children:
            g.children.append(cname)


def parse_ansible_yaml(data: Any, source: str) -> Inventory:
    """Parse an Ansible YAML inventory already loaded (with ``config.yaml_loader``)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            "an Ansible YAML inventory is a mapping whose top-level keys are groups, "
            "normally 'all:'", source,
        )
    model = _Model(source)
    for name, gdata in data.items():
        _yaml_group(model, str(name), gdata, str(name))
    return _build(model)


def _depths(model: _Model) -> tuple[dict[str, int], dict[str, set[str]]]:
    """Depth of each group below ``all`` and each group's parents (implicit parent: all)."""
    parents: dict[str, set[str]] = {name: set() for name in model.groups}
    for name, g in model.groups.items():
        for child in g.children:
            if child == "all":
                raise ConfigError(f"group {name!r} lists 'all' as a child; 'all' contains "
                                  "every group, remove it", model.source)
            parents[child].add(name)
    for name in parents:
        if name != "all" and not parents[name]:
            parents[name].add("all")
    depth: dict[str, int] = {}

    def visit(name: str, stack: tuple[str, ...]) -> int:
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name):], name))
            raise ConfigError(f"group children form a cycle ({cycle}); remove one link",
                              model.source)
        if name not in depth:
            depth[name] = 0 if name == "all" else 1 + max(
                visit(p, (*stack, name)) for p in parents[name])
        return depth[name]

    model.groups.setdefault("all", _Group())
    parents.setdefault("all", set())
    for name in model.groups:
        visit(name, ())
    return depth, parents


def _bool(var: _Var, key: str, source: str) -> bool:
    if isinstance(var.value, bool):
        return var.value
    s = str(var.value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ConfigError(f"{key}={var.value!r} is not a boolean; use true or false", source,
                      var.where)


def _node(host: str, hvars: dict[str, _Var], groups: set[str], source: str, where: str) -> Node:
    fields: dict[str, Any] = {"id": host}
    tags = {f"{GROUP_TAG_PREFIX}{g}": "true" for g in sorted(groups)}
    for key, var in hvars.items():
        if key in _PASSWORD_VARS:
            raise ConfigError(
                f"{key}: password authentication is not supported; use a key "
                "(ansible_ssh_private_key_file) and passwordless sudo", source, var.where,
            )
        if key in _ALIASES:
            fields[_ALIASES[key]] = None if var.value is None else str(var.value)
        elif key == "ansible_become":
            fields["sudo"] = _bool(var, key, source)
        elif key == "ansible_become_method" and str(var.value) != "sudo":
            raise ConfigError(f"ansible_become_method={var.value}: patchfleet escalates only "
                              "with sudo -n; use sudo", source, var.where)
        elif key == "ansible_become_user" and str(var.value) != "root":
            raise ConfigError(f"ansible_become_user={var.value}: patchfleet needs root; "
                              "remove it or set root", source, var.where)
        elif key == "ansible_connection":
            conn = str(var.value)
            if conn == "local" and host != LOCAL_NODE_ID:
                raise ConfigError(
                    f"ansible_connection=local on host {host!r}: patchfleet reaches this "
                    f"machine as the host named {LOCAL_NODE_ID!r}; rename the host to "
                    f"{LOCAL_NODE_ID!r}", source, var.where,
                )
            if conn not in ("ssh", "smart", "paramiko", "local"):
                raise ConfigError(f"ansible_connection={conn}: patchfleet connects only over "
                                  "ssh; remove it or use ssh", source, var.where)
        elif key in ("PatchGroup", "patch_group"):
            tags["PatchGroup"] = str(var.value)
        elif key == "patchfleet_os":
            try:
                fields["os"] = operating_system(var.value)
            except ValueError as err:
                raise ConfigError(f"{key}: {err}", source, var.where) from None
    try:
        return Node.model_validate({**fields, "tags": tags})
    except ValidationError as err:
        e = format_validation_error(err, source, Node)
        raise ConfigError(f"host {host!r}: {e.message}", source, where) from None


def _build(model: _Model) -> Inventory:
    depth, parents = _depths(model)
    order: list[str] = []
    member: dict[str, set[str]] = {}
    for name, grp in model.groups.items():
        for h in grp.hosts:
            if h not in member:
                order.append(h)
            member.setdefault(h, set()).add(name)
    nodes = []
    for host in order:
        groups: set[str] = set()
        todo = list(member[host])
        while todo:
            g = todo.pop()
            if g not in groups:
                groups.add(g)
                todo.extend(parents[g])
        merged: dict[str, _Var] = {}
        for g in sorted(groups | {"all"}, key=lambda n: (depth[n], n)):
            merged.update(model.groups[g].vars)
        merged.update(model.host_vars.get(host, {}))
        nodes.append(_node(host, merged, groups - {"all", "ungrouped"}, model.source,
                           model.host_where[host]))
    if not nodes:
        raise ConfigError("the Ansible inventory lists no hosts; add hosts under a group",
                          model.source)
    return Inventory(nodes=nodes)
