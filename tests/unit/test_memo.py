"""The fleet memos (domain/memo.py): bounded, identity-safe, and invisible in results.

The parser and evaluation memos are checked on real apt output (tests/golden/apt/debian12-host):
a second node that prints the same text gets the same objects and the same records as a fresh
parse, and what differs between nodes (a table, the reboot list, the product, the baseline)
still changes the verdict.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import apt_facts as C
import pytest

from patchfleet.domain.baseline import parse_baseline
from patchfleet.domain.evaluate import evaluate_apt
from patchfleet.domain.facts import NodeFacts, RebootState
from patchfleet.domain.memo import IdentityMemo, TextMemo
from patchfleet.domain.records import PatchState
from patchfleet.errors import ParseError
from patchfleet.parsers import apt, dpkg

HOST = Path(__file__).resolve().parents[1] / "golden" / "apt" / "debian12-host"


def read(name: str) -> str:
    return (HOST / f"{name}.stdout").read_text()


def test_text_memo_forgets_everything_at_its_bound() -> None:
    memo: TextMemo[str, int] = TextMemo(max_entries=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert (memo.find("a"), memo.find("b"), len(memo)) == (1, 2, 2)
    memo.put("c", 3)
    assert (memo.find("a"), memo.find("c"), len(memo)) == (None, 3, 1)


def test_identity_memo_matches_identity_not_equality() -> None:
    memo: IdentityMemo[str] = IdentityMemo()
    a, twin = [1, 2], [1, 2]
    memo.store("k", (a,), "for a")
    assert memo.lookup("k", (a,)) == "for a"
    assert memo.lookup("k", (twin,)) is None  # equal but another object
    assert memo.lookup("other", (a,)) is None  # same object, another plain key


def test_identity_memo_keeps_its_objects_alive() -> None:
    """An id() is only unique while its object lives: the memo holds the objects, so a new
    object can never take a stored one's id and get its result."""
    memo: IdentityMemo[int] = IdentityMemo()
    for i in range(200):
        memo.store("k", (object(),), i)
    fresh = [object() for _ in range(200)]
    assert all(memo.lookup("k", (o,)) is None for o in fresh)


def test_identity_memo_is_bounded() -> None:
    memo: IdentityMemo[int] = IdentityMemo(max_entries=3)
    objs = [object() for _ in range(4)]
    for i, o in enumerate(objs):
        memo.store("k", (o,), i)
    assert len(memo) == 1 and memo.lookup("k", (objs[3],)) == 3


def test_policy_tables_are_shared_between_nodes_and_equal_a_fresh_parse() -> None:
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    text = read("apt-cache-policy-installed")
    first = apt.parse_policy_packages(text, releases)
    second = apt.parse_policy_packages(text, apt.parse_policy_releases(read("apt-cache-policy")))
    assert len(first) > 700
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert first == apt._parse_tables(text, releases)


def test_policy_tables_follow_the_releases() -> None:
    """The same table under other releases (here: no security pocket) parses anew."""
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    text = read("apt-cache-policy-installed")
    plain = {k: dataclasses.replace(v, security=False) for k, v in releases.items()}
    with_security = apt.parse_policy_packages(text, releases)
    without = apt.parse_policy_packages(text, plain)
    assert any(v.security for c in with_security for v in c.versions)
    assert not any(v.security for c in without for v in c.versions)


def test_a_damaged_table_is_reported_at_its_line_even_after_the_memo_is_warm() -> None:
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    text = read("apt-cache-policy-installed")
    apt.parse_policy_packages(text, releases)
    lines = text.splitlines()
    lines[301] = "  Candidate is not a field"
    with pytest.raises(ParseError) as err:
        apt.parse_policy_packages("\n".join(lines) + "\n", releases)
    assert "line 302" in str(err.value)


def test_show_stanzas_and_dpkg_lines_equal_a_fresh_parse() -> None:
    show = read("apt-cache-show")
    assert apt.parse_apt_show(show) == apt._parse_stanzas(show)
    assert apt.parse_apt_show(show) == apt._parse_stanzas(show)
    query = read("dpkg-query")
    first, second = dpkg.parse_dpkg_query(query), dpkg.parse_dpkg_query(query)
    assert all(a is b for a, b in zip(first, second, strict=True))
    broken = query.replace("\tinstalled\t", "\tbroken\t", 1)
    with pytest.raises(ParseError, match="unknown package status 'broken'"):
        dpkg.parse_dpkg_query(broken)


def _host_facts(reboot: RebootState | None = None, product: str = "Debian12") -> NodeFacts:
    releases = apt.parse_policy_releases(read("apt-cache-policy"))
    return NodeFacts(
        node_id="n", host="h", os=dataclasses.replace(C.DEBIAN12, product=product),
        installed=dpkg.parse_dpkg_query(read("dpkg-query")),
        candidates=apt.parse_policy_packages(read("apt-cache-policy-installed"), releases),
        planned=(), reboot=reboot or RebootState(boot_id="b", required=False, packages=()),
        refresh=C.facts([], []).refresh, collected_at=C.NOW)


def test_reused_records_change_with_what_differs_between_nodes() -> None:
    baseline = parse_baseline({
        "name": "memo-test", "operating_system": "DEBIAN", "os_reboot_signals": True,
        "approval_rules": [{"patch_filters": [{"key": "PRODUCT", "values": ["Debian12"]}],
                            "enable_non_security": True}]}, "test")
    plain = evaluate_apt(_host_facts(), baseline, C.NOW)
    again = evaluate_apt(_host_facts(), baseline, C.NOW)
    assert plain == again
    missing = [r for r in plain if r.state is PatchState.MISSING]
    current = next(r for r in plain if r.state is PatchState.INSTALLED)
    assert missing

    rebooting = evaluate_apt(_host_facts(RebootState(boot_id="b", required=True,
                                                     packages=(current.package,))),
                             baseline, C.NOW)
    assert {r.package: r.state for r in rebooting}[current.package] is (
        PatchState.INSTALLED_PENDING_REBOOT)

    other_product = evaluate_apt(_host_facts(product="Debian11"), baseline, C.NOW)
    assert not any(r.state is PatchState.MISSING for r in other_product)

    no_rules = parse_baseline({"name": "memo-test", "operating_system": "DEBIAN"}, "test")
    assert not any(r.state is PatchState.MISSING
                   for r in evaluate_apt(_host_facts(), no_rules, C.NOW))
