"""What the CLI prints for people and for other programs: the run summary (fits 80 columns:
short status words, a reason that says why, warnings under the table), the rows of ``query``
(table, vertical, CSV, JSON) and the deployments ``deployments apply`` registers.

Width: rich's console follows ``COLUMNS`` and the terminal; a pipe without ``COLUMNS`` gets 160
so a CI log isn't squeezed into 80 columns.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from patchfleet.ops.deploy_plan import DeploymentSpec
from patchfleet.ops.summary import NodeRow, RunSummary
from patchfleet.report.csv_safety import safe_cell

__all__ = ["STATUS_WORDS", "console", "json_value", "node_reason", "print_deployments",
           "print_rows", "print_summary", "write_csv", "write_json"]

STATUS_WORDS = {"COMPLIANT": "ok", "NON_COMPLIANT": "noncompliant", "FAILED": "failed"}
"""The store's node status -> the word the summary table shows."""
_STATUS_STYLE = {"ok": "green", "noncompliant": "yellow", "failed": "red"}
WIDE = 120
"""From this width on, the summary also shows platform, baseline, other and rejected."""


def console(stderr: bool = False) -> Console:
    """A console that honours ``COLUMNS``; a pipe without ``COLUMNS`` is 160 wide."""
    c = Console(stderr=stderr)
    if not c.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        c = Console(stderr=stderr, width=160)
    return c


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def node_reason(row: NodeRow) -> str:
    """Why the node has its status, in one line: the failure's first line, or what is missing
    (``94 missing: 12 critical, 30 security``) and pending a reboot."""
    if row.status == "FAILED":
        return _first_line(row.failure_reason) or "could not be scanned"
    parts = []
    if row.missing:
        detail = [f"{n} {word}" for n, word in ((row.critical_non_compliant, "critical"),
                                                (row.security_non_compliant, "security")) if n]
        parts.append(f"{row.missing} missing" + (f": {', '.join(detail)}" if detail else ""))
    if row.pending_reboot:
        parts.append(f"{row.pending_reboot} pending reboot")
    if row.failed:
        parts.append(f"{row.failed} failed to install")
    if row.rejected:
        parts.append(f"{row.rejected} rejected installed")
    return "; ".join(parts)


def print_summary(out: Console, summary: RunSummary) -> None:
    """The closing table of a scan or install, then counts, warnings and where things landed."""
    wide = out.width >= WIDE
    table = Table(title=f"run {summary.run_id}", title_justify="left")
    longest = max((len(r.node_id) for r in summary.nodes), default=4)
    table.add_column("node", overflow="fold", min_width=min(longest, 24))
    if wide:
        table.add_column("platform", overflow="ellipsis", no_wrap=True)
        table.add_column("baseline", overflow="ellipsis", no_wrap=True, max_width=40)
    table.add_column("status", no_wrap=True)
    table.add_column("missing", justify="right", no_wrap=True)
    table.add_column("installed", justify="right", no_wrap=True)
    if wide:
        table.add_column("other", justify="right", no_wrap=True)
        table.add_column("rejected", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1, min_width=20)
    warned: list[tuple[str, str]] = []
    for row in summary.nodes:
        word = STATUS_WORDS.get(row.status, row.status.lower())
        cells: list[str | Text] = [row.node_id]
        if wide:
            cells += [row.platform, row.baseline_id]
        cells += [Text(word, style=_STATUS_STYLE.get(word, "")), str(row.missing),
                  str(row.installed)]
        if wide:
            cells += [str(row.installed_other), str(row.rejected)]
        cells.append(node_reason(row))
        table.add_row(*cells)
        warned += [(row.node_id, w) for w in row.warning_list]
    out.print(table)
    out.print(f"{summary.compliant} compliant, {summary.non_compliant} non-compliant, "
              f"{summary.failed} failed", highlight=False)
    if warned:
        out.print(f"warnings ({len(warned)}):", highlight=False)
        for node_id, w in warned:
            out.print(Text(f"  {node_id}: {_first_line(w, 300)}"), overflow="fold")
    _print_path(out, "Compliance store", summary.store)
    for path in (summary.node_summaries_file, summary.patch_states_file):
        _print_path(out, "Parquet snapshot", path)
    for path in summary.report_files:
        _print_path(out, "CSV report", path)
    out.print('Ask the store: patchfleet query "SELECT * FROM noncompliant_nodes"',
              highlight=False, soft_wrap=True)


def _print_path(out: Console, label: str, path: str | None) -> None:
    if path:
        out.print(f"{label}: {path}", highlight=False, soft_wrap=True)


def json_value(v: Any) -> Any:
    """A DuckDB value as JSON: ISO-8601 timestamps (``T``), lists and structs as such, and
    ``null`` for NaN and infinities (bare ``NaN`` is not JSON; many parsers reject it)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.hex()
    return v


def _cell(v: Any) -> str:
    """A value as one CSV field or table cell: lists joined by ``;``, ISO-8601 timestamps."""
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ";".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(json_value(v), sort_keys=True)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v)


def _csv_cell(v: Any) -> str:
    """A CSV field: text that a spreadsheet would run as a formula gets a leading ``'``
    (report.csv_safety); numbers and timestamps are written as they are."""
    text = _cell(v)
    return str(safe_cell(text)) if isinstance(v, str | list | tuple | dict) else text


def write_csv(stream: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """RFC 4180 CSV with a header row; a list value is one field, items joined by ``;``."""
    w = csv.writer(stream, lineterminator="\n")
    w.writerow(columns)
    w.writerows([_csv_cell(v) for v in r] for r in rows)


def write_json(stream: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A JSON array of objects, one per row; lists stay arrays, timestamps are ISO-8601."""
    data = [{c: json_value(v) for c, v in zip(columns, r, strict=True)} for r in rows]
    stream.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def print_rows(out: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               vertical: bool) -> list[str]:
    """``query``'s table (columns empty in every row left out) or vertical form (one
    ``column: value`` line per non-empty field, a header per row). Returns the hidden columns."""
    def empty(v: Any) -> bool:
        return v is None or v == "" or (isinstance(v, list | tuple) and not v)

    keep = [i for i, _ in enumerate(columns) if not rows or not all(empty(r[i]) for r in rows)]
    hidden = [c for i, c in enumerate(columns) if i not in keep]
    if vertical:
        label = max((len(columns[i]) for i in keep), default=0)
        for n, r in enumerate(rows, 1):
            out.print(f"-[ row {n} ]-", highlight=False)
            for i in keep:
                if not empty(r[i]):
                    out.print(Text(f"{columns[i]:<{label}} : {_cell(r[i])}"), overflow="fold")
        return hidden
    table = Table(pad_edge=False)
    for i in keep:
        table.add_column(columns[i], overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r[i]) for i in keep))
    out.print(table)
    return hidden


def print_deployments(out: Console, specs: Sequence[DeploymentSpec]) -> None:
    """Each deployment ``deployments apply`` registers: its schedule, its next three runs, and
    whether it is paused (installs start paused) or runs once on first deploy."""
    for spec in specs:
        state = "paused" if spec.installs or not spec.active else "active"
        out.print(Text.assemble((spec.full_name, "bold"), f"  ({state})"))
        out.print(Text(f"  schedule: {spec.schedule.describe()}"), overflow="fold")
        runs = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in spec.upcoming) or "-"
        out.print(Text(f"  next runs (UTC): {runs}"), overflow="fold")
        if spec.installs:
            out.print("  installs: created paused; apply prints how to resume it",
                      highlight=False)
        if spec.run_now:
            out.print("  first run: on first deploy (NextInterval false), with --yes",
                      highlight=False)
