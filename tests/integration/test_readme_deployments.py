"""The README's Deployments walkthrough, line by line, against a real `prefect server start`
and a real `prefect worker start`: the bash block is read from README.md (so the README and
this test can't drift apart), only the port and $PWD are substituted.

Checks what issue 14 asked of it: nothing it deploys can start an Install on its own (every
installing schedule is paused, no Install flow run exists), nothing targets a host that isn't
there (every inventory it deploys holds only the `local` node), the one run it starts scans
this machine into the worker's PATCHFLEET_STORE, a deployment run with a missing inventory
fails with one line naming the *parameter* (no traceback), and one Ctrl-C stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchfleet.config.sources import load_nodes_source

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.prefect


def readme_steps() -> list[str]:
    """The first bash block of the README's Deployments section, comments stripped."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Deployments\n"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: Deployments has no bash block"
    lines = [ln.split("  #")[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_health(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"prefect server did not come up:\n{log.read_text()[-3000:]}", pytrace=False)


class Walkthrough:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update({
            "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false",
            "PATCHFLEET_STORE": str(home / "worker-store"),  # the worker's store
            "PATH": f"{BIN}{os.pathsep}{self.env.get('PATH', '')}",
            "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        })
        self.env.pop("DO_NOT_TRACK", None)  # the README's first line must set it
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def expand(self, line: str) -> str:
        return line.replace("4200", str(self.port)).replace("$PWD", str(REPO))

    def run(self, line: str) -> None:
        line = self.expand(line)
        argv = shlex.split(line.rstrip("&").strip())
        if argv[0] == "export":
            for assignment in argv[1:]:
                key, _, value = assignment.partition("=")
                self.env[key] = value
            return
        if line.endswith("&"):
            name = argv[1]  # server | worker
            log = self.home / f"{name}.log"
            with open(log, "wb") as fh:
                self.procs[name] = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=fh,
                                                    stderr=subprocess.STDOUT,
                                                    start_new_session=True)
            if name == "server":
                _wait_health(self.env["PREFECT_API_URL"], self.procs[name], log)
            return
        r = subprocess.run(argv, env=self.env, cwd=REPO, capture_output=True, text=True,
                           timeout=240, check=False)
        self.outputs[" ".join(argv[:3])] = r
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}\n{self.worker_log()}"

    def worker_log(self) -> str:
        log = self.home / "worker.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=wait)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    w = Walkthrough(tmp_path_factory.mktemp("readme-deployments"))
    try:
        for line in readme_steps():
            w.run(line)
        yield w
    finally:
        w.stop_all()


async def _client_call(api_url: str, fn: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            return await fn(client)


def test_readme_walkthrough_is_safe(walked: Walkthrough) -> None:
    assert walked.env["DO_NOT_TRACK"] == "1"
    assert walked.env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"

    apply = next(r for k, r in walked.outputs.items() if k.startswith("patchfleet deployments"))
    assert "paused (it installs); to enable its schedule: prefect deployment schedule resume " \
           "'patch-policy/web-fleet-install' " in apply.stdout
    assert "not started (NextInterval false; pass --yes to start it now): prefect deployment " \
           "run 'patch-policy/web-fleet-scan'" in apply.stdout
    assert apply.stdout.count("next runs (UTC):") == 3

    async def read(client: Any) -> tuple[list[Any], dict[str, str], list[Any]]:
        deps = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
        runs = await client.read_flow_runs(limit=200)
        return deps, flows, runs

    deps, flows, runs = asyncio.run(_client_call(walked.env["PREFECT_API_URL"], read))
    full = {d.id: f"{flows[d.flow_id]}/{d.name}" for d in deps}
    installing = set()
    for d in deps:
        name = full[d.id]
        can_install = (d.parameters.get("operation") == "Install"
                       or name.startswith("maintenance-window/patch-friday"))
        if can_install and d.schedules:
            installing.add(d.id)
            assert not any(s.active for s in d.schedules), f"{name} is scheduled, not paused"
        inventory = d.parameters.get("inventory")
        if inventory:
            assert [n.id for n in load_nodes_source(inventory).nodes] == ["local"], name
    assert {"patch-nodes/weekly-install", "patch-policy/web-fleet-install",
            "maintenance-window/patch-friday"} <= {full[i] for i in installing}
    # nothing can install: no run of an installing deployment, and the only run that ran is
    # the README's patch-now scan (of the local node)
    assert not [r for r in runs if r.deployment_id in installing]
    finished = [r for r in runs if r.state is not None and r.state.is_final()]
    assert len(finished) == 1 and full[finished[0].deployment_id] == "patch-nodes/patch-now"
    assert finished[0].state.is_completed()
    store = Path(walked.env["PATCHFLEET_STORE"])
    assert list(store.glob("node_summaries/date=*/run_id=*/part-0.parquet")), \
        "the deployment's store is the worker's PATCHFLEET_STORE"


def test_a_deployment_run_with_a_missing_inventory_names_the_parameter(
    walked: Walkthrough,
) -> None:
    r = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", "patch-nodes/patch-now",
         "-p", "inventory=/nonexistent/inventory.yaml", "--watch"],
        env=walked.env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode != 0, r.stdout
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert run_id, r.stdout

    async def logs(client: Any) -> list[str]:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        got = await client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[run_id.group(1)])))
        return [entry.message for entry in got]

    messages = asyncio.run(_client_call(walked.env["PREFECT_API_URL"], logs))
    errors = [m for m in messages if "/nonexistent/inventory.yaml" in m]
    assert errors and "deployment parameter `inventory`" in errors[0], messages
    assert not any("--inventory" in m or "Traceback" in m for m in messages), messages


    async def artifacts(client: Any) -> list[Any]:
        return list(await client.read_artifacts())

    # every artifact has a key (key-less ones make `prefect artifact ls` fail)
    assert all(a.key for a in asyncio.run(_client_call(walked.env["PREFECT_API_URL"],
                                                       artifacts)))


def test_one_ctrl_c_stops_the_worker(walked: Walkthrough) -> None:
    worker = walked.procs["worker"]
    t0 = time.monotonic()
    os.killpg(worker.pid, signal.SIGINT)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"one SIGINT did not stop the worker in 30 s:\n{walked.worker_log()}")
    print(f"worker stopped {time.monotonic() - t0:.1f}s after one SIGINT")
