"""Scans of real Debian test nodes over real SSH (sshd in chroots, local signed apt archive).

Each test plans a run exactly as the CLI and the flow do (inventory + targets + baselines), scans
with the real asyncssh transport, and asserts the exact per-patch states and node counts.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from lock_holders import apt_lock_held

from patchfleet.domain.records import NodeStatus, PatchState
from patchfleet.domain.results import NodeResult
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_nodes
from patchfleet.transport.connector import SSHConnector

INS, OTH, M, P, R = (
    PatchState.INSTALLED,
    PatchState.INSTALLED_OTHER,
    PatchState.MISSING,
    PatchState.INSTALLED_PENDING_REBOOT,
    PatchState.INSTALLED_REJECTED,
)
SECURITY_UPDATES = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "fake-held",
                    "linux-image-fake"}
NON_SECURITY_UPDATES = {"fake-coreutils", "fake-editor", "fake-tzdata", "fake-daemon"}


def scan(fleet: Any, tmp_path: Path, targets: str = "*", baseline: str | None = None,
         inventory: Path | None = None, **kw: Any) -> dict[str, NodeResult]:
    plan = plan_scan(inventory=str(inventory or fleet.inventory), targets=targets,
                     baseline=baseline, store=str(tmp_path / "store"), **kw)
    with SSHConnector() as connector:
        results = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    return {r.node_id: r for r in results}


def fake(result: NodeResult) -> dict[str, PatchState]:
    return {r.package: r.state for r in result.records if "fake" in r.package}


def missing(result: NodeResult) -> set[str]:
    return {k for k, v in fake(result).items() if v is M}


def baseline_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\noperating_system: DEBIAN\n" + textwrap.dedent(body))
    return str(path)


def test_security_only_default_baseline(fleet: Any, tmp_path: Path) -> None:
    results = scan(fleet, tmp_path)
    assert set(results) == {"deb-a", "deb-b", "deb-c"}
    a = results["deb-a"]
    assert a.baseline_id == "AWS-DebianDefaultPatchBaseline"
    assert (a.platform_name, a.platform_version) == ("Debian GNU/Linux", "12")
    assert fake(a) == {
        **dict.fromkeys(SECURITY_UPDATES, M),
        **dict.fromkeys(NON_SECURITY_UPDATES, OTH),
        "fake-stable-only": OTH,
        "linux-image-1.0-fake": OTH,
    }
    s = a.summary
    assert s.status is NodeStatus.NON_COMPLIANT
    assert (s.missing_count, s.installed_count, s.security_non_compliant_count,
            s.critical_non_compliant_count, s.other_non_compliant_count) == (6, 0, 6, 0, 0)
    assert s.installed_other_count == len(a.records) - 6
    by_name = {r.package: r for r in a.records}
    curl = by_name["fake-curl"]
    assert (curl.installed_version, curl.available_version, curl.priority, curl.section,
            curl.classification) == ("1.0", "1.1", "standard", "net", "Security")
    assert curl.repository and "Debian-Security" in curl.repository
    held = by_name["fake-held"]
    assert held.held and held.state is M
    assert not any(r.held for r in a.records if r.package != "fake-held")


def test_enable_non_security(fleet: Any, tmp_path: Path) -> None:
    r = scan(fleet, tmp_path, targets="deb-a", baseline="example-debian-all-updates")["deb-a"]
    assert missing(r) == SECURITY_UPDATES | NON_SECURITY_UPDATES
    assert fake(r)["fake-stable-only"] is INS
    assert r.summary.overall_severity is not None
    assert r.summary.other_non_compliant_count == len(NON_SECURITY_UPDATES)


def test_approved_list_overrides_the_rules(fleet: Any, tmp_path: Path) -> None:
    b = baseline_file(tmp_path, "approve-editor", """
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: [Required]}]
        approved_patches: [fake-editor]
        approved_patches_compliance_level: CRITICAL
        approved_patches_enable_non_security: true
    """)
    r = scan(fleet, tmp_path, targets="deb-a", baseline=b)["deb-a"]
    # the rule approves no security update of priority required; the list adds fake-editor
    assert missing(r) == {"fake-editor"}
    editor = next(x for x in r.records if x.package == "fake-editor")
    assert editor.compliance_level is not None and editor.compliance_level.value == "CRITICAL"
    assert r.summary.critical_non_compliant_count == 1
    assert r.summary.overall_severity is not None
    assert r.summary.overall_severity.value == "CRITICAL"


@pytest.mark.parametrize(("action", "state"), [("BLOCK", R), ("ALLOW_AS_DEPENDENCY", OTH)])
def test_rejected_package(fleet: Any, tmp_path: Path, action: str, state: PatchState) -> None:
    b = baseline_file(tmp_path, f"reject-{action.lower()}", f"""
        approval_rules:
          - patch_filters: [{{key: PRIORITY, values: ['*']}}]
        rejected_patches: [libfakessl3]
        rejected_patches_action: {action}
    """)
    r = scan(fleet, tmp_path, targets="deb-b", baseline=b)["deb-b"]
    assert fake(r)["libfakessl3"] is state
    assert missing(r) == SECURITY_UPDATES - {"libfakessl3"}
    assert r.summary.installed_rejected_count == (1 if action == "BLOCK" else 0)


def test_priority_filter(fleet: Any, tmp_path: Path) -> None:
    b = baseline_file(tmp_path, "prio", """
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: [Required, Important]}]
            enable_non_security: true
            compliance_level: HIGH
    """)
    r = scan(fleet, tmp_path, targets="deb-a", baseline=b)["deb-a"]
    assert missing(r) == {"fake-coreutils", "fake-tzdata", "libfakessl3"}
    assert r.summary.overall_severity is not None
    assert r.summary.overall_severity.value == "HIGH"


def test_section_filter(fleet: Any, tmp_path: Path) -> None:
    b = baseline_file(tmp_path, "sect", """
        approval_rules:
          - patch_filters: [{key: SECTION, values: [net, admin]}]
            enable_non_security: true
    """)
    r = scan(fleet, tmp_path, targets="deb-a", baseline=b)["deb-a"]
    assert missing(r) == {"fake-curl", "fake-sudo", "fake-daemon"}


def test_patch_group_mapping_selects_the_baseline(fleet: Any, tmp_path: Path) -> None:
    inv = yaml.safe_load(fleet.inventory.read_text())
    inv["patch_groups"] = {"db": {"DEBIAN": "example-debian-all-updates"}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    results = scan(fleet, tmp_path, inventory=path)
    assert results["deb-c"].baseline_id == "example-debian-all-updates"
    assert results["deb-a"].baseline_id == "AWS-DebianDefaultPatchBaseline"
    assert missing(results["deb-c"]) == SECURITY_UPDATES | NON_SECURITY_UPDATES


def test_pending_reboot_then_reboot(clean: Any, tmp_path: Path) -> None:
    """Installed outside patchfleet: AWS never marks it pending (default); the OS's signal is
    kept as a node fact, and a baseline with os_reboot_signals (extension) marks it."""
    clean.ssh("deb-c", "apt-get -y -q install linux-image-fake", check=True)
    aws = scan(clean, tmp_path / "0", targets="deb-c")["deb-c"]
    assert fake(aws)["linux-image-1.1-fake"] is not P
    assert aws.summary.installed_pending_reboot_count == 0
    assert aws.reboot_required and "linux-image-1.1-fake" in aws.reboot_required_packages
    signals = baseline_file(tmp_path, "signals", """
        os_reboot_signals: true
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: ['*']}]
    """)
    r = scan(clean, tmp_path / "1", targets="deb-c", baseline=signals)["deb-c"]
    states = fake(r)
    assert states["linux-image-1.1-fake"] is P and states["linux-image-fake"] is INS
    assert r.summary.installed_pending_reboot_count == 1
    clean.reboot("deb-c")
    after = scan(clean, tmp_path / "2", targets="deb-c", baseline=signals)["deb-c"]
    assert fake(after)["linux-image-1.1-fake"] is INS
    assert after.summary.installed_pending_reboot_count == 0


def test_unreachable_node_is_recorded_and_the_run_goes_on(fleet: Any, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    inv = yaml.safe_load(fleet.inventory.read_text())
    inv["nodes"].append({"id": "ghost", "host": "127.0.0.1", "port": closed_port})
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    results = scan(fleet, tmp_path, inventory=path, targets="ghost,deb-a")
    ghost = results["ghost"]
    assert ghost.summary.status is NodeStatus.FAILED
    assert ghost.failure_reason and ghost.failure_reason.startswith("UNREACHABLE")
    assert ghost.records == () and ghost.summary.missing_count == 0
    assert results["deb-a"].summary.status is NodeStatus.NON_COMPLIANT


def test_changed_host_key_is_refused(fleet: Any, tmp_path: Path) -> None:
    fleet.rekey("deb-b")
    try:
        r = scan(fleet, tmp_path, targets="deb-b")["deb-b"]
    finally:
        fleet.trust("deb-b")
    assert r.summary.status is NodeStatus.FAILED
    assert r.failure_reason and r.failure_reason.startswith("HOST_KEY")
    assert "ssh-keygen -R" in r.failure_reason


def test_garbage_output_fails_the_node_with_a_parse_error(clean: Any, tmp_path: Path) -> None:
    clean.ssh("deb-b", "printf '#!/bin/sh\\necho this is not dpkg\\n' > /usr/local/bin/dpkg-query"
              " && chmod +x /usr/local/bin/dpkg-query", check=True)
    r = scan(clean, tmp_path, targets="deb-b")["deb-b"]
    assert r.summary.status is NodeStatus.FAILED
    assert r.failure_reason and r.failure_reason.startswith("PARSE_ERROR")


def test_command_timeout_fails_the_node(clean: Any, tmp_path: Path) -> None:
    clean.ssh("deb-b", "printf '#!/bin/sh\\nsleep 30\\n' > /usr/local/bin/apt-cache"
              " && chmod +x /usr/local/bin/apt-cache", check=True)
    inv = yaml.safe_load(clean.inventory.read_text())
    for n in inv["nodes"]:
        if n["id"] == "deb-b":
            n["command_timeout"] = 3
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    r = scan(clean, tmp_path, inventory=path, targets="deb-b")["deb-b"]
    assert r.summary.status is NodeStatus.FAILED
    assert r.failure_reason and r.failure_reason.startswith("TIMEOUT")


def test_held_apt_lock_skips_the_refresh_but_not_the_scan(clean: Any, tmp_path: Path) -> None:
    # A real apt-get update that holds the lists lock while its Pre-Invoke hook sleeps.
    with apt_lock_held(clean, "deb-a", "APT::Update::Pre-Invoke::", "update"):
        r = scan(clean, tmp_path, targets="deb-a", lock_timeout=1)["deb-a"]
    assert r.summary.status is NodeStatus.NON_COMPLIANT
    assert missing(r) == SECURITY_UPDATES
    assert any("held by process" in w for w in r.warnings), r.warnings


def test_unknown_os_is_a_recorded_failure(clean: Any, tmp_path: Path) -> None:
    clean.ssh("deb-b", "printf 'ID=gentoo\\nNAME=Gentoo\\nPRETTY_NAME=\"Gentoo Linux\"\\n' "
              "> /etc/os-release", check=True)
    r = scan(clean, tmp_path, targets="deb-b")["deb-b"]
    assert r.summary.status is NodeStatus.FAILED
    assert r.failure_reason and r.failure_reason.startswith("UNSUPPORTED_OS")
    assert "Gentoo" in r.failure_reason


def test_rejected_key_is_an_auth_failure(fleet: Any, tmp_path: Path) -> None:
    import subprocess

    other_key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True)
    inv = yaml.safe_load(fleet.inventory.read_text())
    inv["defaults"]["identity_file"] = str(other_key)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    r = scan(fleet, tmp_path, inventory=path, targets="deb-a")["deb-a"]
    assert r.summary.status is NodeStatus.FAILED
    assert r.failure_reason and r.failure_reason.startswith("AUTH_FAILED")
    assert str(other_key) in r.failure_reason


def test_approve_after_days_counts_from_first_seen_on_apt(fleet: Any, tmp_path: Path) -> None:
    """apt has no release dates: AWS ignores the delay; with staged_approval (patchfleet
    extension) it counts from the first scan that saw a version offered (fleet-wide), kept in
    the store's history."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from patchfleet.domain.records import Operation
    from patchfleet.domain.results import RunContext
    from patchfleet.store.writer import write_run

    aws_like = baseline_file(tmp_path, "aws-delayed", """
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: ['*']}]
            approve_after_days: 7
    """)
    # AWS (the default): apt has no release dates, the delay is ignored
    assert missing(scan(fleet, tmp_path, targets="deb-a",
                        baseline=aws_like)["deb-a"]) == SECURITY_UPDATES
    b = baseline_file(tmp_path, "delayed", """
        staged_approval: true
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: ['*']}]
            approve_after_days: 7
    """)
    first = scan(fleet, tmp_path, targets="deb-a", baseline=b)["deb-a"]
    assert missing(first) == set()  # every version is seen for the first time now

    # the same sightings, as if that scan had run 8 days ago
    past = datetime.now(UTC) - timedelta(days=8)
    assert first.facts is not None  # the sightings are the facts' (their collection time)
    aged = replace(first, operation_start_time=past, operation_end_time=past,
                   facts=replace(first.facts, collected_at=past))
    write_run(tmp_path / "store", RunContext(run_id="eight-days-ago", operation=Operation.SCAN,
                                             started_at=past), [aged])
    later = scan(fleet, tmp_path, targets="deb-a", baseline=b)["deb-a"]
    assert missing(later) == SECURITY_UPDATES

    stricter = baseline_file(tmp_path, "delayed10", """
        staged_approval: true
        approval_rules:
          - patch_filters: [{key: PRIORITY, values: ['*']}]
            approve_after_days: 10
    """)
    assert missing(scan(fleet, tmp_path, targets="deb-a", baseline=stricter)["deb-a"]) == set()
