"""Operator experience (issue 14): the 80-column summary, query formats, errors in the caller's
terms, the unreachable Prefect API, safe example deployments, auto-updater facts, the progress
line and the artifacts' content."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from patchfleet.cli import render
from patchfleet.cli.prefect_api import PrefectUnreachable, check_api
from patchfleet.cli.progress import Tally
from patchfleet.config.inventory import MISSING_INVENTORY
from patchfleet.config.policies import load_deployments
from patchfleet.config.sources import load_nodes_source
from patchfleet.domain.records import NodeStatus
from patchfleet.errors import ConfigError
from patchfleet.ops.caller_terms import for_deployment
from patchfleet.ops.deploy_plan import build_specs
from patchfleet.ops.summary import NodeRow, RunSummary
from patchfleet.parsers.restarts import parse_auto_updaters

ROOT = Path(__file__).resolve().parents[2]
PATCHFLEET = [sys.executable, str(Path(sys.executable).parent / "patchfleet")]


def _row(node_id: str, status: str, **kw: object) -> NodeRow:
    base: dict[str, object] = dict(
        node_id=node_id, host="h", platform="Debian GNU/Linux 12", baseline_id="b",
        status=status, overall_severity="", missing=0, installed=0, installed_other=0,
        pending_reboot=0, rejected=0, failed=0, failure_reason="", warnings="")
    base.update(kw)
    return NodeRow.model_validate(base)


def _summary() -> RunSummary:
    long_warning = "competing auto-updater packagekit: " + "very long detail " * 20
    return RunSummary(run_id="run-1", operation="SCAN", node_count=3, compliant=1,
                      non_compliant=1, failed=1, nodes=[
                          _row("web-1.example.internal", "NON_COMPLIANT", missing=94,
                               critical_non_compliant=12, security_non_compliant=30,
                               warning_list=[long_warning], warnings=long_warning),
                          _row("db-1", "COMPLIANT", installed=40),
                          _row("edge-7", "FAILED",
                               failure_reason="UNREACHABLE: connection refused\nmore detail"),
                      ], store="/var/lib/store")


def _render(width: int) -> str:
    buf = io.StringIO()
    render.print_summary(Console(file=buf, width=width, color_system=None), _summary())
    return buf.getvalue()


def test_reason_says_why() -> None:
    s = _summary()
    assert render.node_reason(s.nodes[0]) == "94 missing: 12 critical, 30 security"
    assert render.node_reason(s.nodes[1]) == ""
    assert render.node_reason(s.nodes[2]) == "UNREACHABLE: connection refused"


@pytest.mark.parametrize("width", [80, 200])
def test_summary_table_fits_and_keeps_words_whole(width: int) -> None:
    text = _render(width)
    table = text.split("compliant, ")[0]
    assert all(len(line) <= width for line in table.splitlines())
    for word in ("noncompliant", "ok", "failed", "web-1.example.internal"):
        assert word in table
    assert "warnings (1):" in text and text.index("warnings (1):") > text.index("1 failed")
    assert ("platform" in table) is (width >= render.WIDE)


def test_console_honours_columns_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    assert render.console().width == 72
    monkeypatch.delenv("COLUMNS")
    assert render.console().width == 160


def test_csv_and_json_lists_and_timestamps() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cols, rows = ["node", "cves", "at"], [("n1", ["CVE-1", "CVE-2"], ts), ("n2", [], None)]
    buf = io.StringIO()
    render.write_csv(buf, cols, rows)
    assert buf.getvalue().splitlines() == ["node,cves,at",
                                           "n1,CVE-1;CVE-2,2026-01-02T03:04:05+00:00", "n2,,"]
    buf = io.StringIO()
    render.write_json(buf, cols, rows)
    data = json.loads(buf.getvalue())
    assert data[0] == {"node": "n1", "cves": ["CVE-1", "CVE-2"],
                       "at": "2026-01-02T03:04:05+00:00"}
    assert data[1]["cves"] == []


def test_table_hides_empty_columns_and_vertical_reads_at_80() -> None:
    cols = ["node", "empty_a", "status", "empty_b"]
    rows = [("n1", None, "NON_COMPLIANT", []), ("n2", "", "COMPLIANT", None)]
    buf = io.StringIO()
    hidden = render.print_rows(Console(file=buf, width=80), cols, rows, vertical=False)
    assert hidden == ["empty_a", "empty_b"] and "empty_a" not in buf.getvalue()
    buf = io.StringIO()
    render.print_rows(Console(file=buf, width=80), cols, rows, vertical=True)
    assert buf.getvalue().splitlines()[:3] == ["-[ row 1 ]-", "node   : n1",
                                               "status : NON_COMPLIANT"]


def test_deployment_errors_name_the_parameter_not_the_flag() -> None:
    err = ConfigError(MISSING_INVENTORY, source="/etc/patchfleet/inventory.yaml")
    line = for_deployment(err)
    assert "--inventory" not in line and "deployment parameter `inventory`" in line
    assert line.startswith("/etc/patchfleet/inventory.yaml: file not found")
    line = for_deployment(ConfigError("must be between 1 and 10000", source="--concurrency"))
    assert line == "parameter concurrency: must be between 1 and 10000"
    assert "\n" not in for_deployment(ConfigError("a\nb", source="x"))


def test_check_api_on_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    with pytest.raises(PrefectUnreachable, match=r"does not answer.*prefect server start"):
        check_api(timeout=2)
    monkeypatch.delenv("PREFECT_API_URL")
    check_api()  # unset: a temporary server, nothing to check


def test_cli_with_a_stopped_prefect_server_is_one_line_exit_1(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PATCHFLEET_STORE": str(tmp_path / "store")}
    r = subprocess.run([*PATCHFLEET, "scan", "--no-refresh"], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 1, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "does not answer" in errors[0]
    assert "Traceback" not in r.stderr


def test_example_deployments_target_only_what_exists() -> None:
    dep = load_deployments(ROOT / "deployments" / "policies.yaml")
    for entry in [*dep.policies, *dep.windows]:
        assert entry.inventory, entry.name
        inv = load_nodes_source(str(ROOT / entry.inventory))
        assert [n.id for n in inv.nodes] == ["local"], entry.name
    prefect = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    for d in prefect["deployments"]:
        if d.get("parameters", {}).get("operation") == "Install":
            assert all(s["active"] is False for s in d["schedules"]), d["name"]


def test_install_deployments_are_created_paused_and_first_runs_wait() -> None:
    dep = load_deployments(ROOT / "deployments" / "policies.yaml")
    specs = {s.full_name: s for s in build_specs(dep, "deployments/policies.yaml",
                                                  datetime(2026, 1, 1, tzinfo=UTC))}
    assert specs["patch-policy/web-fleet-install"].installs
    assert specs["maintenance-window/patch-friday"].installs
    assert not specs["patch-policy/web-fleet-scan"].installs
    buf = io.StringIO()
    render.print_deployments(Console(file=buf, width=80), list(specs.values()))
    text = buf.getvalue()
    assert "patch-policy/web-fleet-install  (paused)" in text
    assert text.count("next runs (UTC): ") == 3
    assert all(len(line) <= 80 for line in text.splitlines())


def test_validate_warns_about_a_missing_patchfleet_inventory() -> None:
    env = {**os.environ, "PATCHFLEET_INVENTORY": "/nonexistent/inventory.yaml"}
    r = subprocess.run([*PATCHFLEET, "deployments", "validate", "deployments/policies.yaml"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "PATCHFLEET_INVENTORY=/nonexistent/inventory.yaml does not exist" in r.stderr


def test_packagekit_facts_say_installed_enabled_and_running_as_such() -> None:
    text = ("auto-updaters: 1\nsystemd: absent\npackage: packagekit\n"
            "unit: packagekit.service disabled\nunit: packagekit-offline-update.service "
            "disabled\npackagekitd: /usr/libexec/packagekitd\nend\n")
    (name, detail), = parse_auto_updaters(text).found
    assert name == "packagekit"
    assert detail.startswith("installed (/usr/libexec/packagekitd); not enabled: ")
    assert "running: not probed" in detail and "active" not in detail
    enabled = text.replace("packagekit.service disabled", "packagekit.service enabled")
    assert "; enabled: packagekit.service enabled" in parse_auto_updaters(enabled).found[0][1]


def test_progress_line() -> None:
    t = Tally(120, "scanned", clock=0.0)
    for status in [NodeStatus.COMPLIANT] * 30 + [NodeStatus.NON_COMPLIANT] * 8 + [
            NodeStatus.FAILED] * 2:
        t.add("n", status)
    assert t.line(now=10.0) == ("scanned 40/120 nodes  ok 30  noncompliant 8  failed 2  "
                                "4.0/s  ETA 0:20")
    assert Tally(0, "scanned", clock=0.0).line(now=1.0).endswith("ETA --:--")


def test_patch_summary_names_top_missing_failed_nodes_and_where_it_landed() -> None:
    from patchfleet.domain.records import Operation
    from patchfleet.domain.results import RunContext
    from patchfleet.ops.summary import markdown

    base = {c: 0 for c in ("installed_count", "installed_other_count",
                           "installed_pending_reboot_count", "installed_rejected_count",
                           "missing_count", "failed_count", "not_applicable_count")}
    base.update({f"noncompliant_{lv}": 0 for lv in ("critical", "high", "medium", "low",
                                                     "informational", "unspecified")})
    nodes = [{**base, "node_id": "a", "host": "10.0.0.1", "status": "FAILED",
              "failure_reason": "UNREACHABLE: refused\nsecond line"}]
    ctx = RunContext(run_id="r1", operation=Operation.SCAN, started_at=datetime.now(UTC))
    md = markdown(ctx, nodes, [("openssl", 12, "Critical")], "/srv/reports/r1", "/srv/store")
    assert "| `openssl` | 12 | Critical |" in md
    assert "- `a` (10.0.0.1): UNREACHABLE: refused\n" in md
    assert "CSV report: `/srv/reports/r1`" in md and "compliance store: `/srv/store`" in md


def test_window_summary_has_the_offset_and_the_next_occurrence() -> None:
    from flows.maintenance_window import _next_occurrence, schedule_text, window_markdown

    cfg = load_deployments(ROOT / "deployments" / "policies.yaml").window("patch-friday")
    assert schedule_text(cfg) == "cron(0 2 ? * TUE#2 *) + 3 day(s) (America/New_York)"
    nxt = _next_occurrence(cfg, datetime(2026, 1, 1, tzinfo=UTC))
    assert nxt == "2026-01-16T07:00:00Z"  # Tuesday Jan 13 + 3 days, 02:00 New York
    md = window_markdown({"window": cfg.name, "execution_id": "e", "phase": "NOT_STARTED",
                          "forced": False, "reason": "closed", "skipped": "closed",
                          "schedule": schedule_text(cfg), "next_occurrence": nxt})
    assert "- next occurrence: 2026-01-16T07:00:00Z" in md and "+ 3 day(s)" in md


def test_help_reads_at_80_columns_with_every_default() -> None:
    """`install --help` was 98 lines at 80 columns in rich's boxed layout, defaults cut off:
    click's plain layout keeps every line within 80 columns and shows each default."""
    from typer.testing import CliRunner

    from patchfleet.cli.app import app

    result = CliRunner().invoke(app, ["install", "--help"], terminal_width=80,
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80 and len(lines) <= 60
    text = " ".join(result.output.split())
    for shown in ("[default: RebootIfNeeded]", "[default: 60]", "--max-errors <str>",
                  "--dry-run", "--install-override-list <str>"):
        assert shown in text
