"""Inline SVG charts for the HTML dashboard, drawn in Python (no JavaScript, no network).

Each function returns one ``<svg>`` element as text. Labels and values are escaped here with
:func:`esc` (text from the store is hostile: tag values, node ids, package names), so callers
pass plain values. Every bar and point carries its number twice: as a visible label and as a
``<title>`` (the browser's tooltip), so the numbers are in the page, not only in the picture.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from patchfleet.report.csv_safety import safe_cell

__all__ = ["COLOURS", "Bar", "Segment", "esc", "hbars", "line_chart", "stacked_hbars"]

COLOURS: Final = {
    "compliant": "#2e7d32",
    "non_compliant": "#c62828",
    "failed": "#6d4c41",
    "bar": "#1565c0",
    "bar2": "#90caf9",
    "line": "#2e7d32",
    "grid": "#d0d7de",
    "text": "#1f2328",
}
_FONT: Final = 'font-family="system-ui, sans-serif" font-size="12"'
_LABEL_CHARS: Final = 26


def esc(value: object) -> str:
    """``value`` as HTML text: None as an em dash, a formula start neutralised as in the CSVs
    (:func:`~patchfleet.report.csv_safety.safe_cell`), then HTML-escaped (quotes too)."""
    if value is None:
        return "\u2014"
    if isinstance(value, float):
        return _num(value)
    return html.escape(str(safe_cell(value) if isinstance(value, str) else value), quote=True)


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "\u2026"


def _num(value: float) -> str:
    """A number as people write it: 24 rather than 24.0, 33.3 as is."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a stacked bar: its name (legend), value and colour."""

    name: str
    value: int
    colour: str


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: a label, a value and the text shown beside it (default: the value)."""

    label: str
    value: float
    note: str = ""


def stacked_hbars(rows: Sequence[tuple[str, Sequence[Segment]]], *, title: str,
                  width: int = 640) -> str:
    """Horizontal stacked bars, one per row (label, segments), each segment's count written in
    it when there is room and beside the bar in ``a / b / c`` form always."""
    label_w, right_w, row_h = 190, 120, 26
    plot_w = width - label_w - right_w
    total_max = max((sum(s.value for s in segs) for _, segs in rows), default=0) or 1
    legend = rows[0][1] if rows else ()
    height = 30 + row_h * len(rows) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             f"<title>{esc(title)}</title>"]
    x = label_w
    for seg in legend:
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{seg.colour}"/>'
                     f'<text x="{x + 14}" y="15" fill="{COLOURS["text"]}">{esc(seg.name)}</text>')
        x += 24 + 7 * len(seg.name)
    for i, (label, segs) in enumerate(rows):
        y = 28 + i * row_h
        parts.append(f'<g class="bar-row" data-label="{esc(label)}">'
                     f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" '
                     f'fill="{COLOURS["text"]}">{esc(_short(label))}</text>')
        x0 = float(label_w)
        for seg in segs:
            w = plot_w * seg.value / total_max
            if seg.value:
                parts.append(
                    f'<rect x="{x0:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 8}" '
                    f'fill="{seg.colour}" data-value="{seg.value}"><title>{esc(label)}: '
                    f"{seg.value} {esc(seg.name)}</title></rect>")
                if w >= 8 * len(str(seg.value)) + 4:
                    parts.append(f'<text x="{x0 + w / 2:.1f}" y="{y + 15}" text-anchor="middle" '
                                 f'fill="#fff">{seg.value}</text>')
            x0 += w
        counts = " / ".join(str(s.value) for s in segs)
        parts.append(f'<text x="{width - right_w + 6}" y="{y + 15}" '
                     f'fill="{COLOURS["text"]}">{counts}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(bars: Sequence[Bar], *, title: str, unit: str = "", width: int = 640,
          colour: str = COLOURS["bar"]) -> str:
    """Horizontal bars, one per item, the value (and note) written beside each bar."""
    label_w, right_w, row_h = 190, 150, 24
    plot_w = width - label_w - right_w
    top = max((b.value for b in bars), default=0) or 1
    height = 8 + row_h * len(bars) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             f"<title>{esc(title)}</title>"]
    for i, bar in enumerate(bars):
        y = 8 + i * row_h
        w = plot_w * bar.value / top
        shown = _num(bar.value) + (unit and f" {unit}")
        parts.append(
            f'<g class="bar-row" data-label="{esc(bar.label)}">'
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" '
            f'fill="{COLOURS["text"]}">{esc(_short(bar.label))}</text>'
            f'<rect x="{label_w}" y="{y + 1}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{colour}" data-value="{_num(bar.value)}"><title>{esc(bar.label)}: '
            f"{esc(shown)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 13}" fill="{COLOURS["text"]}">'
            f"{esc(shown)}{esc(bar.note) if bar.note else ''}</text></g>")
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str, y_max: float = 100.0,
               unit: str = "%", width: int = 760, height: int = 240, max_labels: int = 16) -> str:
    """A line over ``points`` (x label, y or None for a gap), y from 0 to ``y_max`` with grid
    lines; each point is labelled with its value when there are at most ``max_labels`` points,
    else every k-th and the last one (all of them have a tooltip)."""
    left, right, top, bottom = 44, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)
    step = plot_w / (n - 1) if n > 1 else 0.0
    every = 1 if n <= max_labels else -(-n // max_labels)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             f"<title>{esc(title)}</title>"]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{COLOURS["grid"]}"/><text x="{left - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end" fill="{COLOURS["text"]}">{_num(y_max * frac)}</text>')

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + (step * i if n > 1 else plot_w / 2)
        return x, top + plot_h * (1 - min(max(value, 0.0), y_max) / (y_max or 1))

    path: list[str] = []
    for i, (_, value) in enumerate(points):
        if value is None:
            path.append("")
            continue
        x, y = xy(i, value)
        path.append(f"{'M' if not path or not path[-1] else 'L'}{x:.1f},{y:.1f}")
    d = " ".join(p for p in path if p)
    if d:
        parts.append(f'<path d="{d}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2"/>')
    for i, (label, value) in enumerate(points):
        shown = (i % every == 0 and n - 1 - i >= every) or i == n - 1
        x = xy(i, 0.0)[0]
        if shown:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'fill="{COLOURS["text"]}">{esc(label[5:] if len(label) == 10 else label)}'
                         "</text>")
        if value is None:
            continue
        _, y = xy(i, value)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS["line"]}" '
                     f'data-day="{esc(label)}" data-value="{_num(value)}"><title>{esc(label)}: '
                     f"{_num(value)}{unit}</title></circle>")
        if shown:
            parts.append(f'<text class="point-label" x="{x:.1f}" y="{y - 7:.1f}" '
                         f'text-anchor="middle" fill="{COLOURS["text"]}">{_num(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)
