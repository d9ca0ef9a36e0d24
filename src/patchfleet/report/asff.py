"""Security Hub findings (ASFF) for non-compliant nodes, as AWS Patch Manager sends them.

AWS sends one finding per non-compliant node (never for compliant ones), titled "Systems
Manager Patch Summary - Managed Instance Non-Compliant", typed "Software & Configuration
Checks/Patch Management/Compliance", with the node's patch counts in ``PatchSummary`` and its
compliance summary as an ``AwsSsmPatchCompliance`` resource; the severity is the highest
compliance level among its non-compliant patches. patchfleet builds the same findings from the
store and writes them to a JSON file; :func:`send_findings` imports them with
``BatchImportFindings`` (100 per call, the API's limit).

Differences, all forced by not being AWS: the ``ProductArn`` is the account's own custom
product (``product/<account>/default``: only AWS may import as ``aws/ssm-patch-manager``), a
node that is not an EC2 instance is still reported as ``AwsEc2Instance`` with its node id (as
AWS reports hybrid nodes), the "command id" in ``Id`` and ``GeneratorId`` is the run id, and a
patch with no compliance level (UNSPECIFIED) counts as INFORMATIONAL, the lowest ASFF label.
FAILED nodes (not scanned) get no finding, as in AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from patchfleet.atomicio import write_atomic
from patchfleet.errors import ConfigError, PublishError, StoreError

__all__ = ["FindingNode", "findings", "nodes_from_store", "send_findings", "write_findings"]

SCHEMA_VERSION: Final = "2018-10-08"
TITLE: Final = "Systems Manager Patch Summary - Managed Instance Non-Compliant"
TYPES: Final = ("Software & Configuration Checks/Patch Management/Compliance",)
DOCS_URL: Final = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                   "patch-manager-compliance-states.html")
LEVELS: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")
BATCH: Final = 100
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


@dataclass(frozen=True, slots=True)
class FindingNode:
    """What a finding says about one node (a ``node_summaries`` row and its level counts)."""

    node_id: str
    host: str
    status: str
    run_id: str
    baseline_id: str | None
    patch_group: str | None
    operation: str
    execution_type: str
    reboot_option: str | None
    started: datetime
    ended: datetime
    installed: int
    installed_other: int
    installed_rejected: int
    installed_pending_reboot: int
    missing: int
    failed: int
    overall_severity: str | None = None
    noncompliant_by_level: dict[str, int] = field(default_factory=dict)


def check_target(account_id: str, region: str) -> None:
    """ConfigError naming the flag when the account id or region cannot be AWS's."""
    if not _ACCOUNT.fullmatch(account_id):
        raise ConfigError(f"{account_id!r} is not an AWS account id: give the 12 digits of the "
                          "account that owns the Security Hub", source="--account-id")
    if not _REGION.fullmatch(region):
        raise ConfigError(f"{region!r} is not an AWS region: give one like eu-west-1 (or set "
                          "AWS_REGION)", source="--region")


def _iso(value: datetime) -> str:
    when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def severity_label(by_level: dict[str, int]) -> str:
    """The highest compliance level with a non-compliant patch (UNSPECIFIED: INFORMATIONAL)."""
    for level in LEVELS[:-1]:
        if by_level.get(level):
            return level
    return "INFORMATIONAL"


def _compliance_summary(node: FindingNode) -> dict[str, Any]:
    counts = {f"NonCompliant{level.title()}Count": node.noncompliant_by_level.get(level, 0)
              for level in LEVELS}
    return {
        "ComplianceType": "Patch", "Status": node.status,
        "OverallSeverity": node.overall_severity or "UNSPECIFIED",
        "PatchBaselineId": node.baseline_id or "", "PatchGroup": node.patch_group or "",
        "ExecutionType": node.execution_type, **counts,
    }


def finding(node: FindingNode, account_id: str, region: str, now: datetime) -> dict[str, Any]:
    """The ASFF finding of one non-compliant node."""
    instance = f"arn:aws:ec2:{region}:{account_id}:instance/{node.node_id}"
    label = severity_label(node.noncompliant_by_level)
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": (f"arn:aws:patchmanager:{region}:{account_id}:instance/{node.node_id}/document/"
               f"AWS-RunPatchBaseline/run-command/{node.run_id}"),
        "ProductArn": f"arn:aws:securityhub:{region}:{account_id}:product/{account_id}/default",
        "ProductName": "patchfleet",
        "CompanyName": "patchfleet",
        "GeneratorId": node.run_id,
        "AwsAccountId": account_id,
        "Types": list(TYPES),
        "CreatedAt": _iso(node.ended),
        "UpdatedAt": _iso(now),
        "Severity": {"Label": label},
        "Title": TITLE,
        "Description": (f"{node.node_id} is non-compliant with patch baseline "
                        f"{node.baseline_id or '(none)'}: {node.missing} missing, {node.failed} "
                        f"failed, {node.installed_pending_reboot} pending reboot, "
                        f"{node.installed_rejected} rejected but installed."),
        "Remediation": {"Recommendation": {
            "Text": "Install the approved patches (patchfleet install) and reboot if needed.",
            "Url": DOCS_URL}},
        "ProductFields": {"ProviderName": "patchfleet", "patchfleet/RunId": node.run_id,
                          "patchfleet/Host": node.host},
        "Resources": [
            {"Type": "AwsEc2Instance", "Id": instance, "Partition": "aws", "Region": region},
            {"Type": "AwsSsmPatchCompliance", "Id": instance, "Partition": "aws",
             "Region": region,
             "Details": {"AwsSsmPatchCompliance": {"Patch": {
                 "ComplianceSummary": _compliance_summary(node)}}}},
        ],
        "Compliance": {"Status": "FAILED"},
        "RecordState": "ACTIVE",
        "PatchSummary": {
            "Id": node.baseline_id or "",
            "InstalledCount": node.installed, "MissingCount": node.missing,
            "FailedCount": node.failed, "InstalledOtherCount": node.installed_other,
            "InstalledRejectedCount": node.installed_rejected,
            "InstalledPendingReboot": node.installed_pending_reboot,
            "OperationStartTime": _iso(node.started), "OperationEndTime": _iso(node.ended),
            "RebootOption": node.reboot_option or "",
            "Operation": node.operation.title(),
        },
    }


def findings(nodes: Iterable[FindingNode], account_id: str, region: str,
             now: datetime | None = None) -> list[dict[str, Any]]:
    """One finding per NON_COMPLIANT node of ``nodes`` (the others get none)."""
    check_target(account_id, region)
    when = now or datetime.now(UTC)
    return [finding(n, account_id, region, when) for n in nodes if n.status == "NON_COMPLIANT"]


_NODES_SQL = """
SELECT n.node_id, n.host, n.status, n.run_id, n.baseline_id, n.patch_group, n.operation,
       n.execution_type, n.reboot_option, n.operation_start_time, n.operation_end_time,
       n.installed_count, n.installed_other_count, n.installed_rejected_count,
       n.installed_pending_reboot_count, n.missing_count, n.failed_count, n.overall_severity,
       s.noncompliant_critical_count, s.noncompliant_high_count, s.noncompliant_medium_count,
       s.noncompliant_low_count, s.noncompliant_informational_count,
       s.noncompliant_unspecified_count
FROM {nodes} AS n
JOIN noncompliant_severity_counts AS s ON s.node_id = n.node_id AND s.run_id = n.run_id
{where}
ORDER BY n.node_id
"""


def nodes_from_store(store: Any, run_id: str | None = None) -> list[FindingNode]:
    """The nodes of ``run_id`` (None: each node's latest result) from a ComplianceStore."""
    if run_id is None:
        sql, params = _NODES_SQL.format(nodes="latest_node_summaries", where=""), {}
    else:
        sql = _NODES_SQL.format(nodes="node_summaries", where="WHERE n.run_id = $run")
        params = {"run": run_id}
    _, rows = store.query(sql, params)
    if not rows:
        what = f"run {run_id!r}" if run_id else "any run"
        raise StoreError(f"the compliance store {store.root} has no node results for {what}: "
                         "run `patchfleet scan` first, or check the run id")
    names = [f.name for f in fields(FindingNode)][:17]
    out = []
    for row in rows:
        (*head, severity, c, h, m, lo, i, u) = row
        values: dict[str, Any] = dict(zip(names, head, strict=True))
        out.append(FindingNode(**values, overall_severity=severity, noncompliant_by_level=dict(
            zip(LEVELS, (c, h, m, lo, i, u), strict=True))))
    return out


def write_findings(path: Path, found: Sequence[dict[str, Any]]) -> Path:
    """Write ``found`` as one JSON array (BatchImportFindings' ``Findings``), atomically."""
    write_atomic(path, json.dumps(list(found), indent=2) + "\n", parents=True)
    return path


def send_findings(found: Sequence[dict[str, Any]], region: str,
                  client_factory: Callable[[], Any] | None = None) -> int:
    """Import ``found`` into Security Hub (``BatchImportFindings``, 100 per call); the number
    imported. PublishError naming the first refused finding and why, or the AWS error."""
    import boto3
    import botocore.exceptions

    client = client_factory() if client_factory else boto3.client("securityhub",
                                                                  region_name=region)
    imported = 0
    for start in range(0, len(found), BATCH):
        chunk = list(found[start:start + BATCH])
        try:
            answer = client.batch_import_findings(Findings=chunk)
        except botocore.exceptions.NoCredentialsError:
            raise PublishError("Security Hub: no AWS credentials; set AWS_PROFILE or "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise PublishError(f"Security Hub refused BatchImportFindings ({exc}); "
                               f"{imported} finding(s) were imported before") from None
        imported += int(answer.get("SuccessCount", 0))
        if failed := answer.get("FailedFindings"):
            first = failed[0]
            raise PublishError(
                f"Security Hub refused {len(failed)} finding(s), e.g. {first.get('Id')}: "
                f"{first.get('ErrorCode')} {first.get('ErrorMessage')}; {imported} imported")
    return imported
