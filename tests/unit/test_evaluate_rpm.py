"""Baseline evaluation for dnf/yum and zypper nodes: one test per rule of patchfleet's reading
of AWS (the numbered list in patchfleet.domain.evaluate.rpm)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import rpm_facts as C

from patchfleet.config.baselines import load_baseline
from patchfleet.domain.baseline import Baseline, parse_baseline
from patchfleet.domain.compliance import summarize
from patchfleet.domain.evaluate import (
    evaluate,
    evaluate_rpm,
    evaluation_warnings,
    rpm_evaluation_warnings,
)
from patchfleet.domain.facts import NodeFacts, RebootState
from patchfleet.domain.records import ComplianceLevel, NodeStatus, PatchRecord, PatchState
from patchfleet.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


NOW = C.NOW
M, INST, IO, IR, IPR, NA = (
    PatchState.MISSING,
    PatchState.INSTALLED,
    PatchState.INSTALLED_OTHER,
    PatchState.INSTALLED_REJECTED,
    PatchState.INSTALLED_PENDING_REBOOT,
    PatchState.NOT_APPLICABLE,
)
U = ComplianceLevel.UNSPECIFIED
SECURITY = ("CLASSIFICATION", ["Security"])


def aws(name: str) -> Baseline:
    return load_baseline(REPO / "baselines" / f"{name}.yaml")


def baseline(os: str = "ROCKY_LINUX", **fields: Any) -> Baseline:
    data: dict[str, Any] = {"name": "test-baseline", "operating_system": os}
    data.update(fields)
    return parse_baseline(data, "test")


def rule(*filters: tuple[str, list[str]], **fields: Any) -> dict[str, Any]:
    return {"patch_filters": [{"key": k, "values": v} for k, v in filters], **fields}


def run(facts: NodeFacts, b: Baseline, now: datetime = NOW, **kw: Any) -> dict[str, PatchRecord]:
    records = evaluate(facts, b, now, **kw)
    assert len({r.package for r in records}) == len(records)
    return {r.package: r for r in records}


def states(records: dict[str, PatchRecord]) -> dict[str, PatchState]:
    return {k: r.state for k, r in records.items()}


def missing(records: dict[str, PatchRecord]) -> set[str]:
    return {k for k, r in records.items() if r.state is M}


# --- predefined baselines ---------------------------------------------------------------------


def test_rocky_default_approves_critical_important_security_and_bugfix() -> None:
    records = evaluate(C.rocky(), aws("AWS-RockyLinuxDefaultPatchBaseline"), NOW)
    r = {x.package: x for x in records}
    assert states(r) == {
        "fake-openssl": M,
        "fake-curl": M,
        "fake-libcurl": M,
        "fake-coreutils": M,
        "kernel": IO,  # Moderate
        "fake-sudo": IO,  # Low
        "fake-editor": IO,  # enhancement
        "fake-noadvisory": IO,  # in no notice
        "fake-release": IO,  # nothing available
    }
    openssl = r["fake-openssl"]
    assert (openssl.installed_version, openssl.available_version) == ("1.0-1", "1.1-1")
    assert (openssl.classification, openssl.severity, openssl.security) == (
        "Security",
        "Critical",
        True,
    )
    assert openssl.advisory_ids == ("FAKESA-2025:0001",)
    assert openssl.cve_ids == ("CVE-2025-1001",)
    assert openssl.release_date == C.OPENSSL_UPDATED  # updated, not issued
    assert openssl.compliance_level is U
    assert openssl.repository == "fake-updates" and openssl.source_package == "fake-openssl"
    assert r["fake-curl"].cve_ids == ("CVE-2025-1002", "CVE-2025-1003")
    assert r["fake-libcurl"].advisory_ids == ("FAKESA-2025:0002",)
    assert r["fake-curl"].release_date == C.ISSUED
    coreutils = r["fake-coreutils"]
    assert (coreutils.classification, coreutils.severity, coreutils.security) == (
        "Bugfix",
        None,
        False,
    )
    # Unapproved but pending: the record still says what is pending.
    kernel = r["kernel"]
    assert (kernel.classification, kernel.severity, kernel.available_version) == (
        "Security",
        "Moderate",
        "1.1-1",
    )
    assert kernel.compliance_level is None
    noadv = r["fake-noadvisory"]
    assert (noadv.classification, noadv.severity, noadv.advisory_ids) == (None, None, ())
    assert r["fake-release"].available_version is None and r["fake-release"].repository is None

    s = summarize(records)
    assert s.status is NodeStatus.NON_COMPLIANT and s.overall_severity is U
    assert (s.missing_count, s.installed_other_count, s.installed_count) == (4, 5, 0)
    assert (
        s.critical_non_compliant_count,
        s.security_non_compliant_count,
        s.other_non_compliant_count,
    ) == (0, 3, 1)


def test_records_are_sorted_and_deterministic() -> None:
    b = aws("AWS-RockyLinuxDefaultPatchBaseline")
    first = evaluate(C.rocky(), b, NOW)
    assert [(r.package, r.arch) for r in first] == sorted((r.package, r.arch) for r in first)
    assert evaluate(C.rocky(), b, NOW) == first


def test_default_waits_seven_days() -> None:
    b = aws("AWS-RockyLinuxDefaultPatchBaseline")
    # Issued 2025-05-01 10:00: curl is approved once more than 7 x 24 h have passed (AWS: strictly
    # older than the delay); openssl was updated 05-20.
    assert missing(run(C.rocky(), b, C.ISSUED + timedelta(days=7, seconds=1))) == {
        "fake-curl",
        "fake-libcurl",
        "fake-coreutils",
    }
    assert missing(run(C.rocky(), b, C.ISSUED + timedelta(days=7))) == set()


def test_amazon_linux_2023_default_and_medium_matches_moderate() -> None:
    f = C.rocky(os=C.AL2023)
    r = run(f, aws("AWS-AmazonLinux2023DefaultPatchBaseline"))
    assert missing(r) == {"fake-openssl", "fake-curl", "fake-libcurl", "fake-coreutils"}
    medium = baseline(
        "AMAZON_LINUX_2023", approval_rules=[rule(SECURITY, ("SEVERITY", ["Medium"]))]
    )
    assert missing(run(f, medium)) == {"kernel"}  # its notice says Moderate
    assert run(f, medium)["kernel"].severity == "Moderate"
    none = baseline("AMAZON_LINUX_2023", approval_rules=[rule(("SEVERITY", ["None"]))])
    assert missing(run(f, none)) == {"fake-coreutils", "fake-editor"}  # "" and "None"


def test_a_baseline_of_another_os_is_refused() -> None:
    with pytest.raises(ConfigError, match="is for ROCKY_LINUX, but node 'rpm-node' runs ALMA"):
        evaluate(C.rocky(os=C.ALMA9), aws("AWS-RockyLinuxDefaultPatchBaseline"), NOW)
    with pytest.raises(ConfigError, match="is for SUSE, but node 'rpm-node' runs ROCKY_LINUX"):
        evaluate_rpm(C.rocky(), aws("AWS-SuseDefaultPatchBaseline"), NOW)
    with pytest.raises(ConfigError, match="is for DEBIAN"):
        evaluate(C.sles(), aws("AWS-DebianDefaultPatchBaseline"), NOW)
    # A dnf OS AWS doesn't name (Fedora) takes any yum-family baseline.
    fedora = replace(C.ROCKY9, id="fedora", operating_system="", product="Fedora41")
    assert missing(run(C.rocky(os=fedora), aws("AWS-RedHatDefaultPatchBaseline")))


def test_centos_default_approves_everything_after_seven_days() -> None:
    b = aws("AWS-CentOSDefaultPatchBaseline")
    # CentOS repos carry no updateinfo: the build time is the release date.
    bare = C.rocky(os=C.CENTOS9, advisories=())
    r = run(bare, b)
    assert missing(r) == set(C.PACKAGES)
    assert r["fake-openssl"].release_date == C.BUILT and r["fake-openssl"].classification is None
    assert missing(run(bare, b, C.BUILT + timedelta(days=7, seconds=-1))) == set()
    # With notices, every classification and severity passes too.
    assert missing(run(C.rocky(os=C.CENTOS9), b)) == set(C.PACKAGES)


def test_suse_default_approves_critical_important_security_patches() -> None:
    records = evaluate(C.sles(), aws("AWS-SuseDefaultPatchBaseline"), NOW)
    r = {x.package: x for x in records}
    assert missing(r) == {"fake-openssl", "fake-curl", "fake-libcurl"}
    assert set(states(r).values()) == {M, IO}
    openssl = r["fake-openssl"]
    assert (openssl.classification, openssl.severity) == ("Security", "Critical")
    assert openssl.advisory_ids == ("FAKE-SLE-15-SP6-2025-1",)
    coreutils = r["fake-coreutils"]
    assert (coreutils.state, coreutils.classification, coreutils.severity) == (
        IO,
        "Recommended",
        "Low",
    )
    assert r["fake-editor"].classification == "Optional" and r["fake-editor"].severity is None
    s = summarize(records)
    assert (s.missing_count, s.installed_other_count, s.security_non_compliant_count) == (3, 6, 3)


def test_suse_non_security_patch_categories_need_no_switch() -> None:
    b = baseline("SUSE", approval_rules=[rule(("CLASSIFICATION", ["Recommended", "Optional"]))])
    assert missing(run(C.sles(), b)) == {"fake-coreutils", "fake-editor"}
    # The switch adds package updates that belong to no patch, if the rule's CLASSIFICATION and
    # SEVERITY filters let a package without them through (only '*' does, as in AWS).
    b = baseline(
        "SUSE",
        approval_rules=[rule(("CLASSIFICATION", ["Recommended"]), enable_non_security=True)],
    )
    assert missing(run(C.sles(), b)) == {"fake-coreutils"}
    star = baseline("SUSE", approval_rules=[rule(("CLASSIFICATION", ["*"]),
                                                 enable_non_security=True)])
    assert "fake-noadvisory" in missing(run(C.sles(), star))


def test_suse_repo_in_rhel_style_maps_bugfix_and_enhancement() -> None:
    f = replace(C.rocky(), os=C.SLES15)
    r = run(f, aws("AWS-SuseDefaultPatchBaseline"))
    assert missing(r) == {"fake-openssl", "fake-curl", "fake-libcurl"}
    assert r["fake-coreutils"].classification == "Bugfix"
    assert r["fake-editor"].classification == "Enhancement"
    assert rpm_evaluation_warnings(f) == ()


# --- filters ------------------------------------------------------------------------------------


def test_severity_filter() -> None:
    b = baseline(approval_rules=[rule(SECURITY, ("SEVERITY", ["Moderate", "low"]))])
    assert missing(run(C.rocky(), b)) == {"kernel", "fake-sudo"}
    wildcard = baseline(approval_rules=[rule(("SEVERITY", ["*"]))])
    assert missing(run(C.rocky(), wildcard)) == set(C.PACKAGES) - {"fake-noadvisory"}


def test_classification_filter() -> None:
    b = baseline(approval_rules=[rule(("CLASSIFICATION", ["Enhancement"]))])
    r = run(C.rocky(), b)
    assert missing(r) == {"fake-editor"}
    assert (r["fake-editor"].classification, r["fake-editor"].severity) == ("Enhancement", None)
    assert r["fake-editor"].security is False


def test_product_filter_and_global_filters() -> None:
    nine = baseline(approval_rules=[rule(SECURITY, ("PRODUCT", ["RockyLinux9.*"]))])
    eight = baseline(approval_rules=[rule(SECURITY, ("PRODUCT", ["RockyLinux8*"]))])
    assert len(missing(run(C.rocky(), nine))) == 5
    assert missing(run(C.rocky(), eight)) == set()
    # A global filter must pass on the same notice as the rule.
    b = baseline(
        global_filters=[{"key": "SEVERITY", "values": ["Critical"]}],
        approval_rules=[rule(("CLASSIFICATION", ["Security", "Bugfix"]))],
    )
    assert missing(run(C.rocky(), b)) == {"fake-openssl"}


# --- release dates ------------------------------------------------------------------------------


def test_approve_after_days_counts_from_updated_then_issued() -> None:
    b = baseline(approval_rules=[rule(SECURITY, approve_after_days=10)])
    at = C.OPENSSL_UPDATED + timedelta(days=10, seconds=1)
    assert "fake-openssl" in missing(run(C.rocky(), b, at))
    assert "fake-openssl" not in missing(run(C.rocky(), b, at - timedelta(seconds=1)))
    at = C.ISSUED + timedelta(days=10, seconds=1)
    assert missing(run(C.rocky(), b, at)) == {"fake-curl", "fake-libcurl", "kernel", "fake-sudo"}
    assert missing(run(C.rocky(), b, at - timedelta(seconds=1))) == set()


def test_approve_after_days_falls_back_to_build_time_then_no_delay() -> None:
    undated = tuple(replace(a, issued=None, updated=None) for a in C.dnf_advisories())
    b = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)])
    f = C.rocky(advisories=undated)
    at = C.BUILT + timedelta(days=7, seconds=1)
    assert len(missing(run(f, b, at))) == 5
    assert run(f, b, at)["fake-openssl"].release_date == C.BUILT
    assert missing(run(f, b, at - timedelta(seconds=1))) == set()
    # No build time either: no delay.
    unbuilt = replace(f, updates=tuple(replace(u, build_time=None) for u in f.updates))
    assert len(missing(run(unbuilt, b, C.BUILT))) == 5
    assert run(unbuilt, b, C.BUILT)["fake-openssl"].release_date is None


def test_first_seen_is_the_last_fallback_for_a_release_date() -> None:
    undated = tuple(replace(a, issued=None, updated=None) for a in C.dnf_advisories())
    f = C.rocky(advisories=undated)
    f = replace(f, updates=tuple(replace(u, build_time=None) for u in f.updates))
    seen = {("fake-openssl", "1.1-1"): NOW - timedelta(days=8)}
    # AWS (default): a notice with no date at all has met its delay.
    b = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)])
    assert len(missing(run(f, b, first_seen=seen))) == 5
    assert run(f, b, first_seen=seen)["fake-openssl"].release_date is None
    # staged_approval (extension): dated from the fleet's first sighting, "now" if never seen.
    staged = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)],
                      staged_approval=True)
    assert missing(run(f, staged, first_seen=seen)) == {"fake-openssl"}
    assert run(f, staged, first_seen=seen)["fake-openssl"].release_date == (
        NOW - timedelta(days=8))


def test_an_undated_notice_below_the_newest_is_not_dated_by_the_newest_build() -> None:
    """The scan knows the build time of the newest version only. An undated notice for an
    older version takes its first sighting under staged approval (the build time of another
    version is not its release); without staged approval the newest's build time stays an
    upper bound (an older version was built before it), so the delay is never met early."""
    notice = C.advisory("FAKESA-2026:0100", "security", "Important", C.ref("fake-sudo", "1.1"),
                        issued=None)
    newest = C.update("fake-sudo", "1.2", built=NOW - timedelta(days=1))
    f = C.facts([C.pkg("fake-sudo")], [newest], [notice])
    seen = {("fake-sudo", "1.1-1"): NOW - timedelta(days=8)}
    staged = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)],
                      staged_approval=True)
    record = run(f, staged, first_seen=seen)["fake-sudo"]
    assert (record.state, record.available_version, record.release_date) == (
        PatchState.MISSING, "1.1-1", NOW - timedelta(days=8))
    assert run(f, staged, first_seen={})["fake-sudo"].state is PatchState.INSTALLED_OTHER
    aws = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)])
    assert run(f, aws, first_seen=seen)["fake-sudo"].state is PatchState.INSTALLED_OTHER
    assert run(f, aws, NOW + timedelta(days=7))["fake-sudo"].state is PatchState.MISSING


def test_approve_until_date_is_inclusive_to_the_end_of_the_day_utc() -> None:
    last_second = datetime(2025, 5, 20, 23, 59, 59, tzinfo=UTC)
    notices = list(C.dnf_advisories())
    notices[0] = replace(notices[0], updated=last_second)
    f = C.rocky(advisories=notices)
    on = baseline(approval_rules=[rule(SECURITY, approve_until_date="2025-05-20")])
    before = baseline(approval_rules=[rule(SECURITY, approve_until_date="2025-05-19")])
    assert "fake-openssl" in missing(run(f, on))
    assert "fake-openssl" not in missing(run(f, before))
    notices[0] = replace(notices[0], updated=last_second + timedelta(seconds=1))
    assert "fake-openssl" not in missing(run(C.rocky(advisories=notices), on))
    # Issued 05-01 for the others: approved by either date.
    assert missing(run(f, before)) == {"fake-curl", "fake-libcurl", "kernel", "fake-sudo"}


def test_dates_are_utc() -> None:
    notices = list(C.dnf_advisories())
    notices[0] = replace(notices[0], updated=C.OPENSSL_UPDATED.replace(tzinfo=None))
    b = baseline(approval_rules=[rule(SECURITY, approve_after_days=10)])
    at = (C.OPENSSL_UPDATED + timedelta(days=10, seconds=1)).replace(tzinfo=None)
    assert "fake-openssl" in missing(run(C.rocky(advisories=notices), b, at))
    cest = timezone(timedelta(hours=2))
    notices[0] = replace(notices[0], updated=C.OPENSSL_UPDATED.astimezone(cest))
    r = run(C.rocky(advisories=notices), b, at)["fake-openssl"]
    assert r.release_date == C.OPENSSL_UPDATED and r.release_date.tzinfo is UTC


# --- versions -----------------------------------------------------------------------------------


def _two_notice_node() -> NodeFacts:
    """openssl: notice A (Critical) fixes 1.1-1, notice B (Low) 1.2-1, repos offer up to 1.3-1."""
    a = C.advisory("FAKESA-2025:0101", "security", "Critical", C.ref("fake-openssl", "1.1"))
    b = C.advisory(
        "FAKESA-2025:0102", "security", "Low", C.ref("fake-openssl", "1.2"), cves=("CVE-2025-9",)
    )
    return C.facts([C.pkg("fake-openssl")], [C.update("fake-openssl", "1.3")], [a, b], os=C.ROCKY9)


def test_upgrade_minimal_approves_the_version_the_passing_notices_list() -> None:
    f = _two_notice_node()
    r = run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))["fake-openssl"]
    assert (r.state, r.available_version, r.severity) == (M, "1.1-1", "Critical")
    assert r.advisory_ids == ("FAKESA-2025:0101",)
    every = baseline(approval_rules=[rule(SECURITY)])
    r = run(f, every)["fake-openssl"]
    assert (r.available_version, r.severity) == ("1.2-1", "Critical")  # most important notice
    assert r.advisory_ids == ("FAKESA-2025:0101", "FAKESA-2025:0102")
    assert r.cve_ids == ("CVE-2025-9",)


def test_non_security_rule_approves_the_newest_version() -> None:
    b = baseline(approval_rules=[rule(SECURITY, ("SEVERITY", ["Low"]), enable_non_security=True)])
    r = run(_two_notice_node(), b)["fake-openssl"]
    assert (r.state, r.available_version, r.severity) == (M, "1.3-1", "Low")


def test_notice_above_the_newest_available_version_is_ignored() -> None:
    f = C.rocky(advisories=C.dnf_advisories(version="1.2"))
    r = run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))
    assert missing(r) == set()
    assert r["fake-openssl"].classification is None and r["fake-openssl"].advisory_ids == ()


def test_notice_matches_name_and_arch_only() -> None:
    i686 = C.advisory(
        "FAKESA-2025:0201", "security", "Critical", C.ref("fake-openssl", arch="i686")
    )
    noarch = C.advisory(
        "FAKESA-2025:0202", "security", "Critical", C.ref("fake-release", arch="noarch")
    )
    f = C.facts(
        [C.pkg("fake-openssl"), C.pkg("fake-release", arch="noarch")],
        [C.update("fake-openssl"), C.update("fake-release", arch="noarch")],
        [i686, noarch],
    )
    r = run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))
    assert states(r) == {"fake-openssl": IO, "fake-release": M}


def test_epochs_compare_and_show_like_rpm() -> None:
    notice = C.advisory(
        "FAKESA-2025:0301",
        "security",
        "Critical",
        replace(C.ref("fake-openssl", "1.0"), epoch=1),
    )
    up = C.update("fake-openssl", "1.0")
    up = replace(up, package=replace(up.package, epoch=1))
    f = C.facts([C.pkg("fake-openssl", "1.1-1")], [up], [notice])
    r = run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))["fake-openssl"]
    assert (r.state, r.available_version) == (M, "1:1.0-1")
    by_nevra = baseline(approved_patches=["fake-openssl-1.0-1.x86_64"])
    assert run(f, by_nevra)["fake-openssl"].state is M


def test_install_only_kernel_is_one_record_at_the_newest_installed_version() -> None:
    b = baseline(approval_rules=[rule(SECURITY)])
    r = run(C.rocky(), b)["kernel"]
    assert (r.state, r.installed_version, r.available_version) == (M, "1.0-1", "1.1-1")
    after = run(C.rocky_patched(), b)["kernel"]
    assert (after.state, after.installed_version, after.available_version) == (INST, "1.1-1", None)


# --- installed ----------------------------------------------------------------------------------


def test_installed_fixes_are_installed_and_the_rest_other() -> None:
    records = evaluate(C.rocky_patched(), aws("AWS-RockyLinuxDefaultPatchBaseline"), NOW)
    r = {x.package: x for x in records}
    assert states(r) == {
        "fake-openssl": INST,
        "fake-curl": INST,
        "fake-libcurl": INST,
        "fake-coreutils": INST,
        "kernel": IO,
        "fake-sudo": IO,
        "fake-editor": IO,
        "fake-noadvisory": IO,
        "fake-release": IO,
    }
    assert r["fake-openssl"].compliance_level is U
    assert r["fake-openssl"].advisory_ids == ("FAKESA-2025:0001",)
    assert r["fake-openssl"].severity == "Critical"
    assert r["kernel"].severity == "Moderate"  # the installed fix, shown though not approved
    s = summarize(records)
    assert s.status is NodeStatus.COMPLIANT
    assert (s.installed_count, s.installed_other_count) == (4, 5)


def test_installed_version_above_a_notice_counts_as_fixed() -> None:
    f = replace(C.rocky_patched(), advisories=C.dnf_advisories(version="1.0.5"))
    assert run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))["fake-openssl"].state is INST


def test_non_security_rule_marks_packages_in_no_notice_installed() -> None:
    b = baseline(approval_rules=[rule(SECURITY, enable_non_security=True)])
    r = run(C.rocky_patched(), b)
    # AWS: a package in no notice has no classification, so CLASSIFICATION=Security drops it
    assert r["fake-noadvisory"].state is IO and r["fake-release"].state is IO
    assert r["fake-coreutils"].state is IO  # its bugfix notice fails the Security filter
    star = baseline(approval_rules=[rule(("CLASSIFICATION", ["*"]), enable_non_security=True)])
    r = run(C.rocky_patched(), star)
    assert r["fake-noadvisory"].state is INST and r["fake-release"].state is INST


# --- enable_non_security ------------------------------------------------------------------------


def test_package_in_no_notice_needs_enable_non_security() -> None:
    off = baseline(approval_rules=[rule(SECURITY, ("SEVERITY", ["Critical"]))])
    on = baseline(
        approval_rules=[rule(SECURITY, ("SEVERITY", ["Critical"]), enable_non_security=True)]
    )
    assert missing(run(C.rocky(), off)) == {"fake-openssl"}
    # Issue 12 #3, as AWS (dnf upgrade --security --sec-severity Critical): a rule with a
    # CLASSIFICATION or SEVERITY filter approves only packages whose notices match.
    assert missing(run(C.rocky(), on)) == {"fake-openssl"}
    star = baseline(approval_rules=[rule(("CLASSIFICATION", ["*"]), ("SEVERITY", ["*"]),
                                         enable_non_security=True)])
    r = run(C.rocky(), star)
    assert "fake-noadvisory" in missing(r)
    noadv = r["fake-noadvisory"]
    assert (noadv.available_version, noadv.classification, noadv.security) == (
        "1.1-1",
        None,
        False,
    )
    assert noadv.release_date == C.BUILT
    delayed = baseline(approval_rules=[rule(("CLASSIFICATION", ["*"]), approve_after_days=40,
                                            enable_non_security=True)])
    assert "fake-noadvisory" in missing(run(C.rocky(), delayed,
                                            C.BUILT + timedelta(days=40, seconds=1)))
    assert "fake-noadvisory" not in missing(run(C.rocky(), delayed, C.BUILT + timedelta(days=40)))


# --- approved and rejected lists ----------------------------------------------------------------


def test_approved_advisory_cve_and_bugzilla_ids() -> None:
    b = baseline(
        approved_patches=["FAKESA-2025:0004", "CVE-2025-1002", "2000001"],
        approved_patches_compliance_level="HIGH",
    )
    r = run(C.rocky(), b)
    assert missing(r) == {"fake-sudo", "fake-curl", "fake-libcurl", "fake-openssl"}
    assert r["fake-sudo"].compliance_level is ComplianceLevel.HIGH
    assert (r["fake-sudo"].severity, r["fake-sudo"].advisory_ids) == ("Low", ("FAKESA-2025:0004",))
    assert r["fake-libcurl"].cve_ids == ("CVE-2025-1002", "CVE-2025-1003")
    # Approved ids bypass the rules' delays.
    assert missing(run(C.rocky(), b, C.ISSUED)) == missing(r)
    s = summarize(evaluate(C.rocky(), b, NOW))
    assert s.overall_severity is ComplianceLevel.HIGH


def test_approved_nevra_and_wildcards() -> None:
    b = baseline(approved_patches=["kernel-1.1-*.x86_64", "fake-ed*", "fake-sudo-1.1-1.x86_64"])
    assert missing(run(C.rocky(), b)) == {"kernel", "fake-editor", "fake-sudo"}
    # A NEVRA of a version nothing offers approves nothing.
    assert missing(run(C.rocky(), baseline(approved_patches=["fake-sudo-1.2-1.x86_64"]))) == set()


def test_approved_names_follow_approved_patches_enable_non_security() -> None:
    off = baseline(approved_patches=["fake-noadvisory", "fake-coreutils"])
    on = baseline(
        approved_patches=["fake-noadvisory", "fake-coreutils"],
        approved_patches_enable_non_security=True,
    )
    assert missing(run(C.rocky(), off)) == {"fake-coreutils"}
    assert missing(run(C.rocky(), on)) == {"fake-coreutils", "fake-noadvisory"}
    assert run(C.rocky_patched(), off)["fake-noadvisory"].state is INST


def test_approved_names_that_are_not_installed_are_not_applicable() -> None:
    b = baseline(
        approved_patches=[
            "fake-absent",
            "fake-gone-2.0-1.noarch",
            "fake-open*",
            "FAKESA-2025:0999",
            "fake-sudo",
            "fake-editor-1.1-1.x86_64",
        ]
    )
    records = evaluate(C.rocky(), b, NOW)
    na = [(r.package, r.arch) for r in records if r.state is NA]
    assert na == [("fake-absent", ""), ("fake-gone", "noarch")]
    assert records[-2:] == tuple(r for r in records if r.state is NA)
    assert summarize(records).not_applicable_count == 2


def test_rejected_package_under_block_and_allow_as_dependency() -> None:
    default = aws("AWS-RockyLinuxDefaultPatchBaseline").model_dump(mode="json", exclude_none=True)
    block = parse_baseline(
        {**default, "rejected_patches": ["fake-openssl"], "rejected_patches_action": "BLOCK"},
        "test",
    )
    r = run(C.rocky(), block)
    assert r["fake-openssl"].state is IR
    assert r["fake-openssl"].compliance_level is U
    allow = parse_baseline(
        {**default, "rejected_patches": ["fake-openssl*"]}, "test"
    )  # ALLOW_AS_DEPENDENCY is the default action
    assert run(C.rocky(), allow)["fake-openssl"].state is IO
    s = summarize(evaluate(C.rocky(), block, NOW))
    assert (s.installed_rejected_count, s.missing_count) == (1, 3)
    assert summarize(evaluate(C.rocky(), allow, NOW)).installed_rejected_count == 0


def test_rejected_wins_over_approved_and_nevra_rejects_one_version() -> None:
    b = baseline(
        approval_rules=[rule(SECURITY)],
        approved_patches=["fake-curl"],
        rejected_patches=["fake-curl", "fake-libcurl-1.1-1.x86_64"],
        rejected_patches_action="BLOCK",
    )
    r = run(C.rocky(), b)
    assert r["fake-curl"].state is IR
    assert r["fake-libcurl"].state is IO  # 1.1-1 rejected, 1.0-1 installed is not
    f = _two_notice_node()
    r2 = run(f, baseline(approval_rules=[rule(SECURITY)], rejected_patches=["fake-openssl-1.2*"]))
    assert r2["fake-openssl"].available_version == "1.1-1"  # the next approved version


def test_suse_patch_ids_and_full_rpm_names() -> None:
    b = baseline(
        "SUSE",
        approved_patches=["FAKE-SLE-15-SP6-2025-4", "fake-editor-1.1-1.x86_64.rpm"],
        rejected_patches=["FAKE-SLE-15-SP6-2025-1"],
        approval_rules=[rule(SECURITY, ("SEVERITY", ["Critical", "Important"]))],
    )
    r = run(C.sles(), b)
    assert missing(r) == {"fake-sudo", "fake-editor", "fake-curl", "fake-libcurl"}
    assert r["fake-openssl"].state is IO  # its only patch is rejected


# --- pending reboot -----------------------------------------------------------------------------


def test_pending_reboot_from_the_names_the_os_gives() -> None:
    reboot = RebootState(boot_id="boot-1", required=True, packages=("kernel",))
    default = aws("AWS-RockyLinuxDefaultPatchBaseline")
    assert states(run(C.rocky_patched(reboot), default))["kernel"] is IO  # AWS: never pending
    signals = default.model_copy(update={"os_reboot_signals": True})
    records = evaluate(C.rocky_patched(reboot), signals, NOW)
    r = {x.package: x for x in records}
    assert r["kernel"].state is IPR and r["kernel"].compliance_level is U
    assert r["kernel"].classification == "Security"
    assert r["fake-openssl"].state is INST  # installed since boot, but not named
    s = summarize(records)
    assert (s.installed_pending_reboot_count, s.status) == (1, NodeStatus.NON_COMPLIANT)
    assert s.security_non_compliant_count == 1
    # Not required: no pending reboot, whatever the install times.
    assert states(run(C.rocky_patched(), signals))["kernel"] is IO


def test_pending_reboot_from_install_time_when_the_os_names_nothing() -> None:
    f = C.sles()
    after_boot = C.BOOTED + timedelta(hours=1)
    installed = [
        replace(p, version="1.1-1", install_time=after_boot)
        if p.name in ("kernel-default", "fake-openssl")
        else p
        for p in f.installed
    ]
    installed.append(C.pkg("kernel-default-devel", "1.1-1", installed_at=after_boot))
    f = replace(f, installed=tuple(installed), reboot=RebootState("boot-1", required=True))
    signals = aws("AWS-SuseDefaultPatchBaseline").model_copy(update={"os_reboot_signals": True})
    assert run(f, aws("AWS-SuseDefaultPatchBaseline"))["kernel-default"].state is not IPR
    r = run(f, signals)
    assert r["kernel-default"].state is IPR
    assert r["fake-openssl"].state is INST  # not a reboot package
    assert r["kernel-default-devel"].state is IO
    booted_later = replace(f, boot_time=after_boot + timedelta(minutes=1))
    assert run(booted_later, signals)["kernel-default"].state is IO
    unknown_boot = replace(f, boot_time=None)
    assert run(unknown_boot, aws("AWS-SuseDefaultPatchBaseline"))["kernel-default"].state is IO


def test_pending_reboot_never_hides_a_missing_update() -> None:
    reboot = RebootState(boot_id="boot-1", required=True, packages=("fake-openssl",))
    f = replace(C.rocky(), reboot=reboot)
    assert run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))["fake-openssl"].state is M


# --- malformed notices --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"severity": "Urgent"}, "severity 'Urgent' is not one of"),
        ({"type": "sec"}, "type 'sec' is not one of"),
        ({"updated": datetime(1970, 1, 1, tzinfo=UTC)}, "updated date 1970-01-01"),
        ({"issued": NOW + timedelta(days=30)}, "issued date 2025-07-01"),
    ],
)
def test_malformed_notice_counts_as_no_notice_with_a_warning(
    change: dict[str, Any], problem: str
) -> None:
    notices = list(C.dnf_advisories())
    notices[0] = replace(notices[0], **change)
    f = C.rocky(advisories=notices)
    r = run(f, aws("AWS-RockyLinuxDefaultPatchBaseline"))
    assert r["fake-openssl"].state is IO
    assert (r["fake-openssl"].classification, r["fake-openssl"].advisory_ids) == (None, ())
    (warning,) = rpm_evaluation_warnings(f)
    assert warning.startswith("advisory FAKESA-2025:0001: ") and problem in warning
    assert "as if no advisory listed them" in warning
    assert evaluation_warnings(f) == (warning,)
    # As a package in no notice it qualifies under enable_non_security, for a rule whose
    # CLASSIFICATION filter lets unclassified packages through.
    on = baseline(approval_rules=[rule(("CLASSIFICATION", ["*"]), enable_non_security=True)])
    assert run(f, on)["fake-openssl"].state is M


def test_warnings_only_for_notices_of_installed_packages() -> None:
    stray = C.advisory("FAKESA-2025:0401", "security", "Urgent", C.ref("not-installed"))
    f = C.rocky(advisories=[*C.dnf_advisories(), stray])
    assert rpm_evaluation_warnings(f) == ()
    assert evaluation_warnings(C.rocky()) == ()
    assert rpm_evaluation_warnings(C.sles()) == ()


def test_suse_categories_are_not_yum_classifications() -> None:
    f = replace(C.sles(), os=C.ROCKY9)
    warnings = rpm_evaluation_warnings(f)
    assert [w.split(":")[0] for w in warnings] == [
        "advisory FAKE-SLE-15-SP6-2025-6"  # optional is SUSE-only; recommended is both
    ]


# --- compliance levels --------------------------------------------------------------------------


def test_highest_level_among_what_approved_the_version() -> None:
    b = baseline(
        approval_rules=[
            rule(SECURITY, compliance_level="LOW"),
            rule(("SEVERITY", ["Critical"]), compliance_level="CRITICAL"),
        ],
        approved_patches=["fake-curl"],
        approved_patches_compliance_level="MEDIUM",
    )
    records = evaluate(C.rocky(), b, NOW)
    r = {x.package: x for x in records}
    assert r["fake-openssl"].compliance_level is ComplianceLevel.CRITICAL
    assert r["fake-curl"].compliance_level is ComplianceLevel.MEDIUM
    assert r["kernel"].compliance_level is ComplianceLevel.LOW
    s = summarize(records)
    assert s.overall_severity is ComplianceLevel.CRITICAL
    # fake-openssl is critical and a security update: AWS counts it in both
    assert (s.critical_non_compliant_count, s.security_non_compliant_count) == (1, 5)


def test_delay_boundaries_are_aws_s() -> None:
    """Issue 12 #7: a notice exactly 7 x 24 h old is not yet approved (AWS: strictly older
    than the delay); approve_until_date covers the whole day, 23:59:59.5 included."""
    b = baseline(approval_rules=[rule(SECURITY, approve_after_days=7)])
    exactly = C.ISSUED + timedelta(days=7)
    assert "fake-curl" not in missing(run(C.rocky(), b, exactly))
    assert "fake-curl" in missing(run(C.rocky(), b, exactly + timedelta(microseconds=1)))
    day = C.ISSUED.date()
    until = baseline(approval_rules=[rule(SECURITY, approve_until_date=day.isoformat())])
    late = replace(C.rocky(), advisories=tuple(
        replace(a, issued=datetime(day.year, day.month, day.day, 23, 59, 59, 500000, tzinfo=UTC),
                updated=None) for a in C.dnf_advisories()))
    assert "fake-curl" in missing(run(late, until))
    next_day = replace(C.rocky(), advisories=tuple(
        replace(a, issued=datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1),
                updated=None) for a in C.dnf_advisories()))
    assert "fake-curl" not in missing(run(next_day, until))
