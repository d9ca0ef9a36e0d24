"""The compliance dashboard: one self-contained HTML page from the store's analyst views.

``patchfleet report --html`` writes ``dashboard.html`` beside the CSVs. :func:`load_dashboard`
reads what the page shows, each part from its analyst view (store/sql/): fleet compliance and
compliance by OS (``compliance_by_os``), by patch group (``compliance_by_patch_group``), the
trend per day (``fleet_trend``, the last :data:`TREND_DAYS` days), top missing patches and
CVEs (``top_missing_patches``, ``top_cves``), time to patch per severity
(``time_to_patch``) and the failed and non-compliant nodes with their reasons
(``noncompliant_nodes``). :func:`render_dashboard` turns that into the page: inline CSS and
inline SVG charts drawn in Python, no script, nothing fetched (a Content-Security-Policy
forbids it), so it opens from a folder, an S3 download or a mail attachment alike.

Every value from the store is hostile text (tag values, node ids and failure reasons come from
nodes' owners): it is HTML-escaped, and text starting with ``= + - @`` gets the CSVs' leading
``'`` (:mod:`patchfleet.report.csv_safety`), so a copy into a spreadsheet stays inert.

The page shows each node's latest result (what-if evaluations never count), whatever run a
report was asked for: it is the fleet's picture, the CSVs are the run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from patchfleet.errors import StoreError
from patchfleet.report.csv_reports import write_report_file
from patchfleet.report.svg_charts import (
    COLOURS,
    Bar,
    Segment,
    esc,
    hbars,
    line_chart,
    stacked_hbars,
)

if TYPE_CHECKING:
    from patchfleet.store.query import ComplianceStore

__all__ = ["DASHBOARD_FILE", "Dashboard", "StatusCounts", "load_dashboard", "render_dashboard",
           "write_dashboard"]

DASHBOARD_FILE: Final = "dashboard.html"
TREND_DAYS: Final = 90
TOP: Final = 10
NODE_ROWS: Final = 100
"""At most this many failed (and non-compliant) nodes are listed; the page says how many more."""

_CSP: Final = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "base-uri 'none'; form-action 'none'")


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """One row of a compliance-by view: a label and its nodes by status."""

    label: str | None
    nodes: int
    compliant: int
    non_compliant: int
    failed: int
    compliant_pct: float | None
    missing_patches: int = 0


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the page shows, as read from the store (rows in the views' own order)."""

    store: str
    generated_at: datetime
    fleet: StatusCounts
    by_os: Sequence[StatusCounts]
    by_patch_group: Sequence[StatusCounts]
    trend: Sequence[tuple[date, int, int, int, int, float | None]]
    top_missing: Sequence[tuple[str, int, str | None, Sequence[str]]]
    top_cves: Sequence[tuple[str, int, Sequence[str]]]
    time_to_patch: Sequence[tuple[str, str | None, int, int, float | None, float | None,
                                  float | None]]
    failed_nodes: Sequence[tuple[str, str | None, str | None, str | None, datetime | None]]
    failed_total: int
    noncompliant_nodes: Sequence[tuple[str, str | None, str | None, str | None, str | None]]
    noncompliant_total: int


def _counts(label: str | None, row: Sequence[Any]) -> StatusCounts:
    nodes, compliant, non_compliant, failed, pct, missing = row
    return StatusCounts(label, int(nodes), int(compliant), int(non_compliant), int(failed),
                        None if pct is None else float(pct), int(missing or 0))


_COUNT_COLUMNS: Final = ("nodes, compliant_nodes, non_compliant_nodes, failed_nodes, "
                         "compliant_pct, missing_patches")


_NODES_SQL: Final = """
SELECT status, node_id, host, patch_group, overall_severity, reason, last_report_time
FROM noncompliant_nodes
QUALIFY row_number() OVER (PARTITION BY status ORDER BY coalesce(list_position(
    ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNSPECIFIED'], overall_severity), 7),
    node_id) <= $n
ORDER BY status = 'FAILED' DESC, coalesce(list_position(
    ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNSPECIFIED'], overall_severity), 7),
    node_id
"""
"""The first NODE_ROWS failed and the first NODE_ROWS non-compliant nodes, in the view's order
(worst first), in one pass over the view."""


def load_dashboard(store: ComplianceStore, *, now: datetime | None = None) -> Dashboard:
    """Read the dashboard's data from ``store``'s analyst views (about ten small queries;
    ``time_to_patch`` is the costly one on a long history, see the README)."""
    _, os_rows = store.query(f"SELECT operating_system, {_COUNT_COLUMNS} FROM compliance_by_os")
    by_os = [_counts(r[0], r[1:]) for r in os_rows]
    nodes = sum(r.nodes for r in by_os)
    compliant = sum(r.compliant for r in by_os)
    failed = sum(r.failed for r in by_os)
    fleet = StatusCounts(
        "fleet", nodes, compliant, sum(r.non_compliant for r in by_os), failed,
        round(100.0 * compliant / (nodes - failed), 1) if nodes > failed else None,
        sum(r.missing_patches for r in by_os))
    _, group_rows = store.query(
        f"SELECT patch_group, {_COUNT_COLUMNS} FROM compliance_by_patch_group")
    _, trend = store.query(
        "SELECT * FROM (SELECT day, nodes, compliant_nodes, non_compliant_nodes, failed_nodes, "
        "compliant_pct FROM fleet_trend ORDER BY day DESC LIMIT $days) ORDER BY day",
        {"days": TREND_DAYS})
    _, missing = store.query(
        "SELECT package, nodes, compliance_level, cve_ids FROM top_missing_patches LIMIT $top",
        {"top": TOP})
    _, cves = store.query("SELECT cve_id, nodes, packages FROM top_cves LIMIT $top",
                          {"top": TOP})
    _, ttp = store.query("SELECT severity, classification, patched, still_missing, mean_hours, "
                         "p90_hours, max_hours FROM time_to_patch")
    _, node_rows = store.query(_NODES_SQL, {"n": NODE_ROWS})
    failed_rows = [r[1:] for r in node_rows if r[0] == "FAILED"]
    nc_rows = [r[1:] for r in node_rows if r[0] != "FAILED"]
    return Dashboard(
        store=str(store.root),
        generated_at=now or datetime.now(UTC),
        fleet=fleet,
        by_os=by_os,
        by_patch_group=[_counts(r[0], r[1:]) for r in group_rows],
        trend=[(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]),
                None if r[5] is None else float(r[5])) for r in trend],
        top_missing=[(str(r[0]), int(r[1]), r[2], list(r[3] or ())) for r in missing],
        top_cves=[(str(r[0]), int(r[1]), list(r[2] or ())) for r in cves],
        time_to_patch=[(str(r[0]), r[1], int(r[2]), int(r[3]), r[4], r[5], r[6]) for r in ttp],
        failed_nodes=[(str(r[0]), r[1], r[2], r[4], r[5]) for r in failed_rows],
        failed_total=failed,
        noncompliant_nodes=[(str(r[0]), r[1], r[2], r[3], r[4]) for r in nc_rows],
        noncompliant_total=fleet.non_compliant,
    )


# --- page -------------------------------------------------------------------------------------

_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}.meta{color:#59636e;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}.card{border:1px solid #d0d7de;
border-radius:6px;padding:10px 16px;min-width:130px}.card .n{font-size:26px;font-weight:600}
.card .l{font-size:12px;color:#59636e;text-transform:uppercase}
.compliant .n{color:#2e7d32}.non_compliant .n{color:#c62828}.failed .n{color:#6d4c41}
.grid{display:flex;gap:24px;flex-wrap:wrap}.grid>section{flex:1 1 520px;min-width:0;overflow-x:auto}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #d0d7de;
padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right}
td.reason{max-width:520px;overflow-wrap:anywhere}td:first-child{max-width:240px;
overflow-wrap:break-word}.empty{color:#59636e;font-style:italic}
details{margin:6px 0}summary{cursor:pointer;color:#0969da}
"""

_STATUS_SEGMENTS: Final = (("compliant", "compliant"), ("non-compliant", "non_compliant"),
                           ("failed", "failed"))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
           numeric: Sequence[int] = (), reason: int | None = None, cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            kind = " class=\"num\"" if i in numeric else " class=\"reason\"" if i == reason else ""
            cells.append(f"<td{kind}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _by_section(title: str, what: str, rows: Sequence[StatusCounts], none_label: str,
                section_id: str) -> str:
    if not rows:
        return f'<section id="{section_id}"><h2>{esc(title)}</h2>{_empty("no nodes")}</section>'
    chart = stacked_hbars(
        [(r.label if r.label is not None else none_label,
          [Segment(name, getattr(r, attr), COLOURS[attr]) for name, attr in _STATUS_SEGMENTS])
         for r in rows], title=title)
    table = _table(
        [what, "nodes", "compliant", "non-compliant", "failed", "compliant %", "missing patches"],
        [(r.label if r.label is not None else none_label, r.nodes, r.compliant, r.non_compliant,
          r.failed, _pct(r.compliant_pct), r.missing_patches) for r in rows],
        numeric=range(1, 7))
    return f'<section id="{section_id}"><h2>{esc(title)}</h2>{chart}{table}</section>'


def _fleet_section(d: Dashboard) -> str:
    f = d.fleet
    cards = "".join(
        f'<div class="card {cls}"><div class="n" data-count="{cls}">{esc(value)}</div>'
        f'<div class="l">{esc(label)}</div></div>'
        for cls, label, value in (
            ("nodes", "nodes", f.nodes), ("compliant", "compliant", f.compliant),
            ("non_compliant", "non-compliant", f.non_compliant), ("failed", "failed", f.failed),
            ("pct", "compliant (of scanned)", _pct(f.compliant_pct)),
            ("missing", "missing patches", f.missing_patches)))
    chart = stacked_hbars(
        [("fleet", [Segment(name, getattr(f, attr), COLOURS[attr])
                    for name, attr in _STATUS_SEGMENTS])], title="Fleet compliance")
    return (f'<section id="fleet"><h2>Fleet compliance</h2><div class="cards">{cards}</div>'
            f"{chart}</section>")


def _trend_section(d: Dashboard) -> str:
    title = "Compliant % per day (each node's latest state as of that day)"
    if not d.trend:
        return f'<section id="trend"><h2>Trend</h2>{_empty("no runs yet")}</section>'
    chart = line_chart([(day.isoformat(), pct) for day, *_, pct in d.trend], title=title)
    table = _table(["day", "nodes", "compliant", "non-compliant", "failed", "compliant %"],
                   [(day.isoformat(), n, c, nc, fl, _pct(p)) for day, n, c, nc, fl, p in d.trend],
                   numeric=range(1, 6))
    return (f'<section id="trend"><h2>Trend: {esc(title)}</h2>{chart}'
            f"<details><summary>the numbers, per day</summary>{table}</details></section>")


def _nodes(count: int) -> str:
    return " node" if count == 1 else " nodes"


def _top_sections(d: Dashboard) -> str:
    if d.top_missing:
        missing = hbars([Bar(pkg, nodes, f"{_nodes(nodes)} \u00b7 {level or 'UNSPECIFIED'}")
                         for pkg, nodes, level, _ in d.top_missing],
                        title="Top missing patches (nodes)")
        missing += _table(["package", "nodes", "compliance level", "CVEs"],
                          [(p, n, lv, ", ".join(c)) for p, n, lv, c in d.top_missing],
                          numeric=(1,))
    else:
        missing = _empty("no patch is missing")
    if d.top_cves:
        cves = hbars([Bar(cve, nodes, _nodes(nodes)) for cve, nodes, _ in d.top_cves],
                     title="Top open CVEs (nodes)", colour=COLOURS["non_compliant"])
        cves += _table(["CVE", "nodes", "fixed by"],
                       [(c, n, ", ".join(p)) for c, n, p in d.top_cves], numeric=(1,))
    else:
        cves = _empty("no open CVE (apt records carry CVE ids only when a baseline source "
                      "names them)")
    return (f'<div class="grid"><section id="top-missing"><h2>Top missing patches</h2>{missing}'
            f'</section><section id="top-cves"><h2>Top open CVEs</h2>{cves}</section></div>')


def _ttp_section(d: Dashboard) -> str:
    title = "Time to patch (first seen missing to installed)"
    if not d.time_to_patch:
        return f'<section id="time-to-patch"><h2>{esc(title)}</h2>{_empty("no data")}</section>'
    timed = [r for r in d.time_to_patch if r[4] is not None]
    chart = (hbars([Bar(f"{r[0]} / {r[1] or '-'}", float(r[4] or 0),
                        f" mean, p90 {r[5]:g} h" if r[5] is not None else " mean")
                    for r in timed], title=title, unit="h") if timed
             else _empty("nothing patched yet: no times"))
    table = _table(["severity", "classification", "patched", "still missing", "mean hours",
                    "p90 hours", "max hours"], d.time_to_patch, numeric=range(2, 7))
    return f'<section id="time-to-patch"><h2>{esc(title)}</h2>{chart}{table}</section>'


def _more(shown: int, total: int) -> str:
    return f"<p class=\"meta\">{shown} of {total} shown.</p>" if total > shown else ""


def _nodes_sections(d: Dashboard) -> str:
    if d.failed_nodes:
        failed = _table(["node", "host", "patch group", "reason", "last report"],
                        [(n, h, g, r, t.isoformat() if t else None)
                         for n, h, g, r, t in d.failed_nodes], reason=3, cls="failed-nodes")
        failed += _more(len(d.failed_nodes), d.failed_total)
    else:
        failed = _empty("no node failed")
    if d.noncompliant_nodes:
        nc = _table(["node", "host", "patch group", "highest severity", "why"],
                    d.noncompliant_nodes, reason=4, cls="noncompliant-nodes")
        nc += _more(len(d.noncompliant_nodes), d.noncompliant_total)
    else:
        nc = _empty("no node is non-compliant")
    return (f'<section id="failed"><h2>Failed nodes ({d.failed_total})</h2>{failed}</section>'
            f'<section id="noncompliant"><h2>Non-compliant nodes ({d.noncompliant_total})</h2>'
            f"{nc}</section>")


def render_dashboard(d: Dashboard) -> str:
    """The page (UTF-8 text): no script, no external reference."""
    generated = d.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join((
        _fleet_section(d),
        '<div class="grid">',
        _by_section("Compliance by patch group", "patch group", d.by_patch_group,
                    "(no patch group)", "by-patch-group"),
        _by_section("Compliance by operating system", "operating system", d.by_os,
                    "(unknown)", "by-os"),
        "</div>",
        _trend_section(d),
        _top_sections(d),
        _ttp_section(d),
        _nodes_sections(d),
    ))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>patchfleet compliance dashboard</title><style>{_STYLE}</style></head><body>"
        "<h1>patchfleet compliance dashboard</h1>"
        f'<p class="meta">Each node\'s latest result, from the store {esc(d.store)}; '
        f"generated {esc(generated)}. Compliant % counts scanned nodes only (a failed node "
        f"claims nothing either way).</p>{body}</body></html>\n"
    )


def write_dashboard(store: ComplianceStore, folder: Path, *,
                    now: datetime | None = None) -> Path:
    """Write ``folder/dashboard.html`` (atomically; the folder is created) from ``store``;
    return its path."""
    path = Path(folder) / DASHBOARD_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"can't create report folder {path.parent} ({exc.strerror or exc}): "
                         "choose another report folder or fix its permissions") from exc
    write_report_file(path, render_dashboard(load_dashboard(store, now=now)))
    return path
