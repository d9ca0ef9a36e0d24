"""Scan-and-install orchestration on real Debian test nodes: reboot options across runs,
lifecycle hooks, and rate control stopping a rollout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from patchfleet.config.hooks import load_hooks
from patchfleet.domain.records import NodeStatus, Operation, PatchState
from patchfleet.domain.results import RunContext
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.rollout import InstallOptions, RolloutNodeResult, run_rollout
from patchfleet.store.writer import write_run
from patchfleet.transport.connector import SSHConnector

P = PatchState.INSTALLED_PENDING_REBOOT
APPROVED = {"libfakessl3", "fake-sudo", "fake-curl", "fake-extra", "linux-image-fake"}


def run(fleet: Any, store: Path, targets: str, options: InstallOptions, *,
        inventory: Path | None = None, max_concurrency: int = 5,
        max_errors: int = 5) -> list[RolloutNodeResult]:
    plan = plan_scan(inventory=str(inventory or fleet.inventory), targets=targets,
                     store=str(store), lock_timeout=10)
    with SSHConnector() as connector:
        results = asyncio.run(run_rollout(plan.nodes, plan.registry, plan.options, options,
                                          connector, max_concurrency=max_concurrency,
                                          max_errors=max_errors))
    ctx = RunContext(run_id=f"run-{datetime.now(UTC):%H%M%S%f}", operation=Operation.INSTALL,
                     started_at=datetime.now(UTC), reboot_option=options.reboot_option)
    write_run(store, ctx, [r.result for r in results])
    return results


def versions(fleet: Any, node: str) -> dict[str, str]:
    out = fleet.ssh(node, "dpkg-query -W -f '${Package} ${Version}\\n'", check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def boot_id(fleet: Any, node: str) -> str:
    return str(fleet.ssh(node, "cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip())


def test_no_reboot_then_reboot_if_needed(clean: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    boot0 = boot_id(clean, "deb-a")
    (first,) = run(clean, store, "deb-a", InstallOptions(reboot_option="NoReboot"))
    assert not first.rebooted and boot_id(clean, "deb-a") == boot0
    states = {r.package: r.state for r in first.result.records}
    assert {k for k, v in states.items() if v is P} >= APPROVED
    assert first.result.summary.status is NodeStatus.NON_COMPLIANT
    assert first.result.last_no_reboot_install_operation_time is not None
    v = versions(clean, "deb-a")
    assert {k: v[k] for k in APPROVED} == dict.fromkeys(APPROVED, "1.1")

    # a later scan on the same boot still reports them pending (from the store)
    plan = plan_scan(inventory=str(clean.inventory), targets="deb-a", store=str(store))
    from patchfleet.ops.scan import scan_nodes

    with SSHConnector() as connector:
        (scan,) = asyncio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    assert {r.package for r in scan.records if r.state is P} >= APPROVED

    (second,) = run(clean, store, "deb-a", InstallOptions(reboot_option="RebootIfNeeded"))
    assert second.rebooted, second.reboot_reason
    assert "INSTALLED_PENDING_REBOOT" in second.reboot_reason
    assert boot_id(clean, "deb-a") != boot0
    assert second.result.summary.installed_pending_reboot_count == 0
    missing = {r.package for r in second.result.records if r.state is PatchState.MISSING}
    assert missing == {"fake-held"}  # held by the operator: never lifted by patchfleet


def test_failing_pre_install_hook_skips_install_and_runs_on_exit(clean: Any,
                                                                 tmp_path: Path) -> None:
    before = versions(clean, "deb-b")
    hooks = load_hooks({
        "pre_install": {"command": "echo not today >&2; exit 3"},
        "on_exit": {"command": 'echo "$PATCHFLEET_RUN_ID" > /root/on-exit-ran'},
    }, source="test")
    (res,) = run(clean, tmp_path / "store", "deb-b",
                 InstallOptions(hooks=hooks, run_id="run-42"))
    assert res.result.failure_reason and res.result.failure_reason.startswith(
        "PRE_INSTALL_HOOK")
    assert [h.phase for h in res.hooks] == ["pre_install", "on_exit"]
    assert versions(clean, "deb-b") == before
    assert clean.ssh("deb-b", "cat /root/on-exit-ran", check=True).stdout.strip() == "run-42"
    assert not res.ok


def test_error_threshold_stops_the_rollout(clean: Any, tmp_path: Path) -> None:
    inv = yaml.safe_load(clean.inventory.read_text())
    inv["nodes"].insert(0, {"id": "ghost", "host": "127.0.0.1", "port": 1})
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    before = versions(clean, "deb-a")
    results = run(clean, tmp_path / "store", "ghost,deb-a,deb-b", InstallOptions(),
                  inventory=path, max_concurrency=1, max_errors=0)
    reasons = {r.result.node_id: r.result.failure_reason or "" for r in results}
    assert reasons["ghost"].startswith("UNREACHABLE")
    assert reasons["deb-a"].startswith("NOT_ATTEMPTED")
    assert reasons["deb-b"].startswith("NOT_ATTEMPTED")
    assert versions(clean, "deb-a") == before


def test_dry_run_changes_nothing_and_prints_the_plan(clean: Any, tmp_path: Path) -> None:
    before = versions(clean, "deb-c")
    (res,) = run(clean, tmp_path / "store", "deb-c", InstallOptions(dry_run=True))
    assert versions(clean, "deb-c") == before
    text = "\n".join(res.plan)
    for name in APPROVED | {"fake-held"}:
        assert name in text


def test_install_override_list_installs_exactly_that_list(clean: Any, tmp_path: Path) -> None:
    from patchfleet.config.overrides import load_install_override

    override = tmp_path / "override.yaml"
    override.write_text("patches:\n  - id: 'fake-editor*'\n    title: '*:1.1'\n"
                        "    note: extra fields are ignored\n")
    before = versions(clean, "deb-b")
    (res,) = run(clean, tmp_path / "store", "deb-b",
                 InstallOptions(override=load_install_override(override),
                                reboot_option="NoReboot"))
    after = versions(clean, "deb-b")
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"fake-editor"} and after["fake-editor"] == "1.1"
    states = {r.package: r.state for r in res.result.records}
    # scans still report against the baseline: the security updates are still missing
    assert {k for k, v in states.items() if v is PatchState.MISSING} >= APPROVED


def test_reboot_if_required_reboots_only_when_the_os_says_so(clean: Any,
                                                             tmp_path: Path) -> None:
    from patchfleet.config.overrides import parse_install_override_text

    boot0 = boot_id(clean, "deb-c")
    editor_only = parse_install_override_text("patches:\n  - id: fake-editor\n", "test")
    (quiet,) = run(clean, tmp_path / "s1", "deb-c",
                   InstallOptions(override=editor_only, reboot_option="RebootIfRequired"))
    assert not quiet.rebooted and "no reboot is required" in quiet.reboot_reason
    assert boot_id(clean, "deb-c") == boot0

    kernel = parse_install_override_text("patches:\n  - id: linux-image-fake\n", "test")
    (loud,) = run(clean, tmp_path / "s2", "deb-c",
                  InstallOptions(override=kernel, reboot_option="RebootIfRequired"))
    assert loud.rebooted, loud.reboot_reason
    assert boot_id(clean, "deb-c") != boot0


def test_install_reports_processes_running_replaced_binaries(clean: Any, tmp_path: Path) -> None:
    """fake-daemon runs on the node; upgrading it leaves the old binary mapped (deleted)."""
    plan = plan_scan(inventory=str(clean.inventory), targets="deb-b",
                     baseline="example-debian-all-updates", store=str(tmp_path / "store"))
    with SSHConnector() as connector:
        (res,) = asyncio.run(run_rollout(plan.nodes, plan.registry, plan.options,
                                         InstallOptions(reboot_option="NoReboot"), connector,
                                         max_concurrency=1, max_errors=0))
    assert versions(clean, "deb-b")["fake-daemon"] == "1.1"
    assert any("fake-daemon" in line for line in res.result.restart_needed), (
        res.result.restart_needed)
    # the Debian base enables apt's timers; nothing that installs packages is active
    assert all(u.startswith("apt-daily") for u in res.result.auto_updaters)
    assert not any("auto-updater" in w for w in res.result.warnings)


def test_interrupted_dpkg_is_reported_with_the_fix_and_not_repaired(clean: Any,
                                                                    tmp_path: Path) -> None:
    """A pending dpkg journal entry is what an interrupted dpkg leaves; apt refuses to work
    until `dpkg --configure -a` runs. patchfleet reports it and changes nothing."""
    clean.ssh("deb-a", "touch /var/lib/dpkg/updates/0001", check=True)
    before = versions(clean, "deb-a")
    (res,) = run(clean, tmp_path / "store", "deb-a", InstallOptions())
    reason = res.result.failure_reason or ""
    assert reason.startswith("DPKG_INTERRUPTED") and "dpkg --configure -a" in reason
    assert not res.ok and res.result.summary.status is NodeStatus.NON_COMPLIANT
    failed = {r.package for r in res.result.records if r.state is PatchState.FAILED}
    assert failed >= APPROVED  # approved, and the install attempt failed
    assert versions(clean, "deb-a") == before
    assert clean.ssh("deb-a", "ls /var/lib/dpkg/updates/", check=True).stdout.split() == ["0001"]
