"""deployments/least-privilege/prefect.yaml end to end (issue 16, least privilege): a real
`prefect server start` with API authentication (PREFECT_SERVER_API_AUTH_STRING), the two process
work pools, `prefect deploy --all`, `patchfleet deployments apply --install-pool`, and two real
`prefect worker start`s that authenticate with PREFECT_API_AUTH_STRING: the scan worker
(PATCHFLEET_OPERATIONS=Scan) and the install worker.

On deb-a, a scan user (`scanner`, its own key) and the install user (root, the fleet's key): the
scan worker's scan logs in as `scanner` only; the same worker refuses an Install asked of its
`patch-now` (the guard: one line, no node contacted), its `run-policy` and its
`run-window-scan` (a window with an Install task); the install worker's `install-now` installs,
logged in as root. The auth string appears in no flow log, no
artifact, no store file and no worker log.

The deployments' default inventory is a path that does not exist, so a scheduled run that comes
due meanwhile (host-management, 01:00 UTC) fails on it instead of touching the test nodes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect_server import (
    PREFECT,
    REPO,
    free_port,
    isolated_env,
    prefect_cli,
    start_server,
    start_worker,
    stop,
    tail,
)

from patchfleet.store.query import ComplianceStore

pytestmark = pytest.mark.prefect

PREFECT_YAML = REPO / "deployments" / "least-privilege" / "prefect.yaml"
SCAN_POOL, INSTALL_POOL = "patchfleet-scan", "patchfleet-install"
_ACCEPTED = re.compile(r"Accepted publickey for (\S+) from 127\.0\.0\.1")


@dataclass
class Pools:
    api_url: str
    secret: str
    env: dict[str, str]
    """An authenticated client's environment (PREFECT_API_AUTH_STRING, no server setting)."""
    home: Path
    worker_logs: dict[str, Path]


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pools]:
    home = tmp_path_factory.mktemp("least-privilege")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    secret = f"patchfleet:{secrets.token_hex(16)}"
    base = isolated_env(home, api_url)
    base["PATCHFLEET_INVENTORY"] = str(home / "no-inventory.yaml")
    base["PATCHFLEET_STORE"] = str(home / "worker-store")  # a scheduled policy scan's store
    server_env = {**base, "PREFECT_SERVER_API_AUTH_STRING": secret}
    env = {**base, "PREFECT_API_AUTH_STRING": secret}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start_server(home, server_env, port, procs)  # /api/health answers without auth
        for pool in (SCAN_POOL, INSTALL_POOL):
            r = prefect_cli(["work-pool", "create", pool, "--type", "process"], env, 120)
            assert r.returncode == 0, r.stdout + r.stderr
        r = prefect_cli(["--no-prompt", "deploy", "--prefect-file", str(PREFECT_YAML), "--all"],
                        env, 300)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run([str(Path(PREFECT).parent / "patchfleet"), "deployments", "apply",
                            "deployments/policies.yaml", "--pool", SCAN_POOL,
                            "--install-pool", INSTALL_POOL], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        logs = {
            "scan": start_worker(home, {**env, "PATCHFLEET_OPERATIONS": "Scan"}, SCAN_POOL,
                                 "scan-worker", procs),
            "install": start_worker(home, env, INSTALL_POOL, "install-worker", procs),
        }
        yield Pools(api_url, secret, env, home, logs)
    finally:
        for proc in reversed(procs):
            stop(proc)


async def _with_client(pools: Pools, fn: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: pools.api_url,
                             PREFECT_API_AUTH_STRING: pools.secret}):
        async with get_client() as client:
            return await fn(client)


def _status(url: str, auth: str | None = None) -> int:
    req = urllib.request.Request(url, data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    if auth is not None:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_the_api_needs_the_auth_string_and_each_deployment_sits_in_its_pool(
        pools: Pools) -> None:
    url = f"{pools.api_url}/work_pools/filter"
    assert _status(url) == 401
    assert _status(url, "patchfleet:wrong") == 401
    assert _status(url, pools.secret) == 200
    r = prefect_cli(["work-pool", "ls"], {k: v for k, v in pools.env.items()
                                          if k != "PREFECT_API_AUTH_STRING"}, 120)
    assert r.returncode != 0 and "401" in r.stdout + r.stderr, r.stdout + r.stderr

    async def read(client: Any) -> dict[str, tuple[str, dict[str, Any]]]:
        deps = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": (d.work_pool_name, d.parameters) for d in deps}

    deps = asyncio.run(_with_client(pools, read))
    by_pool = {pool: sorted(n for n, (p, _) in deps.items() if p == pool)
               for pool in (SCAN_POOL, INSTALL_POOL)}
    assert by_pool == {
        SCAN_POOL: ["evaluate-baseline/what-if", "maintenance-window/run-window-scan",
                    "patch-nodes/host-management", "patch-nodes/patch-now", "patch-nodes/shard",
                    "patch-policy/run-policy", "patch-policy/web-fleet-scan"],
        # the fixed ones, then `deployments apply --install-pool`'s: a policy's Install and a
        # window with an Install task
        INSTALL_POOL: ["maintenance-window/patch-friday", "maintenance-window/run-window",
                       "patch-nodes/install-now", "patch-nodes/weekly-install",
                       "patch-policy/run-policy-install", "patch-policy/web-fleet-install"],
    }
    # no deployment in the scan pool installs by default; each in the install pool does (or
    # runs windows, which may)
    assert all(params.get("operation") != "Install"
               for name, (pool, params) in deps.items() if pool == SCAN_POOL)


def _run(pools: Pools, deployment: str, *params: str) -> tuple[subprocess.CompletedProcess[str],
                                                               str]:
    args = ["deployment", "run", deployment, "--watch", "--watch-interval", "1",
            "--watch-timeout", "240"]
    for p in params:
        args += ["-p", p]
    r = prefect_cli(args, pools.env, 300)
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert run_id, r.stdout + r.stderr
    return r, run_id.group(1)


def _worker_tails(pools: Pools) -> str:
    return "".join(f"\n--- {name} worker ---\n{tail(log)}"
                   for name, log in pools.worker_logs.items())


async def _run_record(client: Any, run_id: str) -> tuple[Any, list[str], list[Any]]:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    run = await client.read_flow_run(run_id)
    children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
    ids = [run_id, *(str(c.id) for c in children)]
    logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
    arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
    return run, [entry.message for entry in logs], list(arts)


def test_scan_pool_scans_refuses_installs_and_the_install_pool_installs(
        pools: Pools, clean: Any, tmp_path: Path) -> None:
    clean.ssh("deb-a", "useradd -m scanner && install -d -o scanner -m 700 /home/scanner/.ssh",
              check=True)
    scan_key = tmp_path / "scan_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(scan_key)],
                   check=True)
    pub = scan_key.with_suffix(".pub").read_text().strip()
    clean.ssh("deb-a", f"echo '{pub}' > /home/scanner/.ssh/authorized_keys && "
              "chown scanner /home/scanner/.ssh/authorized_keys", check=True)

    def inventory(name: str, install_key: Path, own_scan_key: Path = scan_key) -> str:
        path = tmp_path / name
        path.write_text(
            f"defaults: {{known_hosts: {clean.known_hosts}, user: scanner, "
            f"identity_file: {own_scan_key}, install_user: root, install_identity_file: "
            f"{install_key}}}\n"
            f"nodes:\n  - {{id: deb-a, host: 127.0.0.1, port: {clean.ports['deb-a']}}}\n")
        return str(path)

    # what the scan machine has: the scan key only (the install key's path names nothing)
    scan_side = inventory("scan-machine.yaml", tmp_path / "not-on-this-machine" / "install_key")
    # the install machine: the install key only (every connection of an Install, its scans
    # included, uses the install identity)
    install_side = inventory("install-machine.yaml", clean.identity_file,
                             tmp_path / "not-on-this-machine" / "scan_key")
    console = clean.manager.node_dir("deb-a") / "console.log"
    store = tmp_path / "store"
    common = ["targets=deb-a", f"store={store}"]

    def logins() -> list[str]:
        return _ACCEPTED.findall(console.read_text(errors="replace"))

    # 1. the scan pool's patch-now scans, as the scan user only
    before = len(logins())
    r, scan_id = _run(pools, "patch-nodes/patch-now", *common, f"inventory={scan_side}",
                      "refresh=false")
    assert r.returncode == 0 and "Completed" in r.stdout, r.stdout + r.stderr + _worker_tails(
        pools)
    assert set(logins()[before:]) == {"scanner"}

    # 2. the same deployment asked for an Install: refused by the scan worker, nothing contacted
    before = len(logins())
    r, refused_id = _run(pools, "patch-nodes/patch-now", *common, f"inventory={scan_side}",
                         "operation=Install", "reboot_option=NoReboot")
    assert r.returncode != 0, r.stdout
    assert logins()[before:] == []
    run, messages, _ = asyncio.run(_with_client(pools, lambda c: _run_record(c, refused_id)))
    assert run.state.is_failed() and run.work_pool_name == SCAN_POOL
    assert any(m.startswith(
        "PATCHFLEET_OPERATIONS: PATCHFLEET_OPERATIONS=Scan on this machine does not allow "
        "Install: run it on a worker whose PATCHFLEET_OPERATIONS allows Install (the install "
        "pool: prefect deployment run 'patch-nodes/install-now')") for m in messages), messages
    assert not any("Traceback" in m for m in messages), messages

    # ... and so is a policy's Install sent to the scan pool's run-policy
    r, policy_id = _run(pools, "patch-policy/run-policy", "policy=web-fleet",
                        "operation=Install")
    assert r.returncode != 0, r.stdout
    _, messages, _ = asyncio.run(_with_client(pools, lambda c: _run_record(c, policy_id)))
    assert any("does not allow Install" in m for m in messages), messages
    # ... and a window with an Install task sent to the scan pool's run-window-scan, before its
    # first (Scan) task starts
    r, window_id = _run(pools, "maintenance-window/run-window-scan", "window=patch-friday",
                        "force=true")
    assert r.returncode != 0, r.stdout
    run, messages, _ = asyncio.run(_with_client(pools, lambda c: _run_record(c, window_id)))
    assert any(m.startswith("window patch-friday: PATCHFLEET_OPERATIONS: ") for m in messages)
    assert "does not allow Install" in run.state.message
    assert not any("priority 0" in m for m in messages), messages

    # 3. the install pool installs, as the install user
    before = len(logins())
    r, install_id = _run(pools, "patch-nodes/install-now", *common,
                         f"inventory={install_side}", "refresh=false", "reboot_option=NoReboot")
    assert r.returncode == 0 and "Completed" in r.stdout, r.stdout + r.stderr + _worker_tails(
        pools)
    assert set(logins()[before:]) == {"root"}
    with ComplianceStore(store) as cs:
        _, rows = cs.query("SELECT operation, count(*) FROM node_summaries GROUP BY operation "
                           "ORDER BY operation")
        _, installed = cs.query("SELECT count(*) FROM patch_states "
                                "WHERE state = 'INSTALLED_PENDING_REBOOT' AND run_id = ?",
                                [install_id])
    assert rows == [("INSTALL", 1), ("SCAN", 1)], rows
    assert installed[0][0] > 0

    # 4. the shared secret is nowhere it could be read back
    texts: list[str] = []
    for rid in (scan_id, refused_id, policy_id, window_id, install_id):
        _, messages, arts = asyncio.run(_with_client(pools, lambda c, i=rid: _run_record(c, i)))
        texts += messages
        texts += [json.dumps(a.data, default=str) + str(a.description) for a in arts]
    assert len(texts) > 10
    texts += [p.read_bytes().decode("latin-1") for folder in (store, pools.home / "worker-store")
              for p in folder.rglob("*") if p.is_file()]
    texts += [log.read_text(errors="replace") for log in pools.worker_logs.values()]
    token = secrets_of(pools.secret)
    assert not [t for t in texts if any(s in t for s in token)]


def secrets_of(secret: str) -> list[str]:
    """The auth string and the forms it travels in (the Basic header's base64, the password)."""
    return [secret, base64.b64encode(secret.encode()).decode(), secret.split(":", 1)[1]]


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    """README "Security" and this test can't drift apart: every command the fixture runs (the
    server's and clients' auth variables, both pools, the deploy, the apply, both workers) is a
    line of the section's bash block."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n### Prefect: API authentication, a scan pool and an install "
                              "pool\n"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block
    lines = " ".join(block.group(1).replace("\\\n", " ").split())
    for command in (
        'export PREFECT_SERVER_API_AUTH_STRING="patchfleet:',
        "export PREFECT_API_AUTH_STRING=",
        f"prefect work-pool create {SCAN_POOL} --type process",
        f"prefect work-pool create {INSTALL_POOL} --type process",
        "prefect --no-prompt deploy --prefect-file deployments/least-privilege/prefect.yaml --all",
        f"patchfleet deployments apply deployments/policies.yaml --pool {SCAN_POOL} "
        f"--install-pool {INSTALL_POOL}",
        f"PATCHFLEET_OPERATIONS=Scan prefect worker start --pool {SCAN_POOL} &",
        f"prefect worker start --pool {INSTALL_POOL} &",
        "prefect deployment run 'patch-nodes/patch-now'",
        "prefect deployment run 'patch-nodes/install-now'",
    ):
        assert command in lines, command
