"""Hooks config model, the WithHooks step plan, and the pure reboot decisions (hand-checked
truth tables)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchfleet.config.hooks import Hooks, HookSpec, load_hooks, load_hooks_file
from patchfleet.errors import ConfigError
from patchfleet.ops.hooks import hook_env, hook_plan, plan_names
from patchfleet.ops.reboot import MAX_REBOOTS_PER_RUN, decide_reboot, reboot_commands, should_reboot
from patchfleet.transport.base import Command

# -- decide_reboot: option, installed, pending, os_says -> reboot ---------------------------

REBOOT_TABLE = [
    # RebootIfNeeded (AWS): installed in this run OR anything pending; the OS is not asked
    ("RebootIfNeeded", 0, 0, None, False),
    ("RebootIfNeeded", 0, 0, True, False),
    ("RebootIfNeeded", 1, 0, False, True),
    ("RebootIfNeeded", 0, 2, False, True),
    ("RebootIfNeeded", 3, 1, None, True),
    # NoReboot: never
    ("NoReboot", 0, 0, None, False),
    ("NoReboot", 5, 0, True, False),
    ("NoReboot", 0, 5, True, False),
    # RebootIfRequired (patchfleet): only the OS's answer counts
    ("RebootIfRequired", 0, 0, True, True),
    ("RebootIfRequired", 4, 0, False, False),
    ("RebootIfRequired", 4, 2, None, False),
    ("RebootIfRequired", 0, 3, True, True),
]


@pytest.mark.parametrize(("option", "installed", "pending", "os_says", "expected"), REBOOT_TABLE)
def test_decide_reboot_truth_table(option: str, installed: int, pending: int,
                                   os_says: bool | None, expected: bool) -> None:
    reboot, reason = decide_reboot(option, installed, pending, os_says)
    assert reboot is expected
    assert reason.startswith(option)


def test_decide_reboot_reasons() -> None:
    assert "2 patch(es) are INSTALLED_PENDING_REBOOT" in decide_reboot(
        "RebootIfNeeded", 0, 2, None).reason
    assert "stay INSTALLED_PENDING_REBOOT" in decide_reboot("NoReboot", 1, 0, None).reason
    assert "no reboot-required answer" in decide_reboot("RebootIfRequired", 1, 0, None).reason
    with pytest.raises(ConfigError, match="unknown reboot option 'Always'"):
        decide_reboot("Always", 0, 0, None)


def test_should_reboot_boot_loop_guard() -> None:
    t = datetime(2025, 6, 1, tzinfo=UTC)
    assert should_reboot([]).reboot
    assert should_reboot([t, t]).reboot
    refused = should_reboot([t] * MAX_REBOOTS_PER_RUN)
    assert not refused.reboot and "already rebooted 3 time(s)" in refused.reason
    assert not should_reboot([1.0], limit=1).reboot
    assert should_reboot([1.0] * 4, limit=5).reboot


def test_reboot_commands_are_plain_programs_in_osconfigs_order() -> None:
    """Each reboot command is one privileged program with fixed arguments (sudoers can name
    it): no shell, tried in osconfig's order."""
    cmds = reboot_commands()
    assert [c.argv for c in cmds] == [("systemctl", "reboot"), ("reboot",),
                                      ("shutdown", "-r", "now")]
    assert all(c.privileged and c.variable_from is None for c in cmds)
    assert all(c.render(sudo=True).startswith("sudo -n LC_ALL=C ") for c in cmds)
    assert cmds[0].render(sudo=True).endswith(" -- systemctl reboot")


# -- Hooks model -----------------------------------------------------------------------------


def test_hooks_model_command_and_script(tmp_path: Path) -> None:
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "pre.sh").write_text("echo hi\n")
    hooks = load_hooks(
        {"pre_install": {"command": "systemctl stop app", "timeout": 30},
         "on_exit": {"script": "hooks/pre.sh"}},
        str(tmp_path / "patchfleet.yaml"),
    )
    assert hooks.pre_install and hooks.pre_install.timeout == 30
    assert hooks.post_install is None
    assert hooks.on_exit and hooks.on_exit.script == (tmp_path / "hooks" / "pre.sh").resolve()
    assert hooks.on_exit.timeout == 600
    argv = hooks.on_exit.argv()
    assert argv[:2] == ("sh", "-c") and argv[-1] == "echo hi\n"
    assert hooks.pre_install.argv() == ("sh", "-c", "systemctl stop app", "patchfleet-hook")
    assert Hooks().get("on_exit") is None


@pytest.mark.parametrize(("data", "message"), [
    ({"pre_install": {"command": "true", "script": "x.sh"}}, "not both"),
    ({"pre_install": {}}, "set 'command'"),
    ({"pre_install": {"script": "missing.sh"}}, "script file 'missing.sh' not found"),
    ({"post_install": {"command": "  "}}, "'command' is empty"),
    ({"post_install": {"command": "true", "timeout": 0}}, "greater than 0"),
    ({"pre_instal": {"command": "true"}}, "unknown key"),
    ({"on_exit": {"command": "true", "shell": "bash"}}, "unknown key"),
])
def test_hooks_model_errors(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_hooks(data, str(tmp_path / "patchfleet.yaml"))
    assert str(tmp_path / "patchfleet.yaml") in str(err.value)


def test_hooks_unknown_key_names_the_allowed_ones(tmp_path: Path) -> None:
    source = str(tmp_path / "hooks.yaml")
    with pytest.raises(ConfigError) as err:
        load_hooks({"pre_instal": {"command": "true"}}, source)
    assert str(err.value) == (f"{source}: pre_instal: unknown key 'pre_instal'; did you mean "
                              "'pre_install'? allowed keys: pre_install, post_install, on_exit")
    with pytest.raises(ConfigError) as err:
        load_hooks({"on_exit": {"command": "true", "shell": "bash"}}, source)
    assert "on_exit.shell: unknown key 'shell'; remove it or check its spelling; allowed keys: " \
        "command, script, timeout" in str(err.value)


def test_hooks_file_is_read_with_the_strict_loader(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text("pre_install:\n  command: 'true'\n  timeout: 30\n")
    hooks = load_hooks_file(path)
    assert hooks.pre_install and hooks.pre_install.timeout == 30
    with pytest.raises(ConfigError, match="hooks file not found"):
        load_hooks_file(tmp_path / "absent.yaml")
    path.write_text("pre_install: {command: 'true'\n")
    with pytest.raises(ConfigError, match=r"hooks.yaml: not valid YAML at line 2"):
        load_hooks_file(path)


def test_hook_script_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.sh").write_text("#" * 200_000)
    with pytest.raises(ConfigError, match="at most 100000 bytes"):
        load_hooks({"pre_install": {"script": "big.sh"}}, "cfg", base_dir=tmp_path)


def test_hook_env_is_validated_and_quoted() -> None:
    env = hook_env(run_id="run 1; rm -rf /", node_id="deb-a", operation="Install",
                   snapshot_id="snap-1")
    assert [k for k, _ in env] == ["PATCHFLEET_RUN_ID", "PATCHFLEET_NODE_ID",
                                   "PATCHFLEET_OPERATION", "PATCHFLEET_SNAPSHOT_ID"]
    spec = HookSpec(command="echo $PATCHFLEET_RUN_ID")
    rendered = Command(spec.argv(), env=env).render(sudo=False)
    assert "'PATCHFLEET_RUN_ID=run 1; rm -rf /'" in rendered
    assert "'echo $PATCHFLEET_RUN_ID'" in rendered
    assert [k for k, _ in hook_env(run_id="r", node_id="n", operation="Install")][-1] == \
        "PATCHFLEET_OPERATION"


# -- hook_plan: AWS-RunPatchBaselineWithHooks steps 1-8 --------------------------------------

ALL = ["scan", "pre_install_hook", "install", "post_install_hook", "reboot", "on_exit_hook"]
NO_REBOOT = ["scan", "pre_install_hook", "install", "post_install_hook", "on_exit_hook"]
PLAN_TABLE = [
    # operation, missing, pending, option, pre_ok, install_ok, installed, expected steps
    ("Scan", 5, True, "RebootIfNeeded", True, True, None, ["scan"]),
    ("Install", 0, False, "RebootIfNeeded", True, True, None, ["scan", "on_exit_hook"]),
    ("Install", 0, True, "NoReboot", True, True, None, ["scan", "on_exit_hook"]),
    ("Install", 0, True, "RebootIfNeeded", True, True, None, ALL),
    ("Install", 3, False, "RebootIfNeeded", True, True, None, ALL),
    ("Install", 3, False, "RebootIfNeeded", True, True, 0, NO_REBOOT),
    ("Install", 3, False, "NoReboot", True, True, None, NO_REBOOT),
    ("Install", 3, True, "NoReboot", True, True, None, NO_REBOOT),
    ("Install", 3, False, "RebootIfNeeded", False, True, None,
     ["scan", "pre_install_hook", "on_exit_hook"]),
    ("Install", 3, False, "RebootIfNeeded", True, False, None,
     ["scan", "pre_install_hook", "install", "on_exit_hook"]),
]


@pytest.mark.parametrize(
    ("operation", "missing", "pending", "option", "pre_ok", "install_ok", "installed",
     "expected"), PLAN_TABLE)
def test_hook_plan_truth_table(operation: str, missing: int, pending: bool, option: str,
                               pre_ok: bool, install_ok: bool, installed: int | None,
                               expected: list[str]) -> None:
    plan = hook_plan(operation, missing, pending, option, pre_ok, install_ok=install_ok,
                     installed_count=installed)
    assert plan_names(plan) == expected
    assert [s.step for s in plan] == [1, 3, 4, 5, 7, 8]


def test_hook_plan_reasons_and_reboot_if_required() -> None:
    plan = hook_plan("Install", 2, False, "RebootIfNeeded", pre_hook_ok=False)
    install = next(s for s in plan if s.name == "install")
    assert not install.run and "pre-install hook failed" in install.reason
    plan = hook_plan("Install", 2, False, "RebootIfRequired", os_says_required=True)
    assert plan_names(plan) == ALL
    plan = hook_plan("Install", 2, False, "RebootIfRequired", os_says_required=False)
    assert plan_names(plan) == NO_REBOOT
    with pytest.raises(ConfigError, match="unknown operation"):
        hook_plan("Patch", 0, False, "NoReboot")
