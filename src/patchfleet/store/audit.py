"""The audit trail: one row per operation (scan, install, what-if, report, findings,
deployments apply), appended to the store and never rewritten.

Each entry is its own Parquet file, ``audit/date=YYYY-MM-DD/run_id=<run>/entry-<id>.parquet``
(``run`` is the run the entry is about: the scan's or install's run id, the what-if's, the run
a report was written from or ``latest``, ``deployments`` for an apply), written under a fresh
name (local: staged and renamed; S3: a conditional put), so an entry is never overwritten or
changed and a reader sees it whole or not at all. Who: the OS user and host of the controller,
and the Prefect flow run and deployment when it ran in one. What: the targets as given and how
many nodes they resolved to, the baselines (id and content hash), the snapshot id, the reboot
option, and the outcome counts. The ``audit`` view reads them.

A failed audit write does not undo the operation it records (the store and reports are
already written): the caller warns, naming the store and the reason.
"""

from __future__ import annotations

import getpass
import io
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from patchfleet.atomicio import commit, stage
from patchfleet.errors import StoreError
from patchfleet.store.location import StoreLocation, StoreRoot
from patchfleet.store.s3_access import StoreBucket

AUDIT: Final = "audit"
_STR = pa.string()
AUDIT_SCHEMA: Final = pa.schema([
    pa.field("entry_id", _STR, nullable=False),
    pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("action", _STR, nullable=False),
    pa.field("os_user", _STR),
    pa.field("controller", _STR),
    pa.field("prefect_flow_run_id", _STR),
    pa.field("prefect_deployment", _STR),
    pa.field("targets", _STR),
    pa.field("target_count", pa.int32()),
    pa.field("baselines", pa.list_(pa.field("item", _STR, nullable=False))),
    pa.field("snapshot_id", _STR),
    pa.field("reboot_option", _STR),
    pa.field("nodes", pa.int32()),
    pa.field("compliant", pa.int32()),
    pa.field("non_compliant", pa.int32()),
    pa.field("failed", pa.int32()),
    pa.field("outcome", _STR),
    pa.field("detail", _STR),
    pa.field("run_id", _STR, nullable=False),
])
_RUN_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ACTIONS: Final = ("SCAN", "INSTALL", "INSTALL_DRY_RUN", "WHAT_IF", "REPORT", "FINDINGS",
                  "DEPLOYMENTS_APPLY")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operation, as the audit table stores it (see the module docstring)."""

    action: str
    run_id: str
    outcome: str
    targets: str | None = None
    target_count: int | None = None
    baselines: Sequence[str] = ()
    """``id@hash`` of each baseline the operation judged with."""
    snapshot_id: str | None = None
    reboot_option: str | None = None
    nodes: int | None = None
    compliant: int | None = None
    non_compliant: int | None = None
    failed: int | None = None
    detail: str | None = None
    prefect_flow_run_id: str | None = None
    prefect_deployment: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    os_user: str = field(default_factory=lambda: _user())
    controller: str = field(default_factory=socket.gethostname)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        return f"uid {os.getuid()}"


def _table(entry: AuditEntry, entry_id: str) -> pa.Table:
    row = asdict(entry)
    row["baselines"] = list(entry.baselines)
    row["entry_id"] = entry_id
    return pa.Table.from_pylist([row], schema=AUDIT_SCHEMA)


def append_audit(root: StoreRoot, entry: AuditEntry) -> str:
    """Append ``entry`` to the store's audit trail; where it went. StoreError when it can't
    be written (nothing half-written is left)."""
    if entry.action not in ACTIONS:
        raise ValueError(f"unknown audit action {entry.action!r}")
    if not _RUN_ID.fullmatch(entry.run_id):  # it names a folder
        raise StoreError(f"audit entry for run {entry.run_id!r}: not a usable run id")
    location = StoreLocation.of(root)
    entry_id = f"{entry.occurred_at.astimezone(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(6)}"
    relative = (f"{AUDIT}/date={entry.occurred_at.astimezone(UTC).date().isoformat()}/"
                f"run_id={entry.run_id}/entry-{entry_id}.parquet")
    buffer = io.BytesIO()
    table = _table(entry, entry_id).drop_columns(["run_id"])
    pq.write_table(table.replace_schema_metadata({b"patchfleet.table": AUDIT.encode()}),
                   buffer, compression="zstd")
    data = buffer.getvalue()
    if location.is_s3:
        StoreBucket(location).call("write", "put_object", Key=location.key(relative),
                                   Body=data, ContentType="application/vnd.apache.parquet",
                                   IfNoneMatch="*")
        return location.uri_of(relative)
    final = location.local / relative
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        commit(stage(final, lambda fh: fh.write(data)), final)
    except OSError as exc:
        raise StoreError(f"could not append to the audit trail in {location.local} "
                         f"({exc.strerror or exc}): check the store folder's permissions") \
            from exc
    return str(final)


def audit_files(root: Path) -> list[Path]:
    """Every entry file of a local store's audit trail."""
    folder = root / AUDIT
    return sorted(folder.glob("date=*/run_id=*/entry-*.parquet")) if folder.is_dir() else []
