"""Cells for CSV files that people open in spreadsheet programs (pure; no I/O).

A CSV export is read by Excel, LibreOffice Calc, WPS or Google Sheets, which take a cell beginning
with ``=``, ``+``, ``-`` or ``@`` — or with a tab or carriage return before one — as a formula:
``=HYPERLINK("http://evil","x")`` in a party's name becomes a live link in a regulator's audit
sheet, ``=cmd|' /C calc'!A0`` a DDE command (CSV or formula injection). The text in our exports
comes from parties and exchange platforms (names, reasons, ids), so every text cell is neutralised
as OWASP's "CSV Injection" guidance says: a cell that begins with one of those characters is
prefixed with a single quote, which the spreadsheet reads as "this is text" and does not show.
OWASP ASVS 5.0 (requirement 1.2.10) also lists NUL, which the API refuses anyway; it is covered
here too so the helper does not depend on that. Quoting and doubling of embedded double quotes
(RFC 4180 §2.6–2.7) stays the ``csv`` module's job.

Numbers are left as numbers: they are written by us, not typed by anyone, and a spreadsheet reads
them as values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\x00")
"""First characters that make a spreadsheet program read a cell as a formula (OWASP, ASVS)."""


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet evaluates: a string beginning with a formula trigger
    gets a leading ``'``; anything else (other strings, numbers, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``csv.DictWriter`` row with every cell passed through :func:`safe_cell`."""
    return {key: safe_cell(value) for key, value in row.items()}
