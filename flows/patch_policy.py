"""Flow: one run of a patch policy (spec section 5, Quick Setup patch policies).

A policy has two deployments: its scan schedule runs ``patch_policy(policy, "Scan")`` and, for a
``ScanAndInstall`` policy, its install schedule runs ``patch_policy(policy, "Install")``. Each run
is a ``patch-nodes`` subflow over the policy's inventory and targets, with the policy's baselines
(one per OS, passed by name as the BaselineOverride) and rate control, recorded with execution
type PATCH_POLICY. Patch groups don't apply (AWS ignores them for policies): the override covers
every OS listed. The subflow is tagged ``policy/<name>`` and named
``<name> <operation>-<N>-nodes``; with ``publish_report: false`` no CSV reports are written, with
``report_uri`` they are uploaded.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import flow, get_run_logger, tags
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.patch_nodes import patch_nodes
from patchfleet.config.allowed_operations import refusal
from patchfleet.config.policies import load_deployments
from patchfleet.domain.policies import DEFAULT_FILE
from patchfleet.domain.requests import ExecutionType, Operation, RebootOption
from patchfleet.errors import ConfigError
from patchfleet.ops.summary import RunSummary


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"{params.get('policy', 'policy')}-{str(params.get('operation', 'Scan')).lower()}"


@flow(name="patch-policy", flow_run_name=_run_name, log_prints=False)
async def patch_policy(
    policy: str,
    operation: Operation = Operation.SCAN,
    file: str = DEFAULT_FILE,
    store: str | None = None,
    baselines_dir: str | None = None,
) -> RunSummary:
    """Run ``operation`` (Scan or Install) of policy ``policy`` from ``file``; an operation
    this worker's PATCHFLEET_OPERATIONS refuses fails the run at once, in one line."""
    logger = get_run_logger()
    if (refused := refusal([operation])) is not None:
        logger.error("%s", refused)
        return cast(RunSummary, Failed(message=refused))
    pol = load_deployments(file).policy(policy)
    install = operation == Operation.INSTALL
    if install and pol.operation != "ScanAndInstall":
        raise ConfigError(f"policy {pol.name} only scans; set operation: ScanAndInstall to "
                          "install", source=file, field="operation")
    logger.info("policy %s: %s on %s", pol.name, operation, pol.targets)
    with tags("patchfleet", f"policy/{pol.name}"):
        return await patch_nodes(
            operation=operation, targets=pol.targets, inventory=pol.inventory,
            baseline_override=dict(pol.baselines) or None, store=store or pol.store,
            baselines_dir=baselines_dir, reboot_option=RebootOption(pol.reboot_option),
            hooks=pol.hooks if install else None,
            max_concurrency=pol.max_concurrency, max_errors=pol.max_errors,
            execution_type=ExecutionType.PATCH_POLICY, label=pol.name,
            reports=pol.publish_report,
            report_uri=pol.report_uri if pol.publish_report else None,
        )
