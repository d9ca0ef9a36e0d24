"""deployments/prefect.yaml end to end: a real `prefect server start` (SQLite in a temporary
PREFECT_HOME), the `patchfleet` process work pool, `prefect deploy --all`, a real
`prefect worker start` that runs `patch-nodes/patch-now` against deb-a over SSH, and the
host-management schedule read back from the Prefect API.

The deployments' default inventory (``PATCHFLEET_INVENTORY`` at deploy time) is a path that does
not exist, so a scheduled run that comes due while the worker is up (01:00 UTC daily, Sunday
02:00 UTC install) fails on the missing inventory instead of touching the shared test nodes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect_server import free_port as _free_port
from prefect_server import isolated_env, start_server
from prefect_server import stop as _stop
from prefect_server import tail as _tail

from patchfleet.store.query import ComplianceStore

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
PATCHFLEET = str(Path(sys.executable).parent / "patchfleet")
PREFECT_YAML = REPO / "deployments" / "prefect.yaml"

pytestmark = pytest.mark.prefect


@dataclass
class Deployed:
    api_url: str
    env: dict[str, str]
    default_inventory: str
    worker_log: Path
    timings: dict[str, float]


def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("prefect-deploy-home")
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = isolated_env(home, api_url)  # nothing from an outer harness or profile leaks in
    default_inventory = str(home / "no-inventory.yaml")
    env["PATCHFLEET_INVENTORY"] = default_inventory
    timings: dict[str, float] = {}
    worker_log = home / "worker.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.monotonic()
        start_server(home, env, port, procs)
        timings["server_start"] = time.monotonic() - t0

        r = _cli(["work-pool", "create", "patchfleet", "--type", "process"], env, 120)
        assert r.returncode == 0, r.stdout + r.stderr
        t0 = time.monotonic()
        r = _cli(["--no-prompt", "deploy", "--prefect-file", str(PREFECT_YAML), "--all"],
                 env, 300)
        assert r.returncode == 0, r.stdout + r.stderr
        timings["deploy"] = time.monotonic() - t0

        with open(worker_log, "wb") as log:
            procs.append(subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", "patchfleet"], env=env, cwd=REPO,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        yield Deployed(api_url, env, default_inventory, worker_log, timings)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        print(f"deployment timings: {timings}")


async def _with_client(api_url: str, fn: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            return await fn(client)


def test_patch_now_runs_on_the_worker_into_store_and_artifact(
    deployed: Deployed, fleet: Any, tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        DeploymentFilter,
        DeploymentFilterId,
    )

    store = tmp_path / "store"
    t0 = time.monotonic()
    r = _cli(["deployment", "run", "patch-nodes/patch-now", "-p", "operation=Scan",
              "-p", "targets=deb-a", "-p", f"inventory={fleet.inventory}",
              "-p", f"store={store}", "--watch", "--watch-interval", "1",
              "--watch-timeout", "180"], deployed.env, 240)
    deployed.timings["run_to_completion"] = time.monotonic() - t0
    assert r.returncode == 0, (r.stdout + r.stderr
                               + f"\n--- worker log ---\n{_tail(deployed.worker_log)}")
    assert "Completed" in r.stdout + r.stderr

    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT node_id, status FROM node_summaries ORDER BY node_id")
    # other tests may have patched deb-a earlier in the session: only a scan result is required
    assert len(rows) == 1 and rows[0][0] == "deb-a", rows
    assert rows[0][1] in {"COMPLIANT", "NON_COMPLIANT"}, rows

    async def read(client: Any) -> tuple[Any, Any, list[Any]]:
        dep = await client.read_deployment_by_name("patch-nodes/patch-now")
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
        mine = [fr for fr in runs if fr.parameters.get("store") == str(store)]
        assert len(mine) == 1, runs
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
                any_=[mine[0].id])))
        return dep, mine[0], arts

    dep, run, arts = asyncio.run(_with_client(deployed.api_url, read))
    assert run.state is not None and run.state.is_completed()
    assert run.parameters["targets"] == "deb-a"
    # the deployment's defaults, filled in from the environment by `prefect deploy`
    assert dep.parameters == {"operation": "Scan", "targets": "*",
                              "inventory": deployed.default_inventory}
    assert "patchfleet" in dep.tags
    table = {a.key: a for a in arts}["patch-nodes"]
    assert table.type == "table"
    data = table.data
    rows_art = json.loads(data) if isinstance(data, str) else data
    assert [row["node_id"] for row in rows_art] == ["deb-a"]


def test_what_if_runs_on_the_worker_and_is_saved_apart(
    deployed: Deployed, fleet: Any, tmp_path: Path
) -> None:
    """`evaluate-baseline/what-if` judges the stored facts of a scan on a worker: the what-if
    run is stored flagged, and the latest-state views still show the scan."""
    import asyncio as aio

    from patchfleet.domain.records import Operation
    from patchfleet.domain.results import RunContext
    from patchfleet.ops.plan import plan_scan
    from patchfleet.ops.scan import scan_nodes
    from patchfleet.store.writer import write_run
    from patchfleet.transport.connector import SSHConnector

    store = tmp_path / "store"
    plan = plan_scan(inventory=str(fleet.inventory), targets="deb-a", store=str(store))
    with SSHConnector() as connector:
        results = aio.run(scan_nodes(plan.nodes, plan.registry, plan.options, connector))
    write_run(store, RunContext(run_id="scan-for-what-if", operation=Operation.SCAN,
                                started_at=datetime.now(UTC)), results)
    r = _cli(["deployment", "run", "evaluate-baseline/what-if",
              "-p", "baseline=example-debian-all-updates", "-p", f"store={store}",
              "--watch", "--watch-interval", "1", "--watch-timeout", "180"], deployed.env, 240)
    assert r.returncode == 0 and "Completed" in r.stdout + r.stderr, (
        r.stdout + r.stderr + f"\n--- worker log ---\n{_tail(deployed.worker_log)}")
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT what_if, facts_run_id, baseline_id FROM node_summaries "
                           "ORDER BY what_if")
        _, latest = cs.query("SELECT run_id FROM latest_node_summaries")
    assert rows == [(False, "scan-for-what-if", "AWS-DebianDefaultPatchBaseline"),
                    (True, "scan-for-what-if", "example-debian-all-updates")]
    assert latest == [("scan-for-what-if",)]


def test_a_bad_operation_is_refused_when_the_run_is_created(deployed: Deployed) -> None:
    """The deployments enforce the flow's parameter schema: a typo never reaches a worker."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    r = _cli(["deployment", "run", "patch-nodes/patch-now", "-p", "operation=Instal",
              "-p", "targets=deb-a"], deployed.env, 120)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "Instal" in out and "is not one of" in out, out

    async def runs(client: Any) -> list[Any]:
        dep = await client.read_deployment_by_name("patch-nodes/patch-now")
        return list(await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))))

    created = asyncio.run(_with_client(deployed.api_url, runs))
    assert not [fr for fr in created if fr.parameters.get("operation") == "Instal"]


def test_host_management_is_scheduled_daily_at_0100_utc(deployed: Deployed) -> None:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async def read(client: Any) -> tuple[Any, list[Any]]:
        dep = await client.read_deployment_by_name("patch-nodes/host-management")
        runs: list[Any] = []
        deadline = time.monotonic() + 90  # the server's scheduler fills in upcoming runs
        while not runs and time.monotonic() < deadline:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
            if not runs:
                await asyncio.sleep(1)
        return dep, runs

    dep, runs = asyncio.run(_with_client(deployed.api_url, read))
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules] == [
        ("0 1 * * *", "UTC", True)]
    assert dep.parameters["operation"] == "Scan"
    assert {"patchfleet", "policy/host-management"} <= set(dep.tags)
    assert dep.global_concurrency_limit is not None
    assert dep.global_concurrency_limit.limit == 1
    assert runs, "no upcoming scheduled runs of host-management"
    starts = sorted(fr.expected_start_time.astimezone(UTC) for fr in runs)
    now = datetime.now(UTC)
    nxt = starts[0]
    assert (nxt.hour, nxt.minute, nxt.second) == (1, 0, 0)
    assert now - timedelta(minutes=5) < nxt <= now + timedelta(days=1)
    assert all((s.hour, s.minute) == (1, 0) for s in starts)


def test_every_deployment_is_tagged_and_limited_to_one_run(deployed: Deployed) -> None:
    async def read(client: Any) -> list[Any]:
        return list(await client.read_deployments())

    deps = {d.name: d for d in asyncio.run(_with_client(deployed.api_url, read))
            if "patchfleet-generated" not in d.tags}
    assert set(deps) == {"patch-now", "host-management", "weekly-install", "run-policy",
                         "run-window", "shard", "what-if"}
    shard = deps.pop("shard")  # a sharded scan's shards run at once, on every worker
    assert shard.global_concurrency_limit is None and not shard.schedules
    assert shard.tags == ["patchfleet", "shard"] and shard.work_pool_name == "patchfleet"
    what_if = deps.pop("what-if")  # reads the store only: no reason to queue it
    assert what_if.global_concurrency_limit is None and not what_if.schedules
    assert what_if.tags == ["patchfleet", "what-if"] and what_if.parameters == {"save": True}
    for dep in deps.values():
        assert "patchfleet" in dep.tags and len(dep.tags) == 2, (dep.name, dep.tags)
        assert dep.global_concurrency_limit is not None
        assert dep.global_concurrency_limit.limit == 1, dep.name
        assert dep.work_pool_name == "patchfleet"
    weekly = deps["weekly-install"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in weekly.schedules] == [
        ("0 2 * * 0", "UTC")]
    assert weekly.parameters["operation"] == "Install"
    assert weekly.parameters["max_concurrency"] == "10%"
    assert weekly.parameters["max_errors"] == "1"
    assert not deps["patch-now"].schedules


def _apply(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PATCHFLEET, "deployments", "apply", *args, "--repo", str(REPO)],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=180,
                          check=False)


def _policies(tmp_path: Path, inventory: Path, store: Path, windows: bool = True) -> Path:
    data: dict[str, Any] = {"policies": [{
        "name": "it-policy", "operation": "Scan", "scan_schedule": "cron(30 4 1 * ? *)",
        "inventory": str(inventory), "targets": "deb-a", "store": str(store),
    }]}
    if windows:
        window = {"schedule": "cron(0 3 ? * TUE#2 *)", "schedule_timezone": "Europe/Berlin",
                  "duration_hours": 2, "inventory": str(inventory), "targets": "deb-a",
                  "store": str(store), "tasks": [{"name": "scan", "priority": 0}]}
        data["windows"] = [{"name": "it-window", **window},
                           {"name": "it-offset", "schedule_offset": 2, **window}]
    path = tmp_path / ("policies.yaml" if windows else "policies-pruned.yaml")
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


async def _scheduled_starts(client: Any, name: str, at_least: int,
                            until: datetime | None = None) -> list[datetime]:
    """Upcoming scheduled runs of deployment ``name``, as the server's scheduler made them;
    with ``until``, first ask the server to schedule every run up to that time."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    dep = await client.read_deployment_by_name(name)
    if until is not None:
        start = datetime.now(UTC)
        r = await client._client.post(f"/deployments/{dep.id}/schedule", json={
            "start_time": start.isoformat(), "end_time": until.isoformat(),
            "min_time": (until - start).total_seconds(), "max_runs": 100})
        r.raise_for_status()
    runs: list[Any] = []
    deadline = time.monotonic() + 90
    while len(runs) < at_least and time.monotonic() < deadline:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))), limit=200)
        if len(runs) < at_least:
            await asyncio.sleep(1)
    return sorted(fr.expected_start_time.astimezone(UTC) for fr in runs)


def test_apply_generates_one_scheduled_deployment_per_policy_and_window(
    deployed: Deployed, fleet: Any, tmp_path: Path
) -> None:
    from patchfleet.config.policies import load_deployments
    from patchfleet.domain.windows import next_runs

    store = tmp_path / "store"
    policies = _policies(tmp_path, fleet.inventory, store)
    r = _apply([str(policies), "--yes"], deployed.env)  # --yes: NextInterval false runs now
    assert r.returncode == 0, r.stdout + r.stderr
    assert "created: patch-policy/it-policy-scan, maintenance-window/it-window, " \
           "maintenance-window/it-offset" in r.stdout, r.stdout
    started = [line for line in r.stdout.splitlines() if line.startswith("started ")]
    assert len(started) == 1 and "patch-policy/it-policy-scan" in started[0], r.stdout
    run_id = started[0].rsplit(" ", 1)[1]

    async def wait_run(client: Any) -> Any:
        deadline = time.monotonic() + 240
        while True:
            run = await client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"policy run still {run.state}:\n{_tail(deployed.worker_log)}")
            await asyncio.sleep(1)

    run = asyncio.run(_with_client(deployed.api_url, wait_run))
    assert run.state.is_completed(), (run.state, _tail(deployed.worker_log))
    assert "policy/it-policy" in run.tags
    assert run.name == "it-policy-scan"
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT DISTINCT node_id, execution_type FROM node_summaries")
    assert rows == [("deb-a", "PATCH_POLICY")], rows

    windows = {w.name: w.window for w in load_deployments(policies).windows}
    now = datetime.now(UTC)
    offset_first = next_runs(windows["it-offset"], now, 1)[0]

    async def read(client: Any) -> dict[str, Any]:
        return {
            "policy": await client.read_deployment_by_name("patch-policy/it-policy-scan"),
            "window": await client.read_deployment_by_name("maintenance-window/it-window"),
            "window_runs": await _scheduled_starts(client, "maintenance-window/it-window", 3),
            "offset_runs": await _scheduled_starts(client, "maintenance-window/it-offset", 3,
                                                   until=offset_first + timedelta(hours=1)),
        }

    got = asyncio.run(_with_client(deployed.api_url, read))
    policy, window = got["policy"], got["window"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in policy.schedules] == [
        ("30 4 1 * *", "UTC")]
    assert {"patchfleet", "patchfleet-generated", "policy/it-policy"} == set(policy.tags)
    assert policy.parameters == {"policy": "it-policy", "operation": "Scan",
                                 "file": str(policies)}
    assert policy.global_concurrency_limit.limit == 1
    assert [(s.schedule.cron, s.schedule.timezone) for s in window.schedules] == [
        ("0 3 * * 2#2", "Europe/Berlin")]
    assert set(window.tags) == {"patchfleet", "patchfleet-generated", "window/it-window"}
    # Prefect's own scheduler agrees with patchfleet's window arithmetic
    assert got["window_runs"][:3] == next_runs(windows["it-window"], now, 3)
    # Patch Tuesday + 2 has no Prefect cron: it fires daily and the flow skips other days
    assert offset_first in got["offset_runs"]
    assert all((t.astimezone(windows["it-offset"].tz).hour, t.minute) == (3, 0)
               for t in got["offset_runs"])


def test_apply_refuses_a_bad_file_and_prunes_what_the_file_dropped(
    deployed: Deployed, fleet: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    policies = _policies(tmp_path, fleet.inventory, store)
    r = _apply([str(policies)], deployed.env)
    assert r.returncode == 0, r.stdout + r.stderr

    bad = tmp_path / "bad.yaml"
    data = json.loads(policies.read_text())
    data["windows"][0]["cutoff_hours"] = 2
    data["windows"][0]["name"] = "it-bad-window"
    bad.write_text(json.dumps(data))
    r = _apply([str(bad)], deployed.env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "windows[0]" in r.stderr and "cutoff_hours (2) must be less than" in r.stderr

    r = _apply([str(policies), "--pool", "no-such-pool"], deployed.env)
    assert r.returncode == 1
    assert "work pool 'no-such-pool' does not exist; create it" in r.stderr

    pruned = _policies(tmp_path, fleet.inventory, store, windows=False)
    r = _apply([str(pruned), "--prune"], deployed.env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deleted: maintenance-window/it-offset, maintenance-window/it-window" in r.stdout

    async def names(client: Any) -> set[str]:
        return {d.name for d in await client.read_deployments()}

    left = asyncio.run(_with_client(deployed.api_url, names))
    assert "it-bad-window" not in left and "it-window" not in left
    assert {"it-policy-scan", "patch-now", "host-management"} <= left
