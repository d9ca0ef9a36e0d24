"""Append an operation to the store's audit trail (store/audit.py), never failing the
operation for it: the run is already stored; a failed audit write is logged as a warning."""

from __future__ import annotations

import logging

from patchfleet.domain.results import RunContext
from patchfleet.errors import PatchfleetError
from patchfleet.ops.summary import RunSummary
from patchfleet.store.audit import AuditEntry, append_audit
from patchfleet.store.location import StoreRoot
from patchfleet.store.staging import StagingArea, read_node_table

log = logging.getLogger("patchfleet.audit")

__all__ = ["audit", "run_entry", "staged_baselines"]


def audit(root: StoreRoot, entry: AuditEntry) -> str | None:
    """Append ``entry``; where it went, or None (and a warning) when it could not be."""
    try:
        return append_audit(root, entry)
    except (PatchfleetError, OSError) as exc:
        log.warning("the %s of run %s is not in the audit trail: %s", entry.action,
                    entry.run_id, exc)
        return None


def staged_baselines(staging: StagingArea) -> list[str]:
    """``id@hash`` of every baseline the staged nodes were judged with."""
    table = read_node_table(staging)
    pairs = set(zip(table.column("baseline_id").to_pylist(),
                    table.column("baseline_hash").to_pylist(), strict=True))
    return sorted(f"{b}@{h}" if h else str(b) for b, h in pairs if b)


def run_entry(ctx: RunContext, summary: RunSummary, *, targets: str, target_count: int,
              baselines: list[str], dry_run: bool = False, stopped: bool = False,
              flow_run_id: str | None = None, deployment: str | None = None) -> AuditEntry:
    """The audit entry of a scan or install run."""
    action = "INSTALL_DRY_RUN" if dry_run else str(ctx.operation)
    outcome = ("stopped by the error threshold" if stopped else
               "planned (nothing installed)" if dry_run else "completed")
    return AuditEntry(
        action=action, run_id=ctx.run_id, outcome=outcome, targets=targets,
        target_count=target_count, baselines=baselines, snapshot_id=ctx.snapshot_id,
        reboot_option=ctx.reboot_option, nodes=summary.node_count,
        compliant=summary.compliant, non_compliant=summary.non_compliant,
        failed=summary.failed, prefect_flow_run_id=flow_run_id,
        prefect_deployment=deployment,
        detail=(f"execution type {ctx.execution_type}; inventory {ctx.inventory_source}"
                + (f"; started by {ctx.label}" if ctx.label else "")))
