"""A sharded scan end to end: a real Prefect server, the `shard` deployment of
deployments/prefect.yaml on a process work pool, two workers that take one flow run at a time,
the compliance store on a real S3 API (moto's server), and the Debian test nodes over SSH.

The parent run (started here, as `prefect deployment run` would on a worker) splits the three
nodes into two shards; each worker scans one; the parent commits one run and writes one report.
A shard whose process dies (a deployment whose command is `false`) leaves its nodes FAILED with
the shard's reason, and the parent still finishes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from prefect_server import (
    REPO,
    free_port,
    isolated_env,
    prefect_cli,
    start_server,
    start_worker,
    stop,
    tail,
)
from s3_env import SECRET

from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore

pytestmark = pytest.mark.prefect
BUCKET = "pf-shards"


@dataclass
class Pool:
    env: dict[str, str]
    home: Path
    worker_logs: list[Path]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str,
         fleet: Any) -> Iterator[Pool]:
    home = tmp_path_factory.mktemp("prefect-shards-home")
    port = free_port()
    env = isolated_env(home, f"http://127.0.0.1:{port}/api")
    env.update({
        "PATCHFLEET_INVENTORY": str(fleet.inventory),
        "AWS_ENDPOINT_URL_S3": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "XDG_DATA_HOME": str(home / "xdg"),
    })
    env.pop("AWS_PROFILE", None)
    env.pop("PATCHFLEET_STORE", None)
    boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                 aws_secret_access_key=SECRET, region_name="us-east-1").create_bucket(
                     Bucket=BUCKET)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start_server(home, env, port, procs)
        r = prefect_cli(["work-pool", "create", "patchfleet", "--type", "process"], env, 120)
        assert r.returncode == 0, r.stdout + r.stderr
        r = prefect_cli(["--no-prompt", "deploy", "--prefect-file",
                         str(REPO / "deployments" / "prefect.yaml"), "--name", "shard"],
                        env, 300)
        assert r.returncode == 0, r.stdout + r.stderr
        _run_python(env, """
            import asyncio
            from prefect.client.orchestration import get_client

            async def main():
                async with get_client() as client:
                    flow_id = await client.create_flow_from_name("patch-nodes")
                    await client.create_deployment(
                        flow_id=flow_id, name="shard-crash", work_pool_name="patchfleet",
                        entrypoint="flows/patch_nodes.py:patch_nodes", path=REPO,
                        job_variables={"command": "false"})

            asyncio.run(main())
        """)
        logs = [start_worker(home, env, "patchfleet", f"w{i}", procs, limit=1)
                for i in (1, 2)]
        yield Pool(env, home, logs)
    finally:
        for proc in reversed(procs):
            stop(proc)


def _run_python(env: dict[str, str], code: str, timeout: float = 600) -> str:
    script = f"REPO = {str(REPO)!r}\n" + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=timeout, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return r.stdout


def _sharded_scan(pool: Pool, prefix: str, **params: Any) -> dict[str, Any]:
    """Run the parent flow here (its shards go to the workers); its summary."""
    out = _run_python(pool.env, f"""
        import asyncio, json
        from flows.patch_nodes import patch_nodes
        summary = asyncio.run(patch_nodes(inventory={str(pool.env['PATCHFLEET_INVENTORY'])!r},
                              store="s3://{BUCKET}/{prefix}", shards=2, **{params!r}))
        print("SUMMARY " + json.dumps(summary.output()))
    """)
    line = next(x for x in out.splitlines() if x.startswith("SUMMARY "))
    return dict(json.loads(line.removeprefix("SUMMARY ")))


def _flow_runs(pool: Pool, deployment: str) -> list[dict[str, Any]]:
    out = _run_python(pool.env, f"""
        import asyncio, json
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        async def main():
            async with get_client() as client:
                runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=[{deployment!r}])))
                print("RUNS " + json.dumps([{{"id": str(r.id), "state": r.state_name,
                                              "parameters": r.parameters}} for r in runs]))

        asyncio.run(main())
    """)
    line = next(x for x in out.splitlines() if x.startswith("RUNS "))
    return list(json.loads(line.removeprefix("RUNS ")))


def _s3_keys(pool: Pool, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=pool.env["AWS_ENDPOINT_URL_S3"],
                      aws_access_key_id="testing", aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get(
        "Contents", [])]


def test_two_workers_each_scan_a_shard_and_the_parent_commits_one_run(
        pool: Pool, fleet: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _sharded_scan(pool, "ok")
    assert summary["node_count"] == 3 and summary["failed"] == 0, summary
    assert sorted(n["node_id"] for n in summary["nodes"]) == sorted(fleet.names)

    shards = _flow_runs(pool, "shard")
    assert len(shards) == 2 and {r["state"] for r in shards} == {"Completed"}, shards
    parent = summary["run_id"]
    assert {r["parameters"]["shard"] for r in shards} == {f"{parent}/0", f"{parent}/1"}
    # A worker that loses the race for a run logs "submitting flow run <id>" and then
    # "Aborted submission of flow run <id>": the taker names the run and never aborted it.
    def took(log: Path, run_id: str) -> bool:
        lines = [line for line in log.read_text().splitlines() if run_id in line]
        return bool(lines) and not any("bort" in line for line in lines)

    takers = {r["id"]: [log.name for log in pool.worker_logs if took(log, r["id"])]
              for r in shards}
    assert sorted(len(v) for v in takers.values()) == [1, 1], (
        takers, *(tail(log) for log in pool.worker_logs))
    assert {v[0] for v in takers.values()} == {"worker-w1.log", "worker-w2.log"}

    for key, value in pool.env.items():
        if key.startswith("AWS_") or key == "XDG_DATA_HOME":
            monkeypatch.setenv(key, value)
    store = ComplianceStore(StoreLocation.parse(f"s3://{BUCKET}/ok"))
    _, rows = store.query("SELECT node_id, run_id FROM node_summaries ORDER BY node_id")
    assert [r[0] for r in rows] == sorted(fleet.names)
    assert {r[1] for r in rows} == {parent}
    per_node = dict(store.query(
        "SELECT node_id, count(*) FROM patch_states GROUP BY node_id")[1])
    assert set(per_node) == set(fleet.names) and min(per_node.values()) > 100
    assert not _s3_keys(pool, "ok/_staging/"), "the shards' exchange is removed"
    assert [k for k in _s3_keys(pool, "ok/_commits/")] == [f"ok/_commits/run_id={parent}.json"]
    report = Path(summary["report_files"][0]).read_text()
    assert sum(1 for line in report.splitlines()[1:] if line) == 3


def test_a_shard_that_crashes_leaves_its_nodes_failed_and_the_run_finishes(
        pool: Pool, fleet: Any) -> None:
    # shard_size=2: 3 nodes make ceil(3 / 2) = 2 shards, both crashing
    summary = _sharded_scan(pool, "crash", shard_deployment="patch-nodes/shard-crash",
                            shard_timeout=600, shard_size=2)
    assert summary["node_count"] == 3 and summary["failed"] == 3, summary
    reasons = {n["node_id"]: n["failure_reason"] for n in summary["nodes"]}
    assert all(r.startswith("SHARD_FAILED: shard ") for r in reasons.values()), reasons
    assert {r.split(" (")[0] for r in reasons.values()} == {"SHARD_FAILED: shard 1",
                                                            "SHARD_FAILED: shard 2"}, reasons
    assert not _s3_keys(pool, "crash/_staging/")
    assert len(_s3_keys(pool, "crash/_commits/")) == 1
