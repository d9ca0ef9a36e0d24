"""A CLI run that dies, and a Prefect server that dies under it (issue 13, items 11 and 12).

- kill -9 of `patchfleet scan`: its temporary Prefect server dies with it (it lived on before),
  and the next CLI run marks the killed run Crashed in Prefect's database (it stayed RUNNING).
- the temporary server killed mid-scan: the scan still lands in the store (task states travel
  as events; only the artifacts need the API), and the CLI says so in one line and exits 4 (it
  hung ~150 s, then printed an httpx traceback).

The scans target a port that accepts TCP and never answers, so they are busy connecting when
the test acts; the test waits for events (log lines, processes, files), not for fixed times.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PATCHFLEET = str(Path(sys.executable).parent / "patchfleet")


@pytest.fixture
def silent_node(tmp_path: Path) -> Iterator[Path]:
    """An inventory with one node whose port accepts TCP and never says a word (a key is set,
    so the scan really connects and waits out its 20 s connect timeout)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"defaults: {{known_hosts: {tmp_path / 'known_hosts'}, connect_timeout: 20, "
        f"identity_file: {key}}}\n"
        f"nodes:\n  - {{id: silent, host: 127.0.0.1, port: {silent.getsockname()[1]}}}\n")
    (tmp_path / "known_hosts").write_text("")
    yield inventory
    silent.close()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                "XDG_DATA_HOME": str(tmp_path / "xdg"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"})
    return env


def _wait(what: str, done: object, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _server_of(pid: int) -> int | None:
    """The temporary Prefect server (uvicorn) among ``pid``'s children."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"uvicorn" in cmdline:
            return int(proc.name)
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _scan(tmp_path: Path, inventory: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen([PATCHFLEET, "scan", "-i", str(inventory), "--store",
                                 str(tmp_path / "store")], stdout=subprocess.DEVNULL,
                                stderr=err, env=_env(tmp_path))


@pytest.mark.prefect
def test_kill_9_takes_the_server_down_and_the_next_run_marks_it_crashed(
        tmp_path: Path, silent_node: Path) -> None:
    log = tmp_path / "first.log"
    proc = _scan(tmp_path, silent_node, log)
    try:
        _wait("the scan to start", lambda: b"scanning 1 node" in log.read_bytes())
        server = _server_of(proc.pid)
        assert server is not None, log.read_text()
        markers = list((tmp_path / "xdg" / "patchfleet" / "runs").glob("*.json"))
        assert len(markers) == 1, log.read_text()
        run_id = markers[0].stem
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _wait("the orphaned server to exit", lambda: not _alive(server), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    db = tmp_path / "prefect" / "prefect.db"
    with sqlite3.connect(db) as con:
        (state,) = con.execute("SELECT state_type FROM flow_run WHERE id = ?",
                               [run_id]).fetchone()
    assert state == "RUNNING"  # what a killed CLI leaves behind

    again = tmp_path / "second.log"
    second = _scan(tmp_path, silent_node, again)
    assert second.wait(timeout=300) == 0, again.read_text()
    text = again.read_text()
    assert f"note: run {run_id} was left running by a patchfleet CLI that was killed" in text
    with sqlite3.connect(db) as con:
        (state,) = con.execute("SELECT state_type FROM flow_run WHERE id = ?",
                               [run_id]).fetchone()
    assert state == "CRASHED"
    assert not list((tmp_path / "xdg" / "patchfleet" / "runs").glob("*.json"))


@pytest.mark.prefect
def test_the_server_dying_mid_scan_is_one_line_and_exit_4(
        tmp_path: Path, silent_node: Path) -> None:
    log = tmp_path / "scan.log"
    proc = _scan(tmp_path, silent_node, log)
    try:
        _wait("the scan to start", lambda: b"scanning 1 node" in log.read_bytes())
        server = _server_of(proc.pid)
        assert server is not None, log.read_text()
        os.kill(server, signal.SIGKILL)
        killed = time.monotonic()
        assert proc.wait(timeout=180) == 4, log.read_text()
        waited = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "error: the Prefect API stopped answering" in text, text
    assert "it is complete in the store" in text, text
    assert waited < 90, f"{waited:.0f} s from the server's death to the exit"  # was ~150 s
    from patchfleet.store.query import ComplianceStore

    with ComplianceStore(tmp_path / "store") as store:
        _, rows = store.query("SELECT node_id, status, failure_reason FROM node_summaries")
    assert [(r[0], r[1]) for r in rows] == [("silent", "FAILED")]
    assert rows[0][2].startswith("UNREACHABLE: timed out"), rows
