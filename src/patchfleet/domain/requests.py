"""What one run is asked to do: AWS-RunPatchBaseline's parameters plus the agentless extras.

:class:`PatchRequest` is the typed request of the ``patch-nodes`` flow. Its AWS parameters keep
their AWS names and values (``Operation`` Scan | Install, ``RebootOption``, ``SnapshotId``,
``BaselineOverride``, ``InstallOverrideList``); the rest is what a tool without an agent needs
(where the nodes and the store are, which nodes, how fast, hooks, reports). The flow exposes the
same fields as its parameters, typed with these enums, so Prefect's parameter schema refuses a
bad ``-p operation=...`` when the run is created rather than on the worker.

``Operation`` here is AWS's parameter (``Scan``); the store's column holds
:class:`patchfleet.domain.records.Operation` (``SCAN``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from patchfleet.domain.records import ExecutionType
from patchfleet.errors import ConfigError

__all__ = ["ExecutionType", "Operation", "PatchRequest", "RebootOption", "parse_deadline"]


class Operation(StrEnum):
    """AWS-RunPatchBaseline ``Operation``."""

    SCAN = "Scan"
    INSTALL = "Install"


class RebootOption(StrEnum):
    """AWS ``RebootOption`` plus patchfleet's ``RebootIfRequired`` (reboot only when the OS
    says a reboot is required)."""

    REBOOT_IF_NEEDED = "RebootIfNeeded"
    NO_REBOOT = "NoReboot"
    REBOOT_IF_REQUIRED = "RebootIfRequired"


SNAPSHOT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A snapshot id names a file in the store: 1-128 of A-Z a-z 0-9 . _ - (a GUID works)."""
SHARD_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[0-9]{1,4}$"
"""A shard run's ``shard`` value: the parent run id, ``/``, the shard's index."""

_DEADLINE_FIX = ("pass deadline as ISO-8601 with a UTC offset, e.g. 2026-01-01T05:00:00+00:00, "
                 "or leave it out for no deadline")


def parse_deadline(value: str | datetime | None) -> datetime | None:
    """A deadline as an aware UTC instant; ConfigError (source ``deadline``) naming the fix."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{value!r} is not a date and time; {_DEADLINE_FIX}",
                              source="deadline") from None
    if value.tzinfo is None:
        raise ConfigError(f"{value.isoformat()!r} has no UTC offset; {_DEADLINE_FIX}",
                          source="deadline")
    return value.astimezone(UTC)


class PatchRequest(BaseModel):
    """One ``patch-nodes`` run, validated. Field docs are the flow's parameter docs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: Operation = Operation.SCAN
    targets: str = "*"
    """Comma-separated selectors: ``*``, node ids (wildcards), ``tag:K=V``, ``tag-key:K``,
    ``group:PATCHGROUP``, ``os:OPERATING_SYSTEM``."""
    inventory: str | None = None
    """Inventory YAML, Ansible inventory or ``ec2://REGION?...``; None: the local node."""
    baseline_override: str | dict[str, str] | None = None
    """BaselineOverride: a baseline name, a YAML file or AWS JSON; or OperatingSystem ->
    baseline name (a patch policy's baselines, one per OS)."""
    snapshot_id: str | None = Field(default=None, pattern=SNAPSHOT_ID_PATTERN)
    reboot_option: RebootOption = RebootOption.REBOOT_IF_NEEDED
    install_override_list: str | None = None
    store: str | None = None
    baselines_dir: str | None = None
    refresh: bool = True
    concurrency: int = Field(default=50, ge=1, le=10000)
    batch_size: int = Field(default=100, ge=1, le=100_000)
    lock_timeout: int = Field(default=60, ge=0, le=3600)
    report_dir: str | None = None
    hooks: str | None = None
    max_concurrency: str | None = None
    max_errors: str | None = None
    dry_run: bool = False
    execution_type: ExecutionType = ExecutionType.COMMAND
    deadline: AwareDatetime | None = None
    """A CANCEL_TASK maintenance window's cutoff: from then on no node starts, and nodes in
    progress start no install and no reboot."""
    label: str | None = None
    """Prefixes the run's name (a policy or window task)."""
    node_lock_timeout: float = 3600
    """How long an Install waits for a node another run is installing on."""
    reports: bool = True
    """False: no CSV reports (the store is always written)."""
    report_uri: str | None = None
    """``s3://bucket/prefix``: upload the reports to ``prefix/date=.../run_id=.../``."""
    shards: int = Field(default=1, ge=1, le=1000)
    """Scan only: split the targets into this many shards, each run as a deployment run of
    ``shard_deployment`` that any worker of its pool may take; this run then commits them as
    one run. 1: no shards, everything runs here."""
    shard_size: int = Field(default=0, ge=0)
    """Scan only: at most this many nodes per shard instead (shards = ceil(targets /
    shard_size), known once the targets are resolved); wins over ``shards``. 0: use
    ``shards``."""
    shard_deployment: str = "patch-nodes/shard"
    """The deployment (``flow/deployment``) the shards run as."""
    shard_timeout: float = Field(default=21600, gt=0, le=7 * 86400)
    """Seconds a sharded run waits for each shard; a shard still running then is cancelled
    and its nodes are recorded FAILED."""
    shard: str | None = Field(default=None, pattern=SHARD_PATTERN)
    """Set by a sharded run on its shards (``PARENT_RUN_ID/INDEX``); not for users."""

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> datetime | None:
        if value is None or isinstance(value, str | datetime):
            return parse_deadline(value)
        return value  # type: ignore[no-any-return]  # pydantic reports the wrong type

    @model_validator(mode="after")
    def _sharding(self) -> PatchRequest:
        if self.sharded and self.operation is not Operation.SCAN:
            raise ValueError("shards: only a Scan is sharded; run an Install with shards 1 "
                             "and shard_size 0 (split the fleet with targets, or a policy per "
                             "group, instead)")
        if self.sharded and self.shard:
            raise ValueError("shards: a shard run is not sharded again; leave shards at 1 "
                             "and shard_size at 0")
        if self.sharded and not re.fullmatch(r"[^/\s]+/[^/\s]+", self.shard_deployment):
            raise ValueError("shard_deployment: give FLOW/DEPLOYMENT, e.g. patch-nodes/shard")
        return self

    @property
    def install(self) -> bool:
        return self.operation is Operation.INSTALL

    @property
    def sharded(self) -> bool:
        """Whether this run may split its targets into shards (``shards`` or ``shard_size``)."""
        return self.shards > 1 or self.shard_size > 0

    @property
    def shard_of(self) -> tuple[str, int] | None:
        """(parent run id, shard index) of a shard run, else None."""
        if self.shard is None:
            return None
        parent, _, index = self.shard.rpartition("/")
        return parent, int(index)

    def flow_parameters(self) -> dict[str, Any]:
        """The ``patch-nodes`` flow's parameters for this request (JSON-able)."""
        return self.model_dump(mode="json")
