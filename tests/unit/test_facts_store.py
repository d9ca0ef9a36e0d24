"""package_facts (schema v2): every fact a scan saw is stored and comes back exactly.

Facts come from real captures (tests/golden: a Debian host, Rocky 9, Amazon Linux 2023, SLES
15, Leap 15) scanned through the replay transport, written by the store writer and read back
with :func:`patchfleet.store.facts_reader.load_facts`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.evaluate import evaluate
from patchfleet.domain.inventory import Inventory, Node
from patchfleet.domain.records import Operation
from patchfleet.domain.results import NodeResult, RunContext
from patchfleet.errors import ConfigError
from patchfleet.ops.scan import ScanOptions, scan_nodes
from patchfleet.store.facts_reader import load_facts, verdict_changes
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import write_run
from patchfleet.transport import ReplayConnector

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OLD_STORE = Path(__file__).resolve().parents[1] / "cases" / "store" / "v1" / "initial"
REGISTRY = load_baselines(embedded_baselines_dir())
T0 = datetime(2025, 7, 15, 9, 0, tzinfo=UTC)
CASES = [("apt", "debian12-host"), ("apt", "debian12-reboot-pending"), ("dnf", "rocky9-fresh"),
         ("dnf", "al2023-fresh"), ("zypper", "sles15-fresh"), ("zypper", "leap15-fresh")]


def scan(case: tuple[str, str], count: int = 2, tags: dict[str, str] | None = None
         ) -> list[NodeResult]:
    nodes = Inventory(nodes=[Node(id=f"{case[1]}-{i}", tags=tags or {"Env": "test"})
                             for i in range(count)]).resolved()
    connector = ReplayConnector.fleet(GOLDEN / case[0] / case[1])
    return asyncio.run(scan_nodes(nodes, REGISTRY, ScanOptions(concurrency=2, now=T0),
                                  connector))


def ctx(run_id: str = "run-facts") -> RunContext:
    return RunContext(run_id=run_id, operation=Operation.SCAN, started_at=T0,
                      inventory_source="/etc/patchfleet/inventory.yaml")


@pytest.mark.parametrize("case", CASES, ids=[c[1] for c in CASES])
def test_facts_come_back_exactly(tmp_path: Path, case: tuple[str, str]) -> None:
    results = scan(case)
    assert all(r.facts is not None and not r.failed for r in results)
    written = write_run(tmp_path, ctx(), results)
    assert written.rows["fact_lists"] == len(results)
    # two nodes of one image: each distinct element is stored once
    one = results[0].facts
    assert one is not None
    assert 0 < written.rows["fact_elements"] <= sum(map(len, (
        one.installed, one.candidates, one.updates, one.advisories, one.planned)))
    with ComplianceStore(tmp_path) as store:
        loaded = load_facts(store, "run-facts")
    assert [n.summary["node_id"] for n in loaded] == [r.node_id for r in results]
    for stored, result in zip(loaded, results, strict=True):
        assert stored.facts == result.facts
        assert stored.run_id == "run-facts"


def test_nodes_of_one_image_share_their_rebuilt_objects(tmp_path: Path) -> None:
    results = scan(("dnf", "rocky9-fresh"), count=3)
    write_run(tmp_path, ctx(), results)
    with ComplianceStore(tmp_path) as store:
        a, b, c = (n.facts for n in load_facts(store, "run-facts"))
    assert a.installed and a.installed[0] is b.installed[0] is c.installed[0]
    assert a.advisories and a.advisories[-1] is c.advisories[-1]


@pytest.mark.parametrize("case", CASES, ids=[c[1] for c in CASES])
def test_rebuilt_facts_judge_like_the_scan(tmp_path: Path, case: tuple[str, str]) -> None:
    results = scan(case, count=1)
    write_run(tmp_path, ctx(), results)
    with ComplianceStore(tmp_path) as store:
        (stored,) = load_facts(store, "run-facts")
        same = verdict_changes(store, results, {results[0].node_id: "run-facts"})
        none = verdict_changes(store, results, {})
    assert results[0].facts is not None
    baseline = REGISTRY.select(results[0].facts.os.operating_system, None, {})
    assert evaluate(stored.facts, baseline, T0) == results[0].records
    assert same == []
    assert none == sorted((results[0].node_id, r.package, r.arch, None, r.state.value)
                          for r in results[0].records)


def test_node_summaries_say_os_tags_source_and_baseline(tmp_path: Path) -> None:
    results = scan(("apt", "debian12-host"), count=1, tags={"Env": "prod", "PatchGroup": "web"})
    write_run(tmp_path, ctx(), results)
    with ComplianceStore(tmp_path) as store:
        _, rows = store.query(
            "SELECT operating_system, tags['Env'], tags['PatchGroup'], inventory_source, "
            "baseline_id, length(baseline_hash), what_if, facts_run_id, product, "
            "package_manager, collected_at FROM node_summaries")
    assert rows == [("DEBIAN", "prod", "web", "/etc/patchfleet/inventory.yaml",
                     "AWS-DebianDefaultPatchBaseline", 16, False, "run-facts", "Debian12", "apt",
                     results[0].facts.collected_at if results[0].facts else None)]


def test_baseline_hash_changes_with_the_baseline_not_the_name() -> None:
    from patchfleet.domain.baseline import baseline_hash

    b = REGISTRY.get("AWS-DebianDefaultPatchBaseline")
    changed = b.model_copy(update={"approved_patches": ("openssl",)})
    assert baseline_hash(b) == baseline_hash(b.model_copy())
    assert baseline_hash(changed) != baseline_hash(b)


def test_latest_facts_per_node_skip_failed_and_what_if_runs(tmp_path: Path) -> None:
    first = scan(("apt", "debian12-host"), count=2)
    write_run(tmp_path, ctx("run-1"), first)
    later = scan(("dnf", "rocky9-fresh"), count=1)
    write_run(tmp_path, RunContext(run_id="run-2", operation=Operation.SCAN,
                                   started_at=T0.replace(hour=10)), later)
    with ComplianceStore(tmp_path) as store:
        latest = load_facts(store)
        only = load_facts(store, nodes={"debian12-host-1"})
    assert [(n.summary["node_id"], n.run_id) for n in latest] == [
        ("debian12-host-0", "run-1"), ("debian12-host-1", "run-1"), ("rocky9-fresh-0", "run-2")]
    assert [n.summary["node_id"] for n in only] == ["debian12-host-1"]


def test_a_run_without_facts_says_why(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "store"
    shutil.copytree(OLD_STORE, root)
    with ComplianceStore(root) as store:
        with pytest.raises(ConfigError, match=r"no stored facts.*before schema v2"):
            load_facts(store, "v1-initial-scan")
        with pytest.raises(ConfigError, match="not in the compliance store"):
            load_facts(store, "run-nope")
        assert load_facts(store) == []  # v1 nodes have no facts to judge


def test_first_sightings_come_from_every_offered_version(tmp_path: Path) -> None:
    """The security version below apt's candidate and notice versions below the newest are
    sightings too, not only the version a verdict named."""
    results = scan(("apt", "debian12-host"), count=1) + scan(("dnf", "rocky9-fresh"), count=1)
    write_run(tmp_path, ctx(), results)
    with ComplianceStore(tmp_path) as store:
        seen = {(p, v) for _, p, v, _ in store.first_sightings()}
        _, offers = store.query("SELECT source, package, version FROM package_offers")
        _, named = store.query("SELECT package, available_version FROM patch_states "
                               "WHERE available_version IS NOT NULL")
    assert {(p, v) for p, v in named} <= seen
    assert {(p, v) for _, p, v in offers} <= seen
    assert {s for s, _, _ in offers} == {"apt", "update", "notice"}
    assert len(seen) > len(named)


def test_what_if_counts_the_nodes_it_cannot_judge(tmp_path: Path) -> None:
    """A node whose latest result is a FAILED scan (no facts) is not judged, and says so."""
    from patchfleet.ops.plan import load_override, load_registry
    from patchfleet.ops.scan import failed_result
    from patchfleet.ops.what_if import evaluate_stored
    from patchfleet.store.location import StoreLocation

    results = scan(("apt", "debian12-host"), count=2)
    gone = Inventory(nodes=[Node(id="gone")]).resolved()[0]
    write_run(tmp_path, ctx(), [*results, failed_result(gone, T0, "UNREACHABLE: refused")])
    outcome = evaluate_stored(StoreLocation.resolve(str(tmp_path)),
                              load_override("example-debian-all-updates", load_registry(None)),
                              at=T0)
    assert (len(outcome.results), outcome.without_facts) == (2, 1)
    assert outcome.patch_flips and not outcome.node_flips  # all-updates: still non-compliant
