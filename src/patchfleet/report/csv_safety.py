"""Cells that a spreadsheet would run as a formula, made inert (OWASP "CSV Injection").

Report cells carry values nodes' owners control: EC2 tags, hostnames, package metadata. Excel,
LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)`` exfiltrates, ``=cmd|...`` ran commands in older Excel), and a
leading tab or carriage return hides one. Such a text cell gets a leading ``'``, which every
spreadsheet shows as the value itself and never evaluates; numbers are written as numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "safe_rows"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as it may go in a CSV cell: text that would start a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Iterable[object]) -> list[object]:
    return [safe_cell(v) for v in row]


def safe_rows(rows: Iterable[Sequence[object]]) -> Iterable[list[object]]:
    return (safe_row(r) for r in rows)
