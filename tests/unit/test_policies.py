"""Deployments file: patch policies and maintenance windows, validation and overlap warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from patchfleet.config.policies import load_deployments, validate_deployments
from patchfleet.domain.inventory import Inventory, parse_inventory
from patchfleet.domain.policies import PatchPolicy
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import load_registry

INVENTORY = {
    "nodes": [
        {"id": "web-1", "tags": {"PatchGroup": "web"}},
        {"id": "web-2", "tags": {"PatchGroup": "web"}},
        {"id": "db-1", "tags": {"PatchGroup": "db"}},
    ]
}
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def loader(spec: str | None) -> Inventory:
    return parse_inventory(INVENTORY, spec or "(test)")


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


def check(tmp_path: Path, data: object) -> list[str]:
    return validate_deployments(write(tmp_path, data), load_registry(None), loader, now=NOW)


def error(tmp_path: Path, data: object) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        check(tmp_path, data)
    return exc.value


def test_policy_defaults_follow_quick_setup() -> None:
    p = PatchPolicy(name="pol-1")
    assert p.operation == "Scan"
    assert p.scan_schedule == "cron(0 1 * * ? *)"
    assert p.install_schedule == "cron(0 2 ? * SUN *)"
    assert p.schedule_timezone == "UTC" and p.targets == "*" and p.publish_report


def test_valid_file_loads_with_rates_normalised(tmp_path: Path) -> None:
    data = {"policies": [{"name": "web-pol", "operation": "ScanAndInstall", "targets": "group:web",
                          "baselines": {"DEBIAN": "example-debian-all-updates"},
                          "max_concurrency": "10%", "max_errors": 1}],
            "windows": [window(tasks=[{"name": "a", "priority": 1}, {"name": "b", "priority": 0},
                                      {"name": "c", "priority": 1, "operation": "Install"}])]}
    assert check(tmp_path, data) == []
    dep = load_deployments(tmp_path / "policies.yaml")
    pol = dep.policy("web-pol")
    assert (pol.max_concurrency, pol.max_errors) == ("10%", "1")
    groups = dep.window("mw-web").priority_groups()
    assert [[t.name for t in g] for g in groups] == [["b"], ["a", "c"]]
    assert dep.window("mw-web").task_targets(groups[0][0]) == "group:web"


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"policies": [{"name": "pol-1", "scan_schedule": "cron(0 1 * *)"}]},
     "policies[0].scan_schedule", "needs 6"),
    ({"policies": [{"name": "pol-1", "install_schedule": "rate(1 day)"}]},
     "policies[0].install_schedule", "cron"),
    ({"policies": [{"name": "pol-1", "schedule_timezone": "Mars/Olympus"}]},
     "policies[0].schedule_timezone", "unknown timezone"),
    ({"policies": [{"name": "pol-1", "max_concurrency": "0"}]},
     "policies[0].max_concurrency", "at least 1"),
    ({"policies": [{"name": "pol-1", "max_errors": "150%"}]},
     "policies[0].max_errors", "above 100%"),
    ({"policies": [{"name": "pol-1", "baselines": {"DEBIAN": "nope"}}]},
     "policies[0].baselines.DEBIAN", "not defined"),
    ({"policies": [{"name": "pol-1", "baselines": {"UBUNTU": "example-debian-all-updates"}}]},
     "policies[0].baselines.UBUNTU", "is for DEBIAN"),
    ({"policies": [{"name": "pol-1", "baselines": {"BEOS": "x"}}]},
     "policies[0].baselines", "not an operating system"),
    ({"policies": [{"name": "pol-1", "targets": "group:nothere"}]},
     "policies[0].targets", "selects no node"),
    ({"windows": [window(cutoff_hours=4)]}, "windows[0].cutoff_hours", "less than"),
    ({"windows": [window(schedule="rate(7 days)", schedule_offset=2,
                         start_date="2026-01-01T00:00:00+00:00")]},
     "windows[0].schedule_offset", "only applies to cron"),
    ({"windows": [window(schedule="cron(0 99 ? * TUE *)")]}, "windows[0].schedule", "hours"),
    ({"windows": [window(schedule_timezone="Nowhere/Town")]},
     "windows[0].schedule_timezone", "unknown timezone"),
    ({"windows": [window(schedule="rate(7 days)")]}, "windows[0].start_date", "start_date"),
    ({"windows": [window(targets="zzz*")]}, "windows[0].targets", "selects no node"),
    ({"windows": [window(tasks=[{"name": "t", "priority": -1}])]},
     "windows[0].tasks.0.priority", "greater than or equal to 0"),
    ({"windows": [window(tasks=[])]}, "windows[0].tasks", "no tasks"),
    ({"windows": [window(), window()]}, "windows", "used twice"),
    ({"policy": []}, "policy", "unknown key"),
])
def test_errors_name_file_field_and_fix(tmp_path: Path, data: object, field: str,
                                        words: str) -> None:
    err = error(tmp_path, data)
    assert err.source == str(tmp_path / "policies.yaml")
    assert err.field == field, str(err)
    assert words in err.message, str(err)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_deployments(tmp_path / "absent.yaml")


def test_overlapping_windows_on_shared_nodes_warn(tmp_path: Path) -> None:
    data = {"windows": [window("mw-a"),
                        window("mw-b", schedule="cron(0 4 ? * TUE *)", targets="web-1")]}
    warnings = check(tmp_path, data)
    assert len(warnings) == 1
    assert "mw-a and mw-b overlap on 1 node(s) (web-1)" in warnings[0]


def test_overlap_on_disjoint_nodes_or_times_is_fine(tmp_path: Path) -> None:
    disjoint = {"windows": [window("mw-a"), window("mw-b", targets="group:db")]}
    assert check(tmp_path, disjoint) == []
    apart = {"windows": [window("mw-a"), window("mw-b", schedule="cron(0 6 ? * TUE *)")]}
    assert check(tmp_path, apart) == []


def test_overlap_across_timezones(tmp_path: Path) -> None:
    # 02:00 UTC Tuesday vs 22:00 New York Monday (= 03:00 UTC Tuesday in November).
    data = {"windows": [window("mw-a"),
                        window("mw-b", schedule="cron(0 22 ? * MON *)",
                               schedule_timezone="America/New_York")]}
    assert len(check(tmp_path, data)) == 1


def test_cli_deployments_validate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchfleet.cli import app

    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY))
    ok = {"windows": [window("mw-a", inventory=str(inv)),
                      window("mw-b", inventory=str(inv), schedule="cron(0 3 ? * TUE *)")]}
    runner = CliRunner()
    res = runner.invoke(app, ["deployments", "validate", str(write(tmp_path, ok))])
    assert res.exit_code == 0, res.output
    assert "2 maintenance window(s) are valid" in res.output
    assert "mw-a and mw-b overlap" in res.output
    bad = {"windows": [window("mw-a", inventory=str(inv), cutoff_hours=9)]}
    res = runner.invoke(app, ["deployments", "validate", str(write(tmp_path, bad))])
    assert res.exit_code == 2
    assert "windows[0].cutoff_hours" in res.output


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"policies": [{"name": "pol-1", "schedul": "x"}]}, "policies[0].schedul",
     "unknown key 'schedul'; remove it or check its spelling; allowed keys: max_concurrency, "
     "max_errors, name, operation, scan_schedule,"),
    ({"windows": [window(colour="red")]}, "windows[0].colour",
     "unknown key 'colour'; remove it or check its spelling; allowed keys: name, schedule,"),
    ({"windows": [window(tasks=[{"name": "t", "opration": "Scan"}])]},
     "windows[0].tasks.0.opration",
     "unknown key 'opration'; did you mean 'operation'? allowed keys: max_concurrency,"),
])
def test_unknown_keys_are_named_with_the_allowed_ones(tmp_path: Path, data: object, field: str,
                                                      words: str) -> None:
    err = error(tmp_path, data)
    assert err.field == field, str(err)
    assert err.message.startswith(words), str(err)


def test_a_window_lists_its_registration_keys_as_allowed(tmp_path: Path) -> None:
    err = error(tmp_path, {"windows": [window(colour="red")]})
    assert err.message.endswith("enabled, inventory, targets, store, publish_report, report_uri, "
                                "tasks"), str(err)


def test_a_cron_that_never_fires_and_duplicate_task_names_are_errors(tmp_path: Path) -> None:
    """Issue 13 #10: both were accepted silently."""
    never = error(tmp_path, {"windows": [window(schedule="cron(0 1 30 2 ? *)")]})
    assert "never fires" in str(never) and never.field == "windows[0].schedule"
    twice = error(tmp_path, {"windows": [window(tasks=[
        {"name": "scan", "priority": 0, "operation": "Scan"},
        {"name": "scan", "priority": 1, "operation": "Scan"}])]})
    assert "task name 'scan' appears twice" in str(twice) and twice.field == "windows[0].tasks"


def test_an_at_schedule_in_the_past_is_a_warning(tmp_path: Path) -> None:
    past = f"at({(NOW - timedelta(days=3)):%Y-%m-%dT%H:%M:%S})"
    warnings = check(tmp_path, {"windows": [window(schedule=past)]})
    assert any("will not run again" in w for w in warnings), warnings


def test_a_missing_hooks_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = {"name": "install", "priority": 0, "operation": "Install", "hooks": "nope.yaml"}
    missing = error(tmp_path, {"windows": [window(tasks=[task])]})
    assert "hooks file 'nope.yaml' does not exist" in str(missing)
    assert missing.field == "windows[0].tasks[0].hooks"
    (tmp_path / "nope.yaml").write_text("pre_install: {command: 'true'}\n")
    assert check(tmp_path, {"windows": [window(tasks=[task])]}) == []
