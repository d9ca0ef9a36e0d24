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
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patchfleet.store.query import ComplianceStore

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
PREFECT_YAML = REPO / "deployments" / "prefect.yaml"

pytestmark = pytest.mark.prefect


@dataclass
class Deployed:
    api_url: str
    env: dict[str, str]
    default_inventory: str
    worker_log: Path
    timings: dict[str, float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 60) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first (a Prefect worker ignores SIGTERM), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):  # leftovers of the group (flow run children)
        os.killpg(proc.pid, signal.SIGKILL)


def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("prefect-deploy-home")
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    for key in list(env):  # nothing from an outer harness or profile may leak in
        if key.startswith("PREFECT_"):
            del env[key]
    default_inventory = str(home / "no-inventory.yaml")
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PATCHFLEET_REPO": str(REPO),
        "PATCHFLEET_INVENTORY": default_inventory,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    })
    timings: dict[str, float] = {}
    server_log = home / "server.log"
    worker_log = home / "worker.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.monotonic()
        with open(server_log, "wb") as log:
            procs.append(subprocess.Popen(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        deadline = t0 + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{api_url}/health", timeout=2) as r:
                if r.status == 200:
                    break
            if procs[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not come up:\n{_tail(server_log)}",
                            pytrace=False)
            time.sleep(0.5)
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

    deps = {d.name: d for d in asyncio.run(_with_client(deployed.api_url, read))}
    assert set(deps) == {"patch-now", "host-management", "weekly-install", "run-policy",
                         "run-window"}
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
