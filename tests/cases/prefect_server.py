"""A real Prefect server and workers for integration tests: start, wait for health, stop.

Everything runs with its own PREFECT_HOME (SQLite) and no PREFECT_* setting from outside, on a
free loopback port; processes get their own session so a stop takes their children too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, n: int = 60) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def stop(proc: subprocess.Popen[bytes]) -> None:
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


def prefect_cli(args: list[str], env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def isolated_env(home: Path, api_url: str) -> dict[str, str]:
    """This process's environment without any PREFECT_* setting, pointed at ``api_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PATCHFLEET_REPO": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    })
    return env


def start_server(home: Path, env: dict[str, str], port: int,
                 procs: list[subprocess.Popen[bytes]]) -> None:
    """Start ``prefect server start`` on ``port`` (appended to ``procs``) and wait until its
    health endpoint answers (up to 120 s: the first start migrates SQLite)."""
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        procs.append(subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
            if r.status == 200:
                return
        if procs[-1].poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"prefect server did not come up:\n{tail(log_path)}", pytrace=False)
        time.sleep(0.5)


def start_worker(home: Path, env: dict[str, str], pool: str, name: str,
                 procs: list[subprocess.Popen[bytes]], limit: int | None = None) -> Path:
    """Start ``prefect worker start`` for ``pool`` (its log file is returned)."""
    log_path = home / f"worker-{name}.log"
    args = [PREFECT, "worker", "start", "--pool", pool, "--name", name]
    if limit is not None:
        args += ["--limit", str(limit)]
    with open(log_path, "wb") as log:
        procs.append(subprocess.Popen(args, env=env, cwd=REPO, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    return log_path
