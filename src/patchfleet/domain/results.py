"""What one run produced: run-level context and one result per node.

These are the inputs of the store writer, the CSV reports and the Prefect artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from patchfleet.domain.facts import NodeFacts
from patchfleet.domain.records import (
    ComplianceSummary,
    ExecutionType,
    NodeStatus,
    Operation,
    PatchRecord,
)


@dataclass(frozen=True, slots=True)
class RunContext:
    """Identity of one run (a flow run, whether from the CLI, a schedule or patch-now)."""

    run_id: str
    operation: Operation
    started_at: datetime
    snapshot_id: str | None = None
    execution_type: ExecutionType = ExecutionType.COMMAND
    reboot_option: str | None = None
    inventory_source: str | None = None
    """Where the run's nodes came from: the inventory path or ``ec2://`` URL (``local``: the
    embedded local node)."""
    label: str | None = None
    """What started the run, when a policy or window did: the policy name, or
    ``window/task``."""
    what_if: bool = False
    """A what-if evaluation of stored facts (``patchfleet evaluate --save``): kept apart from
    the latest-state views."""


@dataclass(frozen=True, slots=True)
class NodeResult:
    """The outcome for one node: its compliance, or why it could not be scanned."""

    node_id: str
    host: str
    summary: ComplianceSummary
    records: tuple[PatchRecord, ...]
    operation_start_time: datetime
    operation_end_time: datetime
    platform_name: str | None = None
    platform_version: str | None = None
    patch_group: str | None = None
    baseline_id: str | None = None
    failure_reason: str | None = None
    last_no_reboot_install_operation_time: datetime | None = None
    warnings: tuple[str, ...] = field(default=())
    restart_needed: tuple[str, ...] = field(default=())
    """Processes still running replaced (deleted) files: ``pid command file`` (or service)."""
    auto_updaters: tuple[str, ...] = field(default=())
    """Competing automatic updaters active on the node: ``name: detail``."""
    operating_system: str | None = None
    """AWS OperatingSystem value of the node (DEBIAN, ROCKY_LINUX, SUSE, ...), when scanned."""
    boot_id: str | None = None
    """The node's boot id at the end of the operation (pending-reboot tracking across runs)."""
    reboot_required: bool | None = None
    """The OS says a reboot is required (``/var/run/reboot-required``, ``needs-restarting -r``,
    ``zypper needs-rebooting``); None when not scanned."""
    reboot_required_packages: tuple[str, ...] = field(default=())
    """The packages the OS names as needing the reboot (when it names any)."""
    tags: tuple[tuple[str, str], ...] = field(default=())
    """The node's inventory tags, as (key, value) pairs."""
    baseline_hash: str | None = None
    """Content hash of the baseline the node was judged with (:func:`baseline_hash`)."""
    facts_run_id: str | None = None
    """The run whose stored facts a what-if judged (None: this run's own scan)."""
    facts: NodeFacts | None = field(default=None, compare=False, repr=False)
    """What the node showed (None: not scanned). Written to ``package_facts`` beside the
    verdicts, so a later what-if can judge them again."""

    @property
    def failed(self) -> bool:
        return self.summary.status is NodeStatus.FAILED
