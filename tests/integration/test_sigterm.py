"""SIGTERM ends `patchfleet scan` like Ctrl-C: one line, exit 143, no traceback (issue 13 #14),
whether it arrives inside the Prefect flow run (Prefect raises TerminationSignal) or before it.

The scan targets a port that accepts TCP and never answers, so it is still connecting when the
signal comes; the test waits for the flow run's first log line, not for a fixed time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PATCHFLEET = str(Path(sys.executable).parent / "patchfleet")


@pytest.mark.prefect
def test_sigterm_during_a_scan_exits_143_without_a_traceback(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"defaults: {{known_hosts: {tmp_path / 'known_hosts'}, connect_timeout: 300}}\n"
        f"nodes:\n  - {{id: silent, host: 127.0.0.1, port: {port}}}\n")
    (tmp_path / "known_hosts").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"})
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([PATCHFLEET, "scan", "-i", str(inventory), "--store",
                                 str(tmp_path / "store")], stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
    try:
        deadline = time.monotonic() + 240
        while b"scanning 1 node" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        silent.close()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "stopped by SIGTERM" in text
