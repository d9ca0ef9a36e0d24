"""The bad-input catalogue (issue 13, "Done when" 1): one table of hostile and careless inputs.

Each row is one case: what is run (a ``patchfleet`` command line, in-process through typer's
CliRunner, or a loader call), the files it needs (written into a fresh tmp folder from the
inline text below), the expected exit code (2 bad input, 1 where documented) and a regex the
ONE error line must match: it names the file (or flag) and the field, and says the fix. Every
case also asserts that nothing under the tmp folder was created or changed: the tree and the
bytes of every file are compared before and after (so a ``--store`` folder that did not exist
must still not exist, and a copied real store stays byte-identical after a query attack).

No case reaches a node or Prefect: the CLI's flow runner is replaced by one that fails the test,
EC2 and Prefect endpoints point at a closed local port, and tests/unit/conftest.py fails any
server start. ``python tests/unit/test_bad_input_catalogue.py`` prints the totals.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patchfleet.config.baselines import load_aws_json_file, load_baseline
from patchfleet.config.hooks import load_hooks_file
from patchfleet.config.overrides import load_install_override
from patchfleet.config.policies import load_deployments
from patchfleet.config.sources.loader import load_nodes_source
from patchfleet.errors import InputError, PatchfleetError
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore

CASES_DIR = Path(__file__).resolve().parents[1] / "cases"
V1_STORE = CASES_DIR / "store" / "v1" / "initial"
INVALID_BASELINES = CASES_DIR / "baselines" / "invalid"
MIB = 1024 * 1024
runner = CliRunner()
cli_app = importlib.import_module("patchfleet.cli.app")

Files = Mapping[str, str | bytes]


@dataclass(frozen=True)
class Case:
    """One row. ``run`` is a CLI argv (``{t}`` is the tmp folder) or a loader taking it."""

    id: str
    run: tuple[str, ...] | Callable[[Path], object]
    match: str
    files: Files = field(default_factory=dict)
    code: int = 2
    store: bool = False
    """Copy the committed real v1 store to ``{t}/store`` first (it must stay byte-identical)."""
    xfail: str | None = None


CASES: list[Case] = []


def cli(case_id: str, argv: str | Sequence[str], match: str, files: Files | None = None,
        code: int = 2, store: bool = False, xfail: str | None = None) -> None:
    args = tuple(shlex.split(argv)) if isinstance(argv, str) else tuple(argv)
    CASES.append(Case(case_id, args, match, files or {}, code, store, xfail))


def loader(case_id: str, call: Callable[[Path], object], match: str,
           files: Files | None = None, store: bool = False, xfail: str | None = None) -> None:
    CASES.append(Case(case_id, call, match, files or {}, 2, store, xfail))


# -- valid examples the bad cases are made from -------------------------------------------------

INV = "nodes:\n  - id: local\n"
BASELINE = """\
name: custom-debian
operating_system: DEBIAN
approval_rules:
  - patch_filters:
      - key: PRIORITY
        values: [Required]
    approve_after_days: 7
    compliance_level: HIGH
"""
AWS_BASELINE: dict[str, Any] = {
    "Name": "custom-debian",
    "OperatingSystem": "DEBIAN",
    "GlobalFilters": {"PatchFilters": []},
    "ApprovalRules": {"PatchRules": [{
        "PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required"]}]},
        "ApproveAfterDays": 7, "ComplianceLevel": "HIGH", "EnableNonSecurity": False}]},
    "ApprovedPatches": [], "RejectedPatches": [],
}
POLICY = """\
policies:
  - name: web
    operation: Scan
    scan_schedule: cron(0 1 * * ? *)
    inventory: {t}/inv.yaml
    targets: "*"
windows:
  - name: night
    schedule: cron(0 2 ? * SUN *)
    duration_hours: 4
    cutoff_hours: 1
    inventory: {t}/inv.yaml
    targets: "*"
    tasks:
      - {name: scan-all, priority: 0, operation: Scan}
"""
BOMB = ('a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                  for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
"""A 1 KB "billion laughs": 10**9 strings once expanded."""


def aws(**changes: Any) -> str:
    data = json.loads(json.dumps(AWS_BASELINE))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data)


def rule(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(AWS_BASELINE["ApprovalRules"]["PatchRules"][0]))
    data.update(changes)
    return {"PatchRules": [data]}


def policy(old: str, new: str) -> Files:
    assert old in POLICY, old
    return {"p.yaml": POLICY.replace(old, new, 1), "inv.yaml": INV}


ST = "--store {t}/store"

# -- inventories: patchfleet YAML ---------------------------------------------------------------

SCAN = "scan -i {t}/inv.yaml " + ST


def inv(case_id: str, text: str | bytes, match: str, xfail: str | None = None) -> None:
    cli(f"inventory-{case_id}", SCAN, match, {"inv.yaml": text}, xfail=xfail)


cli("inventory-missing-file", "scan -i {t}/nope.yaml " + ST,
    r"nope\.yaml: file not found; pass an existing inventory")
cli("inventory-is-a-folder", "scan -i {t}/dir.yaml " + ST, r"dir\.yaml.*(folder|directory)",
    {"dir.yaml/x": "x"})
cli("inventory-unknown-suffix", "scan -i {t}/inv.txt " + ST,
    r"inv\.txt: unknown inventory file type '\.txt'", {"inv.txt": INV})
cli("inventory-unreadable-proc-mem", "scan -i /proc/self/mem " + ST,
    r"/proc/self/mem: cannot read")
inv("empty-file", "", r"inv\.yaml.*(empty|nodes)")
inv("not-a-mapping", "- local\n", r"inv\.yaml.*(mapping|list)")
inv("unknown-top-key", INV + "nodez: []\n", r"inv\.yaml: nodez.*(not allowed|unknown)")
inv("nodes-not-a-list", "nodes: local\n", r"inv\.yaml: nodes.*list")
inv("nodes-empty", "nodes: []\n",
    r"--targets: '\*' selects no node: the inventory lists none; add nodes")
inv("node-without-id", "nodes:\n  - host: 192.0.2.1\n", r"inv\.yaml: nodes\.0\.id")
inv("duplicate-node-id", "nodes:\n  - {id: a, host: h1}\n  - {id: a, host: h2}\n",
    r"inv\.yaml: .*node id 'a' appears twice; node ids must be unique")
inv("node-id-bad-chars", "nodes:\n  - {id: 'a b;c', host: h}\n", r"inv\.yaml: nodes\.0\.id")
inv("port-true", "nodes:\n  - {id: a, host: h, port: true}\n",
    r"inv\.yaml: nodes\.0\.port: True is not a port number")
inv("port-zero", "nodes:\n  - {id: a, host: h, port: 0}\n", r"inv\.yaml: nodes\.0\.port")
inv("port-too-big", "nodes:\n  - {id: a, host: h, port: 70000}\n",
    r"inv\.yaml: nodes\.0\.port")
inv("port-text", "nodes:\n  - {id: a, host: h, port: ssh}\n", r"inv\.yaml: nodes\.0\.port")
inv("port-huge-int", "nodes:\n  - {id: a, host: h, port: 99999999999999999999999}\n",
    r"inv\.yaml: nodes\.0\.port")
inv("defaults-port-true", "defaults: {port: true}\n" + INV,
    r"inv\.yaml: defaults\.port: True is not a port number")
inv("user-injection", "nodes:\n  - {id: a, host: h, user: 'x;touch /tmp/pwn'}\n",
    r"inv\.yaml: nodes\.0\.user")
inv("defaults-user-injection", "defaults: {user: '$(reboot)'}\n" + INV,
    r"inv\.yaml: defaults\.user")
inv("host-with-space", "nodes:\n  - {id: a, host: 'h x'}\n", r"inv\.yaml: nodes\.0\.host")
inv("host-option-injection", "nodes:\n  - {id: a, host: '-oProxyCommand=sh'}\n",
    r"inv\.yaml: nodes\.0\.host")
inv("tags-not-a-mapping", "nodes:\n  - {id: a, host: h, tags: [web]}\n",
    r"inv\.yaml: nodes\.0\.tags")
inv("tag-value-a-list", "nodes:\n  - {id: a, host: h, tags: {env: [a, b]}}\n",
    r"inv\.yaml: nodes\.0\.tags.*'env' has a list as its value")
inv("patch-groups-misspelt-os", "patch_groups: {web: {DEBAIN: x}}\n" + INV,
    r"inv\.yaml: patch_groups.*'DEBAIN' is not an operating system; did you mean DEBIAN")
inv("patch-groups-unknown-baseline",
    "patch_groups: {web: {DEBIAN: no-such-baseline}}\n"
    "nodes: [{id: local, tags: {PatchGroup: web}}]\n", r"no-such-baseline")
inv("patch-groups-wrong-os-baseline",
    "patch_groups: {web: {DEBIAN: AWS-UbuntuDefaultPatchBaseline}}\n"
    "nodes: [{id: local, tags: {PatchGroup: web}}]\n",
    r"inv\.yaml: patch_groups\.web\.DEBIAN: .*is for UBUNTU, not DEBIAN")
inv("host-key-policy-enum", "defaults: {host_key_policy: yolo}\n" + INV,
    r"inv\.yaml: defaults\.host_key_policy")
inv("connect-timeout-negative", "defaults: {connect_timeout: -1}\n" + INV,
    r"inv\.yaml: defaults\.connect_timeout")
inv("command-timeout-huge", "defaults: {command_timeout: 1e300}\n" + INV,
    r"inv\.yaml: defaults\.command_timeout")
inv("sudo-maybe", "defaults: {sudo: maybe}\n" + INV, r"inv\.yaml: defaults\.sudo")
inv("node-unknown-key", "nodes:\n  - {id: a, host: h, hostname: h}\n",
    r"inv\.yaml: nodes\.0\.hostname")
inv("duplicate-yaml-key", "nodes:\n  - id: a\n    host: h1\n    host: h2\n",
    r"inv\.yaml: .*duplicate key 'host' \(first at line 3\)")
inv("alias-bomb-tags", "x: &x\n" + "".join("  " + ln + "\n" for ln in BOMB.splitlines())
    + "nodes: [{id: a, host: h, tags: *x}]\n", r"inv\.yaml: YAML aliases expand too far")
inv("alias-bomb-os", BOMB + "nodes: [{id: a, host: h, os: *i}]\n",
    r"inv\.yaml: YAML aliases expand too far")
inv("recursive-alias", "nodes: &n [{id: a, host: h, tags: *n}]\n",
    r"inv\.yaml: .*(recursive YAML alias|alias)")
inv("deep-nesting", "nodes: " + "[" * 20_000 + "]" * 20_000 + "\n",
    r"inv\.yaml: YAML nested too deeply")
inv("huge-file", "# " + "x" * (10 * MIB) + "\n" + INV, r"inv\.yaml: larger than 10 MiB")
inv("yaml-syntax", "nodes: [{id: a\n", r"inv\.yaml: not valid YAML at line")
inv("not-utf8", b"nodes:\n  - id: \xff\xfe\n", r"inv\.yaml: is not UTF-8 text; use a")
inv("bad-date-value", "nodes:\n  - {id: a, host: h, tags: {since: 2024-13-45}}\n",
    r"inv\.yaml: not valid YAML at line 2.*quote the value")
cli("targets-empty", "scan -t '' " + ST, r"--targets", {"inv.yaml": INV})
cli("targets-tag-without-key", "scan -i {t}/inv.yaml -t tag: " + ST, r"tag:",
    {"inv.yaml": INV})
cli("targets-unknown-os", "scan -i {t}/inv.yaml -t os:DEBAIN " + ST,
    r"--targets: 'os:DEBAIN' matches no operating system; use os:NAME",
    {"inv.yaml": INV})
cli("targets-select-nothing", "scan -i {t}/inv.yaml -t nosuch-node " + ST, r"nosuch-node",
    {"inv.yaml": INV})
cli("targets-unknown-kind", "scan -i {t}/inv.yaml -t colour:red " + ST, r"colour:red",
    {"inv.yaml": INV})

# -- inventories: Ansible INI and YAML ----------------------------------------------------------

INI = "scan -i {t}/hosts " + ST


def ini(case_id: str, text: str, match: str) -> None:
    cli(f"ansible-ini-{case_id}", INI, match, {"hosts": text})


ini("host-range-bomb", "[web]\nw[0:9999999].example.com\n", r"hosts.*100,?000")
ini("host-range-reversed", "[web]\nw[9:1]\n", r"hosts.*w\[9:1\]")
ini("host-range-letters-mixed", "[web]\nw[a:9]\n", r"hosts: line 2: bad host range \[a:9\] "
    r"in 'w\[a:9\]'; write a range as \[START:END\] or \[START:END:STEP\]")
ini("port-text", "[web]\nw1 ansible_port=ssh\n", r"hosts: line 2: host 'w1': port: Input "
    "should be a valid integer")
ini("port-zero", "[web]\nw1 ansible_port=0\n", r"hosts: line 2: host 'w1': port: Input "
    "should be greater than or equal to 1")
ini("port-huge", "[web]\nw1 ansible_port=99999999999999999999\n",
    r"hosts: line 2: host 'w1': port: Input should be less than or equal to 65535")
ini("user-injection", "[web]\nw1 ansible_user='x;touch /tmp/pwn'\n", r"hosts.*user")
ini("group-vars-user-injection", "[web]\nw1\n[web:vars]\nansible_user=`id`\n",
    r"hosts.*user")
ini("section-unclosed", "[web\nw1\n", r"hosts.*line 1")
ini("vars-line-without-equals", "[web:vars]\nansible_user\n", r"hosts.*line 2")
ini("host-option-injection", "[web]\n-oProxyCommand=x\n", r"hosts.*-oProxyCommand")
ini("empty-inventory", "# nothing\n", r"hosts.*(no hosts|no nodes|empty)")
cli("ansible-yaml-alias-bomb", "scan -i {t}/hosts.yaml " + ST,
    r"hosts\.yaml: YAML aliases expand too far",
    {"hosts.yaml": BOMB + "all:\n  hosts:\n    w1: {tags: *i}\n"})
cli("ansible-yaml-hosts-not-a-mapping", "scan -i {t}/hosts.yaml " + ST,
    r"hosts\.yaml: .*all\.hosts", {"hosts.yaml": "all:\n  hosts: [w1, w2]\n"})
cli("ansible-yaml-port-true", "scan -i {t}/hosts.yaml " + ST,
    r"hosts\.yaml: all\.hosts\.w1: host 'w1': port: Input should be a valid integer",
    {"hosts.yaml": "all:\n  hosts:\n    w1: {ansible_port: true}\n"})
cli("ansible-yaml-range-bomb", "scan -i {t}/hosts.yaml " + ST, r"hosts\.yaml.*100,?000",
    {"hosts.yaml": "all:\n  hosts:\n    'w[0:9999999]':\n"})
cli("ansible-yaml-children-not-mapping", "scan -i {t}/hosts.yaml " + ST,
    r"hosts\.yaml: .*children", {"hosts.yaml": "all:\n  children: [web]\n"})

# -- inventories: ec2:// URLs (malformed only; no request is made) ------------------------------

for case_id, url, match in [
    ("wrong-path", "ec2://us-east-1/instances", r"unexpected path '/instances'"),
    ("unknown-parameter", "ec2://us-east-1?colour=red", r"unknown parameter 'colour'"),
    ("tag-without-value", "ec2://us-east-1?tag:Env=", r"tag:Env needs a value"),
    ("tag-key-without-value", "ec2://us-east-1?tag-key=", r"tag-key needs a value"),
    ("bad-address", "ec2://us-east-1?address=mac", r"address='mac'; use one of"),
    ("bad-query", "ec2://us-east-1?&&=", r"cannot parse the query"),
    ("bad-port", "ec2://us-east-1?port=0", r"port"),
    ("user-injection", "ec2://us-east-1?user=a;b", r"user"),
    ("fragment", "ec2://us-east-1#x", r"unexpected path"),
    ("other-scheme", "gcp://europe-west1", r"unsupported URL scheme"),
]:
    cli(f"ec2-url-{case_id}", ["scan", "-i", url, "--store", "{t}/store"],
        re.escape(url.split("?")[0].split("#")[0]) + ".*" + match)

# -- baselines: YAML ----------------------------------------------------------------------------

BV = "baseline validate {t}/b.yaml"


def byaml(case_id: str, text: str, match: str) -> None:
    cli(f"baseline-yaml-{case_id}", BV, match, {"b.yaml": text})


for path in sorted(INVALID_BASELINES.glob("*.yaml")):
    cli(f"baseline-yaml-repo-{path.stem}", "baseline validate {t}/" + path.name,
        re.escape(path.name) + ": ", {path.name: path.read_text()})

byaml("name-too-long", BASELINE.replace("custom-debian", "x" * 200), r"b\.yaml: name")
byaml("name-injection", BASELINE.replace("custom-debian", "'a;rm -rf /'"), r"b\.yaml: name")
byaml("os-lowercase-unknown", BASELINE.replace("DEBIAN", "debain"),
      r"b\.yaml: operating_system")
byaml("os-windows", BASELINE.replace("DEBIAN", "WINDOWS"),
      r"b\.yaml: approval_rules\.0\.patch_filters\.0\.key: 'PRIORITY' is not a filter key for "
      "WINDOWS; use one of")
byaml("approval-rules-not-a-list", "name: xyz\noperating_system: DEBIAN\napproval_rules: {}\n",
      r"b\.yaml: approval_rules: Input should be a valid tuple")
byaml("approve-after-days-negative", BASELINE.replace("approve_after_days: 7",
                                                      "approve_after_days: -1"),
      r"b\.yaml: approval_rules\.0\.approve_after_days")
byaml("approve-after-days-361", BASELINE.replace("approve_after_days: 7",
                                                 "approve_after_days: 361"),
      r"b\.yaml: approval_rules\.0\.approve_after_days")
byaml("approve-after-days-huge", BASELINE.replace("approve_after_days: 7",
                                                  "approve_after_days: 1e400"),
      r"b\.yaml: approval_rules\.0\.approve_after_days")
byaml("approve-after-days-text", BASELINE.replace("approve_after_days: 7",
                                                  "approve_after_days: seven"),
      r"b\.yaml: approval_rules\.0\.approve_after_days")
byaml("approve-until-date-bad", BASELINE.replace("approve_after_days: 7",
                                                 "approve_until_date: '2024-02-30'"),
      r"b\.yaml: approval_rules\.0\.approve_until_date")
byaml("compliance-level-enum", BASELINE.replace("compliance_level: HIGH",
                                                "compliance_level: SEVERE"),
      r"b\.yaml: approval_rules\.0\.compliance_level")
byaml("enable-non-security-text", BASELINE + "    enable_non_security: maybe\n",
      r"b\.yaml: approval_rules\.0\.enable_non_security")
byaml("filter-values-empty", BASELINE.replace("values: [Required]", "values: []"),
      r"b\.yaml: approval_rules\.0\.patch_filters\.0\.values")
byaml("filter-values-not-a-list", BASELINE.replace("values: [Required]", "values: Required"),
      r"b\.yaml: approval_rules\.0\.patch_filters\.0\.values")
byaml("approved-patches-not-a-list", BASELINE + "approved_patches: openssl\n",
      r"b\.yaml: approved_patches")
byaml("approved-patches-mapping-item", BASELINE + "approved_patches: [{a: b}]\n",
      r"b\.yaml: approved_patches")
byaml("approved-level-enum", BASELINE + "approved_patches_compliance_level: URGENT\n",
      r"b\.yaml: approved_patches_compliance_level")
byaml("rejected-action-enum", BASELINE + "rejected_patches_action: DROP\n",
      r"b\.yaml: rejected_patches_action")
byaml("description-a-mapping", BASELINE + "description: {a: 1}\n", r"b\.yaml: description")
byaml("global-filters-not-a-list", BASELINE + "global_filters: PRODUCT\n",
      r"b\.yaml: global_filters")
byaml("alias-bomb-description", BOMB + BASELINE + "description: *i\n",
      r"b\.yaml: YAML aliases expand too far")
byaml("deep-nesting", "name: " + "{a: " * 5000 + "x" + "}" * 5000 + "\n",
      r"b\.yaml: YAML nested too deeply")
byaml("huge-file", BASELINE + "# " + "x" * (10 * MIB + 1) + "\n", r"b\.yaml: larger than 10 MiB")
cli("baseline-validate-missing-file", "baseline validate {t}/nope.yaml",
    r"nope\.yaml: .*(not found|no such)")
cli("baseline-validate-folder", "baseline validate {t}/dir.yaml", r"dir\.yaml",
    {"dir.yaml/x": "x"})

# -- baselines: AWS JSON (validate, import, and as --baseline) ----------------------------------

BJ = "baseline validate {t}/b.json"


def bjson(case_id: str, text: str, match: str) -> None:
    cli(f"baseline-json-{case_id}", BJ, match, {"b.json": text})


bjson("empty-array", "[]", r"b\.json: .*BaselineOverride array is empty")
bjson("not-json", "{Name: x}", r"b\.json: .*JSON")
bjson("top-level-number", "42", r"b\.json")
bjson("top-level-string", '"AWS-UbuntuDefaultPatchBaseline"', r"b\.json")
bjson("array-of-numbers", "[1, 2]", r"b\.json")
bjson("missing-name", aws(Name=None), r"b\.json: .*Name")
bjson("os-unknown", aws(OperatingSystem="PLAN9"), r"b\.json: .*OperatingSystem")
bjson("os-a-number", aws(OperatingSystem=7), r"b\.json: .*OperatingSystem")
bjson("unknown-key", aws(Colour="red"), r"b\.json: .*Colour")
bjson("patch-rules-not-a-list", aws(ApprovalRules={"PatchRules": {}}),
      r"b\.json: .*PatchRules")
bjson("approve-after-days-text", aws(ApprovalRules=rule(ApproveAfterDays="seven")),
      r"b\.json: .*ApproveAfterDays")
bjson("approve-after-days-negative", aws(ApprovalRules=rule(ApproveAfterDays=-1)),
      r"b\.json: .*ApproveAfterDays")
bjson("approve-after-days-overflow", '{"Name": "xyz", "OperatingSystem": "DEBIAN", '
      '"ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []}, '
      '"ApproveAfterDays": 1e999}]}}', r"b\.json: .*ApproveAfterDays")
bjson("compliance-level-enum", aws(ApprovalRules=rule(ComplianceLevel="SEVERE")),
      r"b\.json: .*ComplianceLevel")
bjson("enable-non-security-text", aws(ApprovalRules=rule(EnableNonSecurity="maybe")),
      r"b\.json: .*EnableNonSecurity")
cli("baseline-json-enable-non-security-yes", BJ, r"b\.json: .*EnableNonSecurity",
    {"b.json": aws(ApprovalRules=rule(EnableNonSecurity="yes"))})
bjson("filter-key-unknown", aws(GlobalFilters={"PatchFilters": [{"Key": "COLOUR",
                                                                  "Values": ["x"]}]}),
      r"b\.json: .*COLOUR")
bjson("rejected-action-enum", aws(RejectedPatchesAction="DROP"),
      r"b\.json: .*RejectedPatchesAction")
bjson("approved-patches-not-a-list", aws(ApprovedPatches="openssl"),
      r"b\.json: .*ApprovedPatches")
bjson("duplicate-keys", '{"Name": "a", "Name": "b", "OperatingSystem": "DEBIAN"}',
      r"b\.json: duplicate key 'Name' in a JSON object; keep only one")
bjson("deep-nesting", "[" * 100_000 + "]" * 100_000, r"b\.json: .*(deep|nest)")
bjson("huge-file", " " * (10 * MIB + 1) + aws(), r"b\.json: larger than 10 MiB")
bjson("nan-days", '{"Name": "xyz", "OperatingSystem": "DEBIAN", "ApprovalRules": {"PatchRules": '
      '[{"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": NaN}]}}',
      r"b\.json: .*ApproveAfterDays")
cli("baseline-import-empty-array", "baseline import {t}/b.json --out-dir {t}/out",
    r"b\.json: .*BaselineOverride array is empty", {"b.json": "[]"})
cli("baseline-import-missing-file", "baseline import {t}/nope.json --out-dir {t}/out",
    r"nope\.json: .*(not found|no such)")
cli("baseline-import-out-dir-is-a-file", "baseline import {t}/b.json --out-dir {t}/f",
    r"--out-dir: .*f is not a folder; give a folder", {"b.json": aws(), "f": "x"})
cli("baseline-import-would-overwrite", "baseline import {t}/b.json --out-dir {t}/out",
    r"custom-debian\.yaml.*--force",
    {"b.json": aws(), "out/custom-debian.yaml": "name: old\n"})
cli("scan-baseline-override-empty-array", "scan -b {t}/b.json " + ST,
    r"b\.json: .*BaselineOverride array is empty", {"b.json": "[]"})
cli("scan-baseline-override-bad-json", "scan -b {t}/b.json " + ST, r"b\.json: .*JSON",
    {"b.json": "{"})
cli("scan-baseline-override-unknown-name", "scan -b no-such-baseline " + ST,
    r"no-such-baseline")
cli("scan-baseline-override-yaml-bomb", "scan -b {t}/b.yaml " + ST,
    r"b\.yaml: YAML aliases expand too far", {"b.yaml": BOMB + BASELINE + "description: *i\n"})

# -- policies and maintenance windows: deployments validate -------------------------------------

DV = "deployments validate {t}/p.yaml"


def dep(case_id: str, old: str, new: str, match: str, xfail: str | None = None) -> None:
    cli(f"deployments-{case_id}", DV, match, policy(old, new), xfail=xfail)


cli("deployments-missing-file", "deployments validate {t}/nope.yaml",
    r"nope\.yaml: cannot read the deployments file.*pass an existing file")
cli("deployments-folder", "deployments validate {t}/dir.yaml",
    r"dir\.yaml: cannot read the deployments file", {"dir.yaml/x": "x"})
dep("cron-never-fires", "cron(0 1 * * ? *)", "cron(0 1 30 2 ? *)",
    r"p\.yaml: policies\[0\]\.scan_schedule.*never")
dep("rate-overflow", "cron(0 1 * * ? *)", "rate(99999999999999999999 minutes)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("rate-zero", "cron(0 1 * * ? *)", "rate(0 minutes)", r"p\.yaml: policies\[0\]\.scan_sched")
dep("rate-bad-unit", "cron(0 1 * * ? *)", "rate(5 fortnights)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("cron-five-fields", "cron(0 1 * * ? *)", "cron(0 1 * * ?)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("cron-both-days", "cron(0 1 * * ? *)", "cron(0 1 * * * *)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("cron-minute-60", "cron(0 1 * * ? *)", "cron(60 1 * * ? *)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("at-not-a-date", "cron(0 1 * * ? *)", "at(tomorrow)",
    r"p\.yaml: policies\[0\]\.scan_schedule")
dep("schedule-empty", "cron(0 1 * * ? *)", "''", r"p\.yaml: policies\[0\]\.scan_schedule")
dep("duplicate-task-names", "      - {name: scan-all, priority: 0, operation: Scan}\n",
    "      - {name: scan-all, priority: 0, operation: Scan}\n"
    "      - {name: scan-all, priority: 1, operation: Scan}\n",
    r"p\.yaml: windows\[0\]\.tasks: task name 'scan-all' appears twice; give each task")
dep("duplicate-policy-names", "windows:", "  - {name: web, operation: Scan, scan_schedule: "
    "'cron(0 3 * * ? *)', inventory: {t}/inv.yaml}\nwindows:", r"p\.yaml: .*'web'")
dep("missing-hooks-file", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    hooks: {t}/no-hooks.yaml\nwindows",
    r"p\.yaml: policies\[0\]\.hooks: hooks file .*no-hooks\.yaml.* does not exist")
dep("timezone-unknown", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    schedule_timezone: Mars/Olympus\nwindows", r"p\.yaml: policies\[0\]\.schedule_timezone")
dep("cutoff-over-duration", "cutoff_hours: 1", "cutoff_hours: 5",
    r"p\.yaml: windows\[0\]\.cutoff_hours")
dep("duration-zero", "duration_hours: 4", "duration_hours: 0",
    r"p\.yaml: windows\[0\]\.duration_hours")
dep("duration-25", "duration_hours: 4", "duration_hours: 25",
    r"p\.yaml: windows\[0\]\.duration_hours")
dep("offset-7", "duration_hours: 4", "duration_hours: 4\n    schedule_offset: 7",
    r"p\.yaml: windows\[0\]\.schedule_offset")
dep("unknown-key", "    operation: Scan\n", "    operation: Scan\n    colour: red\n",
    r"p\.yaml: policies\[0\]\.colour")
dep("operation-enum", "    operation: Scan\n", "    operation: Patch\n",
    r"p\.yaml: policies\[0\]\.operation")
dep("task-operation-enum", "operation: Scan}", "operation: Reboot}",
    r"p\.yaml: windows\[0\]\.tasks\.0\.operation: Input should be 'Scan' or 'Install'")
dep("task-priority-negative", "priority: 0", "priority: -1",
    r"p\.yaml: windows\[0\]\.tasks\.0\.priority: Input should be greater than or equal")
dep("policy-name-bad-chars", "name: web", "name: 'web fleet/1'", r"p\.yaml: policies\[0\]\.name")
dep("unknown-baseline", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    baselines: {DEBIAN: no-such-baseline}\nwindows", r"p\.yaml: policies\[0\]\.baselines")
dep("baselines-misspelt-os", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    baselines: {DEBAIN: AWS-DebianDefaultPatchBaseline}\nwindows",
    r"p\.yaml: policies\[0\]\.baselines")
dep("targets-select-nothing", "    targets: \"*\"\nwindows", "    targets: nosuch\nwindows",
    r"p\.yaml: policies\[0\]\.targets.*nosuch")
dep("max-concurrency-text", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    max_concurrency: lots\nwindows", r"p\.yaml: policies\[0\]\.max_concurrency")
dep("max-concurrency-zero", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    max_concurrency: '0'\nwindows", r"p\.yaml: policies\[0\]\.max_concurrency")
dep("max-errors-over-100-percent", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    max_errors: 150%\nwindows", r"p\.yaml: policies\[0\]\.max_errors")
dep("reboot-option-enum", "    targets: \"*\"\nwindows", "    targets: \"*\"\n"
    "    reboot_option: Sometimes\nwindows", r"p\.yaml: policies\[0\]\.reboot_option")
dep("inventory-missing", "    inventory: {t}/inv.yaml\n    targets: \"*\"\nwindows",
    "    inventory: {t}/no-inv.yaml\n    targets: \"*\"\nwindows",
    r"p\.yaml: policies\[0\]\.targets: .*no-inv\.yaml: file not found")
dep("tasks-empty", "    tasks:\n      - {name: scan-all, priority: 0, operation: Scan}\n",
    "    tasks: []\n", r"p\.yaml: windows\[0\]\.tasks")
dep("policies-not-a-list", "policies:\n  - name: web", "policies: web\nold:\n  - name: web",
    r"p\.yaml: (policies|old)")
cli("deployments-policies-a-number", DV, r"p\.yaml: policies: must be a list of policies",
    {"p.yaml": "policies: 1\n"})
cli("deployments-mixed-key-types", DV, r"p\.yaml: 1: unknown key\(s\) '1, a'; only 'policies'",
    {"p.yaml": "1: x\na: y\n"})
dep("alias-bomb", "policies:", BOMB + "policies:", r"p\.yaml: YAML aliases expand too far")
dep("duplicate-yaml-key", "    operation: Scan\n", "    operation: Scan\n    operation: Scan\n",
    r"p\.yaml: .*duplicate key 'operation'")
cli("deployments-apply-dry-run-bad-file", "deployments apply {t}/p.yaml --dry-run",
    r"p\.yaml: policies\[0\]\.scan_schedule",
    policy("cron(0 1 * * ? *)", "cron(0 1 30 2 ? *)"))
cli("deployments-apply-pool-empty", ["deployments", "apply", "{t}/p.yaml", "--dry-run",
                                     "--pool", ""], r"--pool", policy("name: web", "name: web"))

# -- hooks files (install --hooks) -------------------------------------------------------------

INSTALL = "install --dry-run " + ST
HOOKS = INSTALL + " --hooks {t}/h.yaml"


def hooks(case_id: str, text: str, match: str, extra: Files | None = None) -> None:
    cli(f"hooks-{case_id}", HOOKS, match, {"h.yaml": text, **(extra or {})})


cli("hooks-missing-file", INSTALL + " --hooks {t}/nope.yaml",
    r"nope\.yaml: hooks file not found")
cli("hooks-folder", INSTALL + " --hooks {t}/dir.yaml", r"dir\.yaml: cannot read",
    {"dir.yaml/x": "x"})
hooks("unknown-phase", "pre_patch: {command: 'true'}\n", r"h\.yaml: pre_patch")
hooks("not-a-mapping", "- command: 'true'\n", r"h\.yaml")
hooks("both-command-and-script", "pre_install: {command: 'true', script: s.sh}\n",
      r"h\.yaml: pre_install.*either 'command' or 'script'", {"s.sh": "true\n"})
hooks("neither", "pre_install: {timeout: 5}\n", r"h\.yaml: pre_install.*set 'command'")
hooks("empty-command", "post_install: {command: '  '}\n", r"h\.yaml: post_install.*empty")
hooks("nul-in-command", 'on_exit: {command: "a\\0b"}\n', r"h\.yaml: on_exit.*NUL")
hooks("script-missing", "pre_install: {script: gone.sh}\n",
      r"h\.yaml: pre_install.*gone\.sh.* not found")
hooks("script-too-large", "pre_install: {script: big.sh}\n",
      r"h\.yaml: pre_install.*100000 bytes", {"big.sh": "#" * 100_001})
hooks("timeout-zero", "pre_install: {command: 'true', timeout: 0}\n",
      r"h\.yaml: pre_install\.timeout")
hooks("timeout-negative", "pre_install: {command: 'true', timeout: -5}\n",
      r"h\.yaml: pre_install\.timeout")
hooks("timeout-over-a-day", "pre_install: {command: 'true', timeout: 86401}\n",
      r"h\.yaml: pre_install\.timeout")
hooks("timeout-text", "pre_install: {command: 'true', timeout: soon}\n",
      r"h\.yaml: pre_install\.timeout")
hooks("command-a-list", "pre_install: {command: [a, b]}\n", r"h\.yaml: pre_install\.command")
hooks("alias-bomb", BOMB + "pre_install: {command: *i}\n",
      r"h\.yaml: YAML aliases expand too far")
hooks("duplicate-key", "pre_install: {command: 'true'}\npre_install: {command: 'false'}\n",
      r"h\.yaml: .*duplicate key 'pre_install'")

# -- install override lists --------------------------------------------------------------------

OVR = INSTALL + " --install-override-list {t}/o.yaml"


def override(case_id: str, text: str, match: str) -> None:
    cli(f"override-list-{case_id}", OVR, match, {"o.yaml": text})


cli("override-list-missing-file", INSTALL + " --install-override-list {t}/nope.yaml",
    r"nope\.yaml")
cli("override-list-folder", INSTALL + " --install-override-list {t}/dir.yaml", r"dir\.yaml",
    {"dir.yaml/x": "x"})
override("patches-not-a-list", "patches: kernel\n", r"o\.yaml: patches")
override("entry-without-id", "patches:\n  - title: '1.0'\n", r"o\.yaml: patches\.0\.id")
override("id-empty", "patches:\n  - id: ''\n", r"o\.yaml: patches\.0\.id")
override("id-a-mapping", "patches:\n  - id: {a: b}\n", r"o\.yaml: patches\.0\.id")
override("not-a-mapping", "- id: kernel\n", r"o\.yaml")
override("no-patches", "other: 1\n", r"o\.yaml: patches")
override("alias-bomb-ids", BOMB + "patches: [{id: *i}]\n",
          r"o\.yaml: YAML aliases expand too far")
override("yaml-syntax", "patches: [\n", r"o\.yaml: not valid YAML")
cli("override-list-with-baseline", INSTALL + " --install-override-list {t}/o.yaml -b "
    "AWS-DebianDefaultPatchBaseline", r"install_override_list: BaselineOverride and "
    "InstallOverrideList cannot be used together.*drop one",
    {"o.yaml": "patches: [{id: kernel}]\n"})
cli("override-list-bad-s3-url", INSTALL + " --install-override-list s3://", r"s3://")
cli("override-list-unknown-scheme", INSTALL + " --install-override-list ftp://h/o.yaml",
    r"ftp://h/o\.yaml")
cli("override-list-empty", ["install", "--dry-run", "--store", "{t}/store",
                            "--install-override-list", ""], r"--install-override-list")

# -- every flag: scan / install -----------------------------------------------------------------

for case_id, args, match in [
    ("concurrency-zero", "--concurrency 0", r"--concurrency: 0"),
    ("concurrency-negative", "--concurrency -3", r"--concurrency: -3"),
    ("concurrency-text", "--concurrency many", r"'--concurrency'.*integer"),
    ("concurrency-huge", "--concurrency 1000000000000", r"--concurrency"),
    ("batch-size-zero", "--batch-size 0", r"--batch-size: 0"),
    ("batch-size-huge", "--batch-size 99999999999", r"--batch-size"),
    ("lock-timeout-negative", "--lock-timeout -1", r"--lock-timeout: -1"),
    ("lock-timeout-huge", "--lock-timeout 999999999999", r"--lock-timeout"),
    ("snapshot-id-traversal", "--snapshot-id ../../x", r"--snapshot-id: '\.\./\.\./x'"),
    ("snapshot-id-too-long", "--snapshot-id " + "a" * 200, r"--snapshot-id"),
    ("output-enum", "-o xml", r"'--output'.*'xml'"),
    ("baselines-dir-missing", "--baselines-dir {t}/nodir", r"nodir"),
    ("baselines-dir-a-file", "--baselines-dir {t}/f", r"f.*(folder|directory)"),
    ("store-bad-s3", "--store s3://", r"--store.*s3://"),
    ("store-unknown-scheme", "--store ftp://h/x", r"--store.*ftp://h/x"),
    ("report-dir-a-file", "--report-dir {t}/f", r"--report-dir: '.*f' is not a folder"),
]:
    cli(f"scan-{case_id}", "scan " + args + ("" if "--store" in args else " " + ST), match,
        {"f": "x"})
for case_id, words, flag in [
    ("inventory-empty", ["scan", "-i", ""], "--inventory"),
    ("inventory-blank", ["scan", "-i", "  "], "--inventory"),
    ("store-empty", ["scan", "--store", ""], "--store"),
    ("baselines-dir-empty", ["scan", "--baselines-dir", ""], "--baselines-dir"),
    ("snapshot-id-empty", ["scan", "--snapshot-id", ""], "--snapshot-id"),
    ("report-dir-empty", ["scan", "--report-dir", ""], "--report-dir"),
    ("baseline-empty", ["scan", "-b", ""], "--baseline"),
    ("install-inventory-empty", ["install", "--dry-run", "-i", ""], "--inventory"),
    ("install-store-empty", ["install", "--dry-run", "--store", ""], "--store"),
    ("install-hooks-empty", ["install", "--dry-run", "--hooks", ""], "--hooks"),
    ("install-reboot-option-empty", ["install", "--dry-run", "--reboot-option", ""],
     "--reboot-option"),
    ("install-max-concurrency-empty", ["install", "--dry-run", "--max-concurrency", ""],
     "--max-concurrency"),
]:
    extra = [] if "--store" in words else ["--store", "{t}/store"]
    cli(f"flag-{case_id}", [*words, *extra], re.escape(flag))
for case_id, args, match in [
    ("reboot-option-enum", "--reboot-option Sometimes", r"--reboot-option: 'Sometimes'"),
    ("reboot-option-lowercase", "--reboot-option noreboot", r"--reboot-option: 'noreboot'"),
    ("max-concurrency-zero", "--max-concurrency 0",
     r"max_concurrency: 0 is too low; use at least 1"),
    ("max-concurrency-text", "--max-concurrency lots",
     r"max_concurrency: 'lots' is not valid; use a number of nodes"),
    ("max-concurrency-101-percent", "--max-concurrency 101%",
     r"max_concurrency: 101% is above 100%; use a percentage"),
    ("max-concurrency-negative", "--max-concurrency -5", r"max_concurrency: '-5' is not valid"),
    ("max-concurrency-overflow", "--max-concurrency 99999999999999999999999",
     r"max_concurrency: '9+' is too large; use at most 9999999"),
    ("max-concurrency-5000-digits", "--max-concurrency " + "9" * 5000,
     r"max_concurrency: '9+\.\.\. is too large"),
    ("max-errors-text", "--max-errors some", r"max_errors: 'some' is not valid; use a number"),
    ("max-errors-101-percent", "--max-errors 101%", r"max_errors: 101% is above 100%"),
    ("max-errors-negative", "--max-errors -1", r"max_errors: '-1' is not valid"),
    ("snapshot-id-slash", "--snapshot-id a/b", r"--snapshot-id: 'a/b'"),
    ("lock-timeout-negative", "--lock-timeout -1", r"--lock-timeout"),
    ("report-dir-a-file", "--report-dir {t}/f", r"--report-dir"),
    ("output-enum", "-o yaml", r"'--output'.*'yaml'"),
    ("inventory-missing", "-i {t}/nope.yaml", r"nope\.yaml: file not found"),
]:
    cli(f"install-{case_id}", INSTALL + " " + args, match, {"f": "x"})

# -- query: SQL attacks on a copy of a real store ------------------------------------------------

Q = "--store {t}/store"
DENIED = r"query: Permission Error: Cannot access file .* disabled by configuration"


def refused(kind: str) -> str:
    return (rf"query: {kind} statements are refused: the compliance store is read-only here; "
            r"send one SELECT")


QUERY_ATTACKS = [
    ("read-text-shadow", "SELECT * FROM read_text('/etc/shadow')", DENIED),
    ("read-csv-passwd", "SELECT * FROM read_csv('/etc/passwd')", DENIED),
    ("read-blob", "SELECT * FROM read_blob('/etc/hostname')", DENIED),
    ("glob-etc", "SELECT * FROM glob('/etc/*')", DENIED),
    ("read-parquet-tmp", "SELECT * FROM read_parquet('/tmp/**/*.parquet')", DENIED),
    ("read-out-of-store-via-dotdot", "SELECT * FROM read_text('{t}/store/../secret.txt')",
     DENIED),
    ("copy-to-file", "COPY (SELECT 1) TO '{t}/stolen.csv'", refused("COPY")),
    ("copy-into-store-forge-run", "COPY (SELECT * REPLACE ('COMPLIANT' AS status) FROM "
     "node_summaries) TO '{t}/store/node_summaries' (FORMAT parquet, PARTITION_BY (date, "
     "run_id), OVERWRITE_OR_IGNORE)", refused("COPY")),
    ("copy-overwrite-patch-states", "COPY (SELECT * FROM patch_states LIMIT 0) TO "
     "'{t}/store/patch_states' (FORMAT parquet, PARTITION_BY (date, run_id), OVERWRITE)",
     refused("COPY")),
    ("attach", "ATTACH '{t}/evil.db' AS evil", refused("ATTACH")),
    ("install-extension", "INSTALL httpfs", refused("LOAD")),
    ("load-extension", "LOAD httpfs", refused("LOAD")),
    ("set-external-access", "SET enable_external_access = true", refused("SET")),
    ("unlock-configuration", "SET lock_configuration = false", refused("SET")),
    ("pragma", "PRAGMA enable_profiling", refused("PRAGMA")),
    ("create-table", "CREATE TABLE t AS SELECT 1", refused("CREATE")),
    ("drop-view", "DROP VIEW node_summaries", refused("DROP")),
    ("explain-analyze-copy", "EXPLAIN ANALYZE COPY (SELECT 1) TO '{t}/x.csv'",
     refused("EXPLAIN")),
    ("two-statements", "SELECT 1; COPY (SELECT 1) TO '{t}/x.csv'",
     r"query: 2 statements; send one SELECT at a time"),
    ("export-database", "EXPORT DATABASE '{t}/dump'", refused("EXPORT")),
    ("empty", "", r"query: the SQL is empty; give one SELECT"),
    ("blank", "   ", r"query: the SQL is empty; give one SELECT"),
    ("comment-only", "/* nothing */", r"query: (0 statements; send one SELECT|the SQL is empty)"),
    ("typo", "SELEC * FROM node_summaries", r"query: not valid SQL: Parser Error"),
]


def helper_query(sql: str) -> Callable[[Path], object]:
    """The notebooks' helper, ComplianceStore, run on ``sql`` over ``{t}/store``."""
    def run(t: Path) -> object:
        with ComplianceStore(StoreLocation.resolve(str(t / "store"))) as cs:
            return cs.query(sql.replace("{t}", str(t)))
    return run


for case_id, sql, expected in QUERY_ATTACKS:
    cli(f"query-{case_id}", ["query", sql, "--store", "{t}/store"], expected,
        {"secret.txt": "s3cret"}, store=True)
    loader(f"query-helper-{case_id}", helper_query(sql), expected, {"secret.txt": "s3cret"},
           store=True)
cli("query-store-missing", "query 'SELECT 1' --store {t}/typo",
    r"--store: there is no compliance store at .*typo; run a scan first")
cli("query-store-is-a-file", "query 'SELECT 1' --store {t}/f", r"--store", {"f": "x"})
cli("query-format-enum", "query 'SELECT 1' -o xml " + Q, r"'--format'.*'xml'", store=True)
cli("query-store-empty", ["query", "SELECT 1", "--store", ""], r"--store: is empty")

# -- report / evaluate / baseline show+export / store check --------------------------------------

for case_id, command, match, files, store in [
    ("report-store-missing", "report --store {t}/typo",
     r"--store: there is no compliance store at .*typo; run a scan first", {}, False),
    ("report-store-empty", ["report", "--store", ""], r"--store", {}, False),

    ("report-out-empty", ["report", "--out", "", "--store", "{t}/store"], r"--out", {}, True),
    ("report-upload-http", "report --upload http://example.com/x " + Q, r"--upload",
     {}, True),
    ("report-upload-no-bucket", "report --upload s3:// " + Q, r"--upload", {}, True),
    ("report-node-empty", ["report", "--node", "", "--store", "{t}/store"], r"--node",
     {}, True),
    ("report-node-unknown", "report --node no-such-node " + Q, r"no-such-node", {}, True),
    ("evaluate-baseline-empty", ["evaluate", "-b", "", "--store", "{t}/store"],
     r"--baseline: is empty", {}, True),
    ("evaluate-baseline-unknown", "evaluate -b no-such " + Q, r"no-such", {}, True),
    ("evaluate-baseline-bad-json", "evaluate -b {t}/b.json " + Q, r"b\.json",
     {"b.json": "[]"}, True),
    ("evaluate-at-not-a-date", "evaluate -b AWS-DebianDefaultPatchBaseline --at tomorrow " + Q,
     r"--at.*tomorrow", {}, True),
    ("evaluate-at-month-13", "evaluate -b AWS-DebianDefaultPatchBaseline --at 2026-13-01 " + Q,
     r"--at.*2026-13-01", {}, True),
    ("evaluate-run-id-and-latest",
     "evaluate -b AWS-DebianDefaultPatchBaseline --run-id x --latest " + Q,
     r"--run-id and --latest: give one", {}, True),
    ("evaluate-run-id-unknown", "evaluate -b AWS-DebianDefaultPatchBaseline --run-id nope " + Q,
     r"--run-id.*nope", {}, True),
    ("evaluate-store-missing", "evaluate -b AWS-DebianDefaultPatchBaseline --store {t}/typo",
     r"--store: there is no compliance store", {}, False),
    ("evaluate-targets-bad", "evaluate -b AWS-DebianDefaultPatchBaseline -t tag: " + Q,
     r"tag:", {}, True),
    ("evaluate-output-enum", "evaluate -b AWS-DebianDefaultPatchBaseline -o csv " + Q,
     r"'--output'.*'csv'", {}, True),
    ("evaluate-save-with-bad-at",
     "evaluate -b AWS-DebianDefaultPatchBaseline --save --at 2026-02-30 " + Q, r"--at",
     {}, True),
    ("baseline-show-unknown", "baseline show no-such-baseline", r"no-such-baseline", {}, False),
    ("baseline-show-format-enum", "baseline show AWS-DebianDefaultPatchBaseline --format xml",
     r"--format.*xml", {}, False),
    ("baseline-show-baselines-dir-missing",
     "baseline show AWS-DebianDefaultPatchBaseline --baselines-dir {t}/nodir", r"nodir",
     {}, False),
    ("baseline-export-unknown", "baseline export no-such-baseline --out {t}/x.json",
     r"no-such-baseline", {}, False),
    ("baseline-export-out-a-folder",
     "baseline export AWS-DebianDefaultPatchBaseline --out {t}/dir", r"dir",
     {"dir/keep": "x"}, False),
    ("store-check-missing", "store check --store {t}/typo",
     r"--store: there is no compliance store at .*typo", {}, False),
    ("store-check-a-file", "store check --store {t}/f", r"--store: there is no compliance store",
     {"f": "x"}, False),
    ("store-check-empty", ["store", "check", "--store", ""], r"--store", {}, False),
]:
    cli(case_id, command, match, files, store=store)

cli("scan-store-is-a-file", "scan --store {t}/f",
    r"compliance store .*f is not writable \(File exists.*\): choose another --store",
    {"f": "x"}, code=1)
cli("report-run-id-traversal", "report --run-id ../../x " + Q,
    r"has no node results for run '\.\./\.\./x'.*check the run id", store=True, code=1)
cli("report-run-id-unknown", "report --run-id no-such-run " + Q,
    r"has no node results for run 'no-such-run'.*check the run id", store=True, code=1)
cli("report-out-a-file", "report --out {t}/f " + Q,
    r"can't create report folder .*f \(File exists\): choose another report folder",
    {"f": "x"}, store=True, code=1)

# more flags, and files that can't be read (as root every file is readable: /proc/self/mem
# fails with EIO instead)
for case_id, command, match in [
    ("install-targets-bad", "install --dry-run -t tag: " + ST, r"--targets: 'tag:' needs KEY"),
    ("install-baseline-unknown", "install --dry-run -b no-such " + ST,
     r"baseline 'no-such' is not defined; known baselines"),
    ("install-baselines-dir-a-file", "install --dry-run --baselines-dir {t}/f " + ST,
     r"f: is not a folder of baseline YAML files"),
    ("evaluate-baselines-dir-missing",
     "evaluate -b AWS-DebianDefaultPatchBaseline --baselines-dir {t}/nodir " + Q,
     r"nodir: is not a folder of baseline YAML files"),
    ("baseline-export-baselines-dir-a-file",
     "baseline export AWS-DebianDefaultPatchBaseline --baselines-dir {t}/f",
     r"f: is not a folder of baseline YAML files"),
    ("baseline-show-empty-name", ["baseline", "show", ""], r"baseline '' is not defined"),
    ("deployments-validate-baselines-dir-a-file",
     "deployments validate {t}/p.yaml --baselines-dir {t}/f",
     r"f: is not a folder of baseline YAML files"),
    ("deployments-apply-queue-empty", ["deployments", "apply", "{t}/p.yaml", "--dry-run",
                                       "--queue", ""], r"--queue: is empty"),
    ("baseline-validate-unreadable", "baseline validate /proc/self/mem",
     r"/proc/self/mem: cannot read: .*Input/output error"),
    ("hooks-unreadable", INSTALL + " --hooks /proc/self/mem",
     r"/proc/self/mem: cannot read: .*Input/output error"),
    ("override-list-unreadable", INSTALL + " --install-override-list /proc/self/mem",
     r"/proc/self/mem"),
    ("deployments-unreadable", "deployments validate /proc/self/mem",
     r"/proc/self/mem: cannot read the deployments file: Input/output error"),
    ("baseline-import-unreadable", "baseline import /proc/self/mem --out-dir {t}/out",
     r"/proc/self/mem: cannot read: .*Input/output error"),
]:
    cli(case_id, command, match, {"f": "x", **policy("name: web", "name: web")},
        store="evaluate" in case_id)
cli("baseline-validate-no-files", "baseline validate", r"Missing argument 'files'")

# -- loader calls (what the notebooks and flows call directly) -----------------------------------

loader("loader-hooks-bomb", lambda t: load_hooks_file(t / "h.yaml"),
       r"h\.yaml: YAML aliases expand too far", {"h.yaml": BOMB})
loader("loader-override-bomb", lambda t: load_install_override(t / "o.yaml"),
       r"o\.yaml: YAML aliases expand too far", {"o.yaml": BOMB})
loader("loader-deployments-deep", lambda t: load_deployments(t / "p.yaml"),
       r"p\.yaml: YAML nested too deeply", {"p.yaml": "[" * 30_000})
loader("loader-aws-json-deep", lambda t: load_aws_json_file(t / "b.json"),
       r"b\.json", {"b.json": '{"a":' * 50_000 + "1" + "}" * 50_000})
loader("loader-baseline-binary", lambda t: load_baseline(t / "b.yaml"), r"b\.yaml",
       {"b.yaml": bytes(range(256))})
loader("loader-ansible-ini-range", lambda t: load_nodes_source(str(t / "hosts")),
       r"hosts.*100,?000", {"hosts": "[a]\nh[0:99999]\n[b]\ng[0:99999]\n"})
loader("loader-ec2-no-region-colon", lambda t: load_nodes_source("ec2:us-east-1"), r"ec2:")


# -- the runner ---------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: a file's bytes, None for a folder."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _error_line(output: str) -> str:
    """The one error line. Click's own usage errors keep their two fixed lines above it
    (``Usage: ...`` and ``Try '... --help' for help.``); anything else must be that one line."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Usage: patchfleet"):
        assert len(lines) == 3 and lines[1].startswith("Try 'patchfleet"), output
        assert lines[2].startswith("Error: "), output
        return lines[2]
    assert len(lines) == 1, f"expected one error line, got:\n{output}"
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp folder as the working directory and home of every default path; no way out."""
    def no_flow(*args: object, **kwargs: object) -> object:
        raise AssertionError("bad input reached the flow run (Prefect would start)")

    monkeypatch.setattr(cli_app, "_run_flow", no_flow)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PATCHFLEET_STORE", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "catalogue")
    return tmp_path


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                 if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, sandbox: Path) -> None:
    t = sandbox
    if case.store:
        shutil.copytree(V1_STORE, t / "store")
    for rel, content in case.files.items():
        path = t / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{t}", str(t)))
    before = _tree(t)
    if callable(case.run):
        with pytest.raises(PatchfleetError) as caught:
            case.run(t)
        assert isinstance(caught.value, InputError), repr(caught.value)
        line = str(caught.value)
        assert "\n" not in line, line
    else:
        argv = [a.replace("{t}", str(t)) for a in case.run]
        result = runner.invoke(cli_app.app, argv)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{result.exception!r}\n{result.output}")
        assert result.exit_code == case.code, result.output
        line = _error_line(result.output)
    if os.environ.get("CATALOGUE_LOG"):
        with open(os.environ["CATALOGUE_LOG"], "a") as log:
            log.write(f"{case.id}\t{line.replace(str(t), '{t}')}\n")
    assert re.search(case.match.replace("{t}", re.escape(str(t))), line), line
    assert len(line) < 1000, f"an unbounded value in the message ({len(line)} chars)"
    assert _tree(t) == before, "a file was created or changed under the tmp folder"


def totals() -> dict[str, int]:
    """The catalogue's figures for the closing note (running this file as a script prints
    them)."""
    attacks = [c for c in CASES if c.id.startswith(("query-", "query-helper-"))
               and c.store and c.id.removeprefix("query-").removeprefix("helper-")
               in {a[0] for a in QUERY_ATTACKS}]
    return {"cases": len(CASES), "xfail": sum(1 for c in CASES if c.xfail),
            "handled cleanly": sum(1 for c in CASES if not c.xfail),
            "cli": sum(1 for c in CASES if not callable(c.run)),
            "loader calls": sum(1 for c in CASES if callable(c.run)),
            "query attacks (CLI + notebooks' helper)": len(attacks)}


def test_count() -> None:
    """The catalogue's size (issue 13 asks for at least 150 cases), unique ids."""
    assert totals()["cases"] >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids are unique"


def test_a_damaged_store_file_is_named_and_nothing_is_touched(sandbox: Path) -> None:
    """Issue 13 #13 as input: a damaged Parquet file and a stale ``.tmp`` leftover in a copy of
    a real store. ``store check`` lists both and exits 1 (documented); ``query`` leaves the
    damaged file out with a one-line warning naming it and answers from the good files; neither
    changes a byte under the tmp folder (``--quarantine`` is what moves files)."""
    t = sandbox
    shutil.copytree(V1_STORE, t / "store")
    damaged = t / "store" / "node_summaries" / "date=2026-12-05" / "run_id=cut" / "part-0.parquet"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PAR1 cut short")
    leftover = damaged.parent / ".part-1.parquet.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))
    before = _tree(t)

    check = runner.invoke(cli_app.app, ["store", "check", "--store", str(t / "store")])
    assert check.exit_code == 1, check.output
    assert f"damaged: {damaged}" in check.output and f"leftover: {leftover}" in check.output
    assert "--quarantine" in check.output and "Traceback" not in check.output

    query = runner.invoke(cli_app.app, ["query", "SELECT count(*) AS n FROM node_summaries",
                                        "--store", str(t / "store"), "-o", "json"])
    assert query.exit_code == 0, query.output
    warnings = [ln for ln in query.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(damaged) in warnings[0], query.stderr
    assert "store check --quarantine" in warnings[0]
    assert json.loads(query.stdout)[0]["n"] > 0
    assert _tree(t) == before


if __name__ == "__main__":
    for name, value in totals().items():
        print(f"{name}: {value}")
