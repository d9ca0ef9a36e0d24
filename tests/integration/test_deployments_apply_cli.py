"""`patchfleet deployments apply` run as a user runs it (the installed console script, in a
subprocess): the dry run, and every error caught before any Prefect server is contacted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

INVENTORY = {
    "nodes": [
        {"id": "web-1", "tags": {"PatchGroup": "web"}},
        {"id": "web-2", "tags": {"PatchGroup": "web"}},
        {"id": "db-1", "tags": {"PatchGroup": "db"}},
    ]
}


def write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "policies.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def window(name: str = "mw-web", **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"name": name, "schedule": "cron(0 2 ? * TUE *)",
                               "duration_hours": 4, "cutoff_hours": 1, "targets": "group:web",
                               "tasks": [{"name": "scan", "priority": 0, "operation": "Scan"}]}
    base.update(kw)
    return base


def _apply(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "patchfleet"
    return subprocess.run([str(exe), "deployments", "apply", *args], capture_output=True,
                          text=True, timeout=180, env=env, check=False)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), **extra}


def test_cli_deployments_apply_dry_run_and_errors_before_any_server(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY))
    data = {"policies": [{"name": "pol-a", "operation": "ScanAndInstall",
                          "inventory": str(inv)}],
            "windows": [window("mw-a", inventory=str(inv))]}
    path = write(tmp_path, data)
    dry = _apply([str(path), "--dry-run"], _env(tmp_path))
    assert dry.returncode == 0, dry.stderr
    for name in ("patch-policy/pol-a-scan", "patch-policy/pol-a-install",
                 "maintenance-window/mw-a", "first run: on first deploy",
                 "pol-a-install  (paused)", "dry run: 3 deployment(s) not applied"):
        assert name in dry.stdout, name
    # no server configured: refused with the fix, nothing deployed anywhere
    unset = _apply([str(path)], _env(tmp_path))
    assert unset.returncode == 1 and "PREFECT_API_URL is not set" in unset.stderr
    closed = _apply([str(path)], _env(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api"))
    assert closed.returncode == 1, closed.stderr
    assert "http://127.0.0.1:9/api" in closed.stderr and "prefect server start" in closed.stderr
    # a bad file exits 2 before the server is even asked
    bad = write(tmp_path, {"windows": [window("mw-a", inventory=str(inv), cutoff_hours=9)]})
    res = _apply([str(bad)], _env(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api"))
    assert res.returncode == 2 and "windows[0].cutoff_hours" in res.stderr
    assert "Prefect server" not in res.stderr
    # a policy schedule Prefect can't express is a validation error too
    lw = write(tmp_path, {"policies": [{"name": "pol-a", "scan_schedule": "cron(0 1 LW * ? *)",
                                        "inventory": str(inv)}]})
    res = _apply([str(lw), "--dry-run"], _env(tmp_path))
    assert res.returncode == 2 and "policies[0].scan_schedule" in res.stderr
