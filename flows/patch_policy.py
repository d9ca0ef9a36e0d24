"""Flow: one run of a patch policy (spec section 5, Quick Setup patch policies).

A policy has two deployments: its scan schedule runs ``patch_policy(policy, "Scan")`` and, for a
``ScanAndInstall`` policy, its install schedule runs ``patch_policy(policy, "Install")``. Each run
is a ``patch-nodes`` subflow over the policy's inventory and targets, with the policy's baselines
(one per OS, as a BaselineOverride) and rate control, recorded with execution type PATCH_POLICY.
Patch groups don't apply (AWS ignores them for policies): the override covers every OS listed.
The subflow is tagged ``policy/<name>`` and named ``<name> <operation>-<N>-nodes``; with
``publish_report: false`` no CSV reports are written, with ``report_uri`` they are uploaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.runtime import flow_run

from flows.patch_nodes import patch_nodes
from patchfleet.config.policies import load_deployments
from patchfleet.domain.baseline_aws import to_aws_json
from patchfleet.domain.policies import DEFAULT_FILE
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import load_registry

OPERATIONS = ("Scan", "Install")


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"{params.get('policy', 'policy')}-{str(params.get('operation', 'Scan')).lower()}"


@flow(name="patch-policy", flow_run_name=_run_name, log_prints=False)
async def patch_policy(
    policy: str,
    operation: str = "Scan",
    file: str = DEFAULT_FILE,
    store: str | None = None,
    baselines_dir: str | None = None,
) -> dict[str, Any]:
    """Run ``operation`` (Scan or Install) of policy ``policy`` from ``file``."""
    logger = get_run_logger()
    pol = load_deployments(file).policy(policy)
    if operation not in OPERATIONS:
        raise ConfigError(f"{operation!r} is not Scan or Install", source="operation")
    if operation == "Install" and pol.operation != "ScanAndInstall":
        raise ConfigError(f"policy {pol.name} only scans; set operation: ScanAndInstall to "
                          "install", source=file, field="operation")
    registry = load_registry(baselines_dir)
    with tempfile.TemporaryDirectory(prefix="patchfleet-policy-") as tmp:
        override: str | None = None
        if pol.baselines:
            override = str(Path(tmp) / "baselines.json")
            Path(override).write_text(json.dumps(
                [to_aws_json(registry.get(name)) for name in pol.baselines.values()]),
                encoding="utf-8")
        logger.info("policy %s: %s on %s", pol.name, operation, pol.targets)
        with tags("patchfleet", f"policy/{pol.name}"):
            return await patch_nodes(
                operation=operation, targets=pol.targets, inventory=pol.inventory,
                baseline_override=override, store=store or pol.store,
                baselines_dir=baselines_dir, reboot_option=pol.reboot_option,
                hooks=pol.hooks if operation == "Install" else None,
                max_concurrency=pol.max_concurrency, max_errors=pol.max_errors,
                execution_type="PATCH_POLICY", label=pol.name, reports=pol.publish_report,
                report_uri=pol.report_uri if pol.publish_report else None,
            )
