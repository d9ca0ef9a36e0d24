"""The real ``patchfleet scan`` CLI against a small simulated fleet (``benchmarks/fleet_sim.py``).

20 nodes over real SSH on 127.0.0.1, each with its own port and host key, answering with the
golden captures (a real Debian 12 host, the Debian, Rocky and SLES test nodes), one node per
fault. Healthy and slow nodes must be scanned with the package counts their capture implies;
each faulty node must end FAILED with the reason code of its fault class. The simulator is a
separate process; the test waits for its READY line, never for a fixed time.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "benchmarks" / "fleet_sim.py"
PATCHFLEET = Path(sys.executable).parent / "patchfleet"
MIX = "debian12-host=9,debian12-fresh=3,rocky9-fresh=4,sles15-fresh=4"
FAULTS = "refused=1,hang=1,garbage=1,auth=1,slow=1"
COMMAND_TIMEOUT = 4  # the hang node's command fails after this many seconds
REASON = {"refused": "UNREACHABLE", "hang": "TIMEOUT", "garbage": "PARSE_ERROR",
          "auth": "AUTH_FAILED"}


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    """The simulator's READY line (printed once every port listens)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not sel.select(left):
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("READY"):
            return line
    proc.kill()
    raise AssertionError(f"fleet_sim never got ready (exit {proc.wait()})")


@pytest.fixture(scope="module")
def sim_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("fleet-sim")
    proc = subprocess.Popen(
        [sys.executable, str(SIM), "--nodes", "20", "--workdir", str(work), "--mix", MIX,
         "--fault-nodes", FAULTS, "--slow-ms", "300", "--variants", "4",
         "--command-timeout", str(COMMAND_TIMEOUT), "--connect-timeout", "10"],
        stdout=subprocess.PIPE, stderr=(work / "sim.log").open("w"), text=True,
    )
    try:
        _wait_ready(proc)
        yield json.loads((work / "fleet.json").read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _env(tmp_path: Path) -> dict[str, str]:
    """An isolated Prefect: the session's test server when there is one, else an ephemeral
    server in a fresh PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "PATCHFLEET_STORE"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if url:
        env["PREFECT_API_URL"] = str(url)
    return env


def _capture_facts(case: Path) -> tuple[int, str]:
    """(installed packages, os-release NAME) as the capture says."""
    if (case / "dpkg-query.stdout").exists():
        lines = (case / "dpkg-query.stdout").read_text().splitlines()
        count = sum(1 for ln in lines if ln.split("\t")[6:7] == ["installed"])
    else:
        lines = (case / "rpm-query.stdout").read_text().splitlines()
        count = sum(1 for ln in lines if ln and not ln.startswith("gpg-pubkey\t"))
    name = ""
    for ln in (case / "os-release.stdout").read_text().splitlines():
        if ln.startswith("NAME="):
            name = ln.split("=", 1)[1].strip().strip('"')
    return count, name


def test_cli_scans_the_simulated_fleet_and_fails_each_fault_with_its_reason(
    prefect_api: None, sim_fleet: dict[str, Any], tmp_path: Path
) -> None:
    import duckdb

    store = tmp_path / "store"
    proc = subprocess.run(
        [str(PATCHFLEET), "scan", "--inventory", sim_fleet["inventory"], "--store", str(store),
         "-o", "json"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    nodes = {n["id"]: n for n in sim_fleet["nodes"]}
    faulty = {i for i, n in nodes.items() if n["fault"] in REASON}
    assert len(faulty) == 4
    assert (summary["node_count"], summary["failed"]) == (20, 4)

    con = duckdb.connect()
    rows = con.execute(
        f"SELECT node_id, status, failure_reason, platform_name, installed_count, "
        f"installed_other_count, installed_pending_reboot_count, installed_rejected_count, "
        f"missing_count, failed_count, not_applicable_count FROM read_parquet("
        f"'{store}/node_summaries/**/*.parquet', hive_partitioning=true)").fetchall()
    by_node = {r[0]: r for r in rows}
    assert set(by_node) == set(nodes)
    per_state = dict(con.execute(
        f"SELECT node_id, count(*) FROM read_parquet('{store}/patch_states/**/*.parquet', "
        "hive_partitioning=true) GROUP BY node_id").fetchall())

    # Each fault ends FAILED with the reason code of its class.
    for node_id in faulty:
        fault = nodes[node_id]["fault"]
        status, reason = by_node[node_id][1], by_node[node_id][2] or ""
        assert status == "FAILED", (node_id, fault, status, reason)
        assert reason.startswith(REASON[fault] + ":"), (node_id, fault, reason)
    garbage = next(i for i in faulty if nodes[i]["fault"] == "garbage")
    probe = sim_fleet["profiles"][nodes[garbage]["profile"]]["garbage_probe"]
    assert probe in by_node[garbage][2]

    # Healthy (and slow) nodes: scanned, with every package of their capture accounted for.
    counts_by_profile: dict[str, set[tuple[int, ...]]] = {}
    for node_id, node in nodes.items():
        if node_id in faulty:
            continue
        prof = sim_fleet["profiles"][node["profile"]]
        expected, os_name = _capture_facts(Path(prof["case"]))
        row = by_node[node_id]
        assert row[1] in ("COMPLIANT", "NON_COMPLIANT"), (node_id, node, row)
        assert row[3] == os_name, (node_id, row[3], os_name)
        assert sum(row[4:]) == expected, (node_id, node["profile"], row[4:], expected)
        assert per_state.get(node_id) == expected, (node_id, per_state.get(node_id), expected)
        counts_by_profile.setdefault(node["profile"], set()).add(tuple(row[4:]))
    assert {nodes[i]["profile"] for i in nodes if i not in faulty} == set(sim_fleet["profiles"])
    # Version variants change no compliance state: one count tuple per profile.
    assert all(len(v) == 1 for v in counts_by_profile.values()), counts_by_profile

    # The per-node version variants reach the store.
    varied = next((n for n in nodes.values() if n["id"] not in faulty and n["variant"] > 0
                   and n["profile"] == "debian12-host"), None)
    assert varied is not None
    pairs = sim_fleet["profiles"]["debian12-host"]["variants"][varied["variant"]]
    assert pairs
    got = dict(con.execute(
        f"SELECT package, installed_version FROM read_parquet("
        f"'{store}/patch_states/**/*.parquet', hive_partitioning=true) WHERE node_id = ?",
        [varied["id"]]).fetchall())
    for pair in pairs:
        name, version = pair.split("=", 1)
        assert got.get(name) == version, (varied["id"], name, got.get(name), version)
