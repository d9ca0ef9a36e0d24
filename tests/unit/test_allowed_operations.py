"""PATCHFLEET_OPERATIONS: the worker-side guard that keeps Installs off a scan worker (issue 16),
whatever ``operation`` the caller passes to a deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchfleet.cli.app import app
from patchfleet.config.allowed_operations import (
    ENV_VAR,
    allowed_operations,
    check_operations,
    refusal,
)
from patchfleet.domain.requests import Operation, PatchRequest
from patchfleet.errors import ConfigError
from tasks.plan import plan_run

BOTH = frozenset({Operation.SCAN, Operation.INSTALL})


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_empty_allows_everything(value: str | None) -> None:
    env = {} if value is None else {ENV_VAR: value}
    assert allowed_operations(env) == BOTH
    check_operations(["Scan", "Install"], env)
    assert refusal([Operation.INSTALL], env) is None


@pytest.mark.parametrize(("value", "allowed"), [
    ("Scan", {Operation.SCAN}),
    ("install", {Operation.INSTALL}),
    (" Scan , INSTALL ", BOTH),
])
def test_a_list_of_operations_any_case(value: str, allowed: set[Operation]) -> None:
    assert allowed_operations({ENV_VAR: value}) == allowed


def test_a_scan_worker_refuses_an_install_in_one_line_naming_the_variable_and_fix() -> None:
    env = {ENV_VAR: "Scan"}
    check_operations([Operation.SCAN], env)
    with pytest.raises(ConfigError) as err:
        check_operations([Operation.SCAN, Operation.INSTALL], env)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("PATCHFLEET_OPERATIONS: PATCHFLEET_OPERATIONS=Scan on this machine "
                           "does not allow Install")
    assert "'patch-nodes/install-now'" in text and "add Install to PATCHFLEET_OPERATIONS" in text
    assert refusal(["Install"], env) == text


def test_an_install_only_worker_points_scans_at_the_scan_pool() -> None:
    text = refusal([Operation.SCAN], {ENV_VAR: "Install"})
    assert text is not None and "'patch-nodes/patch-now'" in text


@pytest.mark.parametrize("value", ["Scna", "Scan,", "Scan;Install", "ScanAndInstall"])
def test_a_bad_value_refuses_every_run(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^PATCHFLEET_OPERATIONS: .* is not an operation; "
                                          r"set it to a comma-separated list of Scan, Install"):
        allowed_operations({ENV_VAR: value})
    assert refusal([Operation.SCAN], {ENV_VAR: value}) is not None


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "Scan")
    assert allowed_operations() == {Operation.SCAN}
    monkeypatch.delenv(ENV_VAR)
    assert allowed_operations() == BOTH


def test_plan_run_refuses_before_planning(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """The flow's first step: a deployment run gets the one line (the run ends Failed with it,
    no traceback), a CLI run the ConfigError; the missing inventory is never looked at."""
    monkeypatch.setenv(ENV_VAR, "Scan")
    request = PatchRequest(operation=Operation.INSTALL,
                           inventory=str(tmp_path / "no-such-inventory.yaml"))
    line = plan_run.fn(request, "run-1", deployment=True)
    assert isinstance(line, str)
    assert line.startswith("PATCHFLEET_OPERATIONS: PATCHFLEET_OPERATIONS=Scan on this machine "
                           "does not allow Install"), line
    with pytest.raises(ConfigError, match="does not allow Install"):
        plan_run.fn(request, "run-1", deployment=False)
    # a Scan goes on to planning (and fails there, on the missing inventory)
    scan = PatchRequest(operation=Operation.SCAN,
                        inventory=str(tmp_path / "no-such-inventory.yaml"))
    other = plan_run.fn(scan, "run-2", deployment=True)
    assert isinstance(other, str) and "no-such-inventory.yaml" in other


@pytest.mark.parametrize(("allowed", "command"), [("Scan", "install"), ("Install", "scan")])
def test_the_cli_refuses_first_and_writes_nothing(allowed: str, command: str,
                                                  tmp_path: Path) -> None:
    """``patchfleet scan|install`` on a machine whose PATCHFLEET_OPERATIONS refuses them: exit 2
    with the one line, before the inventory is read or the store folder is made."""
    store = tmp_path / "store"
    result = CliRunner().invoke(app, [command, "-i", str(tmp_path / "missing.yaml"),
                                      "--store", str(store)],
                                env={ENV_VAR: allowed})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"PATCHFLEET_OPERATIONS={allowed} on this machine does not allow" in text, text
    assert "missing.yaml" not in text
    assert not store.exists()
