"""The repository-change helpers (tests/cases/repo_changes.py) seen through real scans.

A Debian node gets fake-stable-only 1.1 in a security pocket and 1.2 in an updates pocket; a
Rocky 9 node gets 1.1 and 1.2 in a new rpm-md repository whose updateinfo has one undated
security notice for 1.1. Each node is scanned over SSH with the library path the CLI uses and
the facts the scan gathered are checked; then the change is removed (and ``clean`` /
``clean_rpm`` reset the nodes anyway).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repo_changes import (
    RpmNotice,
    add_apt_pockets,
    add_rpm_notice,
    remove_apt_pockets,
    remove_rpm_stage,
)

from patchfleet.domain.facts import NodeFacts
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_node_full
from patchfleet.transport.connector import SSHConnector

PKG = "fake-stable-only"
NOTICE = "FAKESA-2026:0100"


def scan_facts(fleet: Any, tmp_path: Path, node: str) -> NodeFacts:
    """Scan ``node`` as a scan run does (refresh included) and return the facts it gathered."""
    plan = plan_scan(inventory=str(fleet.inventory), targets=node, store=str(tmp_path / "store"))
    [target] = plan.nodes
    with SSHConnector() as connector:
        result, facts, _ = asyncio.run(
            scan_node_full(target, plan.registry, connector, plan.options))
    assert facts is not None, result.reason
    return facts


def test_apt_security_pocket_below_the_candidate(clean: Any, tmp_path: Path) -> None:
    policy = add_apt_pockets(clean, "deb-a", PKG, {"security": "1.1", "updates": "1.2"})
    assert "Candidate: 1.2" in policy

    facts = scan_facts(clean, tmp_path / "1", "deb-a")
    [cand] = [c for c in facts.candidates if c.name == PKG]
    assert (cand.installed_version, cand.candidate_version) == ("1.0", "1.2")
    v11, v12 = cand.version("1.1"), cand.version("1.2")
    assert v11 is not None and v12 is not None
    assert v11.security and not v12.security
    [sec] = v11.origins
    assert (sec.origin, sec.label, sec.archive, sec.codename) == (
        "Debian", "Debian-Security", "stable-security", "bookworm-security")
    [upd] = v12.origins
    assert (upd.origin, upd.label, upd.archive, upd.codename) == (
        "Debian", "Debian", "stable-updates", "bookworm-updates")
    assert (v12.priority, v12.section) == ("optional", "misc")

    # Staging the same versions again keeps the same files: nothing a later scan could see.
    sums = "md5sum /srv/stage/apt/*/pool/main/*.deb"
    before = clean.ssh("deb-a", sums, check=True).stdout
    add_apt_pockets(clean, "deb-a", PKG, {"security": "1.1", "updates": "1.2"})
    assert clean.ssh("deb-a", sums, check=True).stdout == before

    remove_apt_pockets(clean, "deb-a")
    facts = scan_facts(clean, tmp_path / "2", "deb-a")
    [cand] = [c for c in facts.candidates if c.name == PKG]
    assert cand.candidate_version == "1.0"
    assert {v.version for v in cand.versions} == {"1.0"}


def test_dnf_undated_notice_below_the_newest(clean_rpm: Any, tmp_path: Path) -> None:
    built = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)  # the scan reads build times to the minute
    listing = add_rpm_notice(clean_rpm, "rocky-a", PKG, offered=("1.1", "1.2"),
                             notice=RpmNotice(NOTICE, ("1.1",)), build_time=built)
    assert f"{NOTICE} Important/Sec. {PKG}-1.1-1.x86_64" in " ".join(listing.split())

    facts = scan_facts(clean_rpm, tmp_path / "1", "rocky-a")
    [adv] = [a for a in facts.advisories if a.id == NOTICE]
    assert (adv.type, adv.severity, adv.issued, adv.updated) == (
        "security", "Important", None, None)
    assert [(p.name, p.evr) for p in adv.packages] == [(PKG, "1.1-1")]
    assert not adv.installed
    assert not any(PKG in {p.name for p in a.packages} for a in facts.advisories
                   if a.id != NOTICE)
    [upd] = [u for u in facts.updates if u.package.name == PKG]
    assert (upd.package.evr, upd.installed_evr, upd.repository, upd.build_time) == (
        "1.2-1", "1.0-1", "fake-stage", built)

    remove_rpm_stage(clean_rpm, "rocky-a")
    facts = scan_facts(clean_rpm, tmp_path / "2", "rocky-a")
    assert NOTICE not in {a.id for a in facts.advisories}
    assert PKG not in {u.package.name for u in facts.updates}
