"""Scans of real dnf (Rocky 9, Amazon Linux 2023) and zypper (SLES 15) test nodes over SSH.

The nodes' local rpm-md repositories carry the advisories in testnodes/rpmrepo.py (fixed 2025
dates); tests that depend on approval delays evaluate as of a fixed time (ScanOptions.now).
"""

from __future__ import annotations

import asyncio
import csv
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

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
ROCKY_DEFAULT_MISSING = {
    "fake-openssl-libs",  # FAKESA-2025:0001 Critical
    "fake-curl", "fake-libcurl",  # FAKESA-2025:0002 Important
    "fake-coreutils", "fake-tzdata", "fake-daemon",  # FAKEBA-2025:0005 bugfix
    "fake-libzypp",  # FAKEBA-2025:0009 bugfix
    "fake-sudo",  # FAKEBA-2025:0008 bugfix (1.2-1)
}


def scan(fleet: Any, tmp_path: Path, targets: str, baseline: str | None = None,
         now: datetime | None = None, inventory: Path | None = None) -> dict[str, NodeResult]:
    plan = plan_scan(inventory=str(inventory or fleet.inventory), targets=targets,
                     baseline=baseline, store=str(tmp_path / "store"))
    options = replace(plan.options, now=now) if now else plan.options
    with SSHConnector() as connector:
        results = asyncio.run(scan_nodes(plan.nodes, plan.registry, options, connector))
    return {r.node_id: r for r in results}


def states(result: NodeResult) -> dict[str, PatchState]:
    return {r.package: r.state for r in result.records if "fake" in r.package
            or r.package == "kernel"}


def missing(result: NodeResult) -> set[str]:
    return {k for k, v in states(result).items() if v is M}


def baseline_file(tmp_path: Path, name: str, os_name: str, body: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\noperating_system: {os_name}\n" + textwrap.dedent(body))
    return str(path)


def test_default_baselines_of_each_family(rpm_fleet: Any, tmp_path: Path) -> None:
    results = scan(rpm_fleet, tmp_path, "*")
    rocky, al, sles = results["rocky-a"], results["al-a"], results["sles-a"]
    assert rocky.baseline_id == "AWS-RockyLinuxDefaultPatchBaseline"
    assert al.baseline_id == "AWS-AmazonLinux2023DefaultPatchBaseline"
    assert sles.baseline_id == "AWS-SuseDefaultPatchBaseline"
    assert missing(rocky) == ROCKY_DEFAULT_MISSING
    assert missing(al) == ROCKY_DEFAULT_MISSING
    # SUSE default: Security Critical/Important only
    assert missing(sles) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}
    for r in (rocky, al, sles):
        s = states(r)
        assert s["fake-noadvisory"] is OTH and s["fake-oldname"] is OTH and s["kernel"] is OTH
        assert r.summary.status is NodeStatus.NON_COMPLIANT
    curl = next(x for x in rocky.records if x.package == "fake-curl")
    assert (curl.classification, curl.severity, curl.advisory_ids, curl.cve_ids,
            curl.installed_version, curl.available_version) == (
        "Security", "Important", ("FAKESA-2025:0002",), ("CVE-2025-10002", "CVE-2025-10003"),
        "1.0-1", "1.1-1")
    assert curl.release_date == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    ssl = next(x for x in rocky.records if x.package == "fake-openssl-libs")
    assert (ssl.installed_version, ssl.available_version, ssl.severity) == (
        "1:1.0-1", "1:1.1-1", "Critical")
    assert rocky.summary.security_non_compliant_count == 3
    assert rocky.summary.missing_count == len(ROCKY_DEFAULT_MISSING)
    sles_curl = next(x for x in sles.records if x.package == "fake-curl")
    assert sles_curl.advisory_ids == ("FAKE-SLE-15-SP6-2025-2",)
    assert sles_curl.severity == "Important"


def test_severity_and_classification_filters(rpm_fleet: Any, tmp_path: Path) -> None:
    crit = baseline_file(tmp_path, "crit", "ROCKY_LINUX", """
        approval_rules:
          - patch_filters:
              - {key: CLASSIFICATION, values: [Security]}
              - {key: SEVERITY, values: [Critical]}
            compliance_level: CRITICAL
    """)
    r = scan(rpm_fleet, tmp_path, "rocky-a", crit)["rocky-a"]
    assert missing(r) == {"fake-openssl-libs"}
    assert r.summary.critical_non_compliant_count == 1
    enh = baseline_file(tmp_path, "enh", "ROCKY_LINUX", """
        approval_rules:
          - patch_filters: [{key: CLASSIFICATION, values: [Enhancement]}]
    """)
    assert missing(scan(rpm_fleet, tmp_path, "rocky-a", enh)["rocky-a"]) == {"fake-editor"}


def test_approve_after_days_on_both_sides_of_the_boundary(rpm_fleet: Any,
                                                          tmp_path: Path) -> None:
    b = baseline_file(tmp_path, "week", "ROCKY_LINUX", """
        approval_rules:
          - patch_filters:
              - {key: CLASSIFICATION, values: [Security]}
              - {key: SEVERITY, values: [Critical, Important]}
            approve_after_days: 7
    """)

    def at(*when: int) -> set[str]:
        return missing(scan(rpm_fleet, tmp_path, "rocky-a", b,
                            now=datetime(*when, tzinfo=UTC))["rocky-a"])

    # FAKESA-2025:0001: issued 05-01 10:00, updated 05-02 08:00 -> counts from updated
    assert at(2025, 5, 9, 7) == set()
    assert at(2025, 5, 9, 9) == {"fake-openssl-libs"}
    # FAKESA-2025:0002: issued 06-01 10:00, no updated date -> counts from issued
    assert at(2025, 6, 8, 9) == {"fake-openssl-libs"}
    assert at(2025, 6, 8, 11) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}


def test_approve_until_date_is_inclusive(rpm_fleet: Any, tmp_path: Path) -> None:
    b = baseline_file(tmp_path, "until", "ROCKY_LINUX", """
        approval_rules:
          - patch_filters: [{key: CLASSIFICATION, values: [Security]}]
            approve_until_date: '2025-06-01'
    """)
    r = scan(rpm_fleet, tmp_path, "rocky-a", b)["rocky-a"]
    assert missing(r) == {"fake-openssl-libs", "fake-curl", "fake-libcurl"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("FAKESA-2025:0003", {"kernel"}),  # advisory id
        ("CVE-2025-10005", {"fake-sudo"}),  # CVE id
        ("2300009", {"fake-libzypp"}),  # Bugzilla id
        ("fake-noadvisory-1.1-*.x86_64", {"fake-noadvisory"}),  # NEVRA with one wildcard
    ],
)
def test_approved_list_formats(rpm_fleet: Any, tmp_path: Path, entry: str,
                               expected: set[str]) -> None:
    b = baseline_file(tmp_path, "list", "ROCKY_LINUX", f"""
        approved_patches: ['{entry}']
        approved_patches_enable_non_security: true
    """)
    r = scan(rpm_fleet, tmp_path, "rocky-a", b)["rocky-a"]
    assert missing(r) == expected
    if entry == "CVE-2025-10005":  # the notice fixing the CVE ships 1.1-1, not the newest 1.2-1
        sudo = next(x for x in r.records if x.package == "fake-sudo")
        assert sudo.available_version == "1.1-1"


@pytest.mark.parametrize(("action", "state"), [("BLOCK", R), ("ALLOW_AS_DEPENDENCY", OTH)])
def test_rejected_package(rpm_fleet: Any, tmp_path: Path, action: str,
                          state: PatchState) -> None:
    b = baseline_file(tmp_path, f"rej-{action}", "ROCKY_LINUX", f"""
        approval_rules:
          - patch_filters: [{{key: CLASSIFICATION, values: [Security]}}]
        rejected_patches: [fake-curl]
        rejected_patches_action: {action}
    """)
    r = scan(rpm_fleet, tmp_path, "rocky-a", b)["rocky-a"]
    assert states(r)["fake-curl"] is state
    assert "fake-libcurl" in missing(r)


@pytest.mark.parametrize(("classification", "enable", "state"), [
    ("Security", False, OTH), ("Security", True, OTH), ("'*'", True, M)])
def test_package_in_no_advisory(rpm_fleet: Any, tmp_path: Path, classification: str,
                                enable: bool, state: PatchState) -> None:
    """Approved only with enable_non_security and a rule whose CLASSIFICATION filter lets an
    unclassified package through (AWS: dnf upgrade --security never selects it)."""
    b = baseline_file(tmp_path, f"nonsec-{enable}", "ROCKY_LINUX", f"""
        approval_rules:
          - patch_filters: [{{key: CLASSIFICATION, values: [{classification}]}}]
            enable_non_security: {str(enable).lower()}
    """)
    r = scan(rpm_fleet, tmp_path, "rocky-a", b)["rocky-a"]
    assert states(r)["fake-noadvisory"] is state


def test_pending_reboot_on_dnf_then_reboot(clean_rpm: Any, tmp_path: Path) -> None:
    clean_rpm.ssh("rocky-a", "dnf -q -y upgrade kernel", check=True)
    aws = scan(clean_rpm, tmp_path / "0", "rocky-a")["rocky-a"]  # AWS: not patchfleet's install
    assert states(aws)["kernel"] is not P and aws.reboot_required
    signals = baseline_file(tmp_path, "signals", "ROCKY_LINUX", """
        os_reboot_signals: true
        approval_rules:
          - patch_filters: [{key: CLASSIFICATION, values: [Security]}]
    """)
    r = scan(clean_rpm, tmp_path / "1", "rocky-a", signals)["rocky-a"]
    assert states(r)["kernel"] is P
    assert r.summary.installed_pending_reboot_count == 1
    clean_rpm.reboot("rocky-a")
    after = scan(clean_rpm, tmp_path / "2", "rocky-a", signals)["rocky-a"]
    assert states(after)["kernel"] in (INS, OTH)
    assert after.summary.installed_pending_reboot_count == 0


def test_mixed_fleet_one_store_one_report(fleet: Any, rpm_fleet: Any, tmp_path: Path) -> None:
    """apt, dnf and zypper nodes in one inventory: one store, one report, CVE ids in the
    detail report."""
    nodes = []
    for f in (fleet, rpm_fleet):
        inv = yaml.safe_load(f.inventory.read_text())
        for n in inv["nodes"]:
            nodes.append({**inv["defaults"], **n})
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    from patchfleet.report.csv_reports import write_reports_from_results

    results = scan(fleet, tmp_path, "deb-a,rocky-a,sles-a", inventory=path)
    assert {k: v.summary.status for k, v in results.items()} == dict.fromkeys(
        ("deb-a", "rocky-a", "sles-a"), NodeStatus.NON_COMPLIANT)
    from patchfleet.domain.records import Operation
    from patchfleet.domain.results import RunContext
    from patchfleet.store.query import ComplianceStore
    from patchfleet.store.writer import write_run

    write_run(tmp_path / "store", RunContext(run_id="mixed-1", operation=Operation.SCAN,
                                             started_at=datetime.now(UTC)),
              list(results.values()))
    with ComplianceStore(tmp_path / "store") as cs:
        _, rows = cs.query("SELECT node_id, platform_name FROM latest_node_summaries "
                           "ORDER BY node_id")
        assert [r[0] for r in rows] == ["deb-a", "rocky-a", "sles-a"]
        _, cves = cs.query("SELECT DISTINCT unnest(cve_ids) FROM latest_patch_states "
                           "WHERE node_id = 'sles-a' ORDER BY 1")
        assert ("CVE-2025-10001",) in cves
    files = write_reports_from_results(tmp_path / "report", list(results.values()))
    with open(files.node_patches["rocky-a"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    curl = next(r for r in rows if r["KB ID/Patch ID"] == "fake-curl.x86_64")
    assert "CVE-2025-10002" in curl["CVE ID"] and curl["Patch state"] == "MISSING"
    with open(files.all_nodes, newline="", encoding="utf-8") as fh:
        assert sorted(r["Instance ID"] for r in csv.DictReader(fh)) == [
            "deb-a", "rocky-a", "sles-a"]
