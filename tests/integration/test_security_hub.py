"""ASFF findings into a real Security Hub API on loopback (moto's server): one finding per
non-compliant node with AWS Patch Manager's field values, written to a file and imported with
BatchImportFindings by `patchfleet findings --send`; FAILED and compliant nodes get none."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from patchfleet.cli.app import app
from patchfleet.config.baselines import embedded_baselines_dir, load_baselines
from patchfleet.domain.inventory import Inventory, Node
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.ops.scan import ScanOptions, failed_result, scan_nodes
from patchfleet.store.writer import write_run
from patchfleet.transport import ReplayConnector

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
T0 = datetime(2025, 7, 15, 9, 0, tzinfo=UTC)
ACCOUNT, REGION = "123456789012", "eu-west-1"


def _store(root: Path) -> None:
    registry = load_baselines(embedded_baselines_dir())
    results = []
    for family, case, count in (("apt", "debian12-host", 2), ("dnf", "rocky9-upgraded", 1)):
        nodes = Inventory(nodes=[Node(id=f"{case}-{i}", tags={"PatchGroup": "web"})
                                 for i in range(count)]).resolved()
        connector = ReplayConnector.fleet(GOLDEN / family / case)
        results += asyncio.run(scan_nodes(nodes, registry, ScanOptions(now=T0), connector))
    gone = Inventory(nodes=[Node(id="gone")]).resolved()[0]
    results.append(failed_result(gone, T0, "UNREACHABLE: connection refused"))
    write_run(root, RunContext(run_id="run-asff", operation=Operation.SCAN, started_at=T0),
              results)


def test_findings_are_written_and_imported(moto_endpoint: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ENDPOINT_URL_SECURITYHUB": moto_endpoint,
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_CONFIG_FILE": str(tmp_path / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    store = tmp_path / "store"
    _store(store)
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(app, ["findings", "--store", str(store), "--account-id", ACCOUNT,
                                      "--region", REGION, "--out", str(out), "--send"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    statuses = {"debian12-host-0": "NON_COMPLIANT", "debian12-host-1": "NON_COMPLIANT"}
    assert sorted(f["Resources"][0]["Id"].rsplit("/", 1)[1] for f in written) == sorted(statuses)
    first = written[0]
    assert first["Title"] == "Systems Manager Patch Summary - Managed Instance Non-Compliant"
    assert first["Types"] == ["Software & Configuration Checks/Patch Management/Compliance"]
    assert first["Id"] == (f"arn:aws:patchmanager:{REGION}:{ACCOUNT}:instance/debian12-host-0/"
                           "document/AWS-RunPatchBaseline/run-command/run-asff")
    assert first["GeneratorId"] == "run-asff"
    assert first["PatchSummary"]["Id"] == "AWS-DebianDefaultPatchBaseline"
    assert first["PatchSummary"]["Operation"] == "Scan"
    assert first["PatchSummary"]["MissingCount"] > 0
    summary = first["Resources"][1]["Details"]["AwsSsmPatchCompliance"]["Patch"][
        "ComplianceSummary"]
    assert summary["Status"] == "NON_COMPLIANT" and summary["PatchGroup"] == "web"
    assert f"imported {len(written)} finding(s) into Security Hub ({REGION})" in result.output

    hub = boto3.client("securityhub", region_name=REGION, endpoint_url=moto_endpoint)
    stored = hub.get_findings()["Findings"]
    assert sorted(f["Id"] for f in stored) == sorted(f["Id"] for f in written)

    bad = CliRunner().invoke(app, ["findings", "--store", str(store), "--account-id", "42",
                                   "--region", REGION])
    assert bad.exit_code == 2 and "--account-id" in bad.output
