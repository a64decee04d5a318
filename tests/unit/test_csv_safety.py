"""``ledger.spreadsheet``: CSV cells a spreadsheet program does not evaluate (OWASP CSV injection).

Checked against a naive reference of the rule, and by writing cells with the ``csv`` module and
reading them back: no cell of the file begins with a formula trigger, and a cell that needed no
quote comes back unchanged."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.spreadsheet import FORMULA_TRIGGERS, safe_cell, safe_row
from tests.unit import test_layering

ATTACKS = [
    '=HYPERLINK("http://evil","x")',
    "=cmd|' /C calc'!A0",
    "+cmd",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
    "\x00=1+1",
]


def reference(value: Any) -> Any:
    """The rule as OWASP states it, character by character."""
    if not isinstance(value, str) or value == "":
        return value
    return "'" + value if value[0] in "=+-@\t\r\x00" else value


def test_the_helper_is_pure() -> None:
    test_layering.test_pure_module_does_no_io("ledger/spreadsheet.py")


@pytest.mark.parametrize("attack", ATTACKS)
def test_formula_cells_get_a_leading_quote(attack: str) -> None:
    assert safe_cell(attack) == "'" + attack


@pytest.mark.parametrize(
    "value", ["", "贵阳市民政局", "a=b", " =1+1", "'=already quoted", "0x" + "ab" * 32, "GY-GA-001", "e-1"]
)
def test_other_text_is_unchanged(value: str) -> None:
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [None, 0, 12, 3.5, True])
def test_non_text_is_unchanged(value: Any) -> None:
    assert safe_cell(value) is value


def test_a_row_is_neutralised_cell_by_cell() -> None:
    row = {"accessor_name": ATTACKS[0], "record_count": 5, "purpose": "statistics", "reason": None}
    assert safe_row(row) == {
        "accessor_name": "'" + ATTACKS[0],
        "record_count": 5,
        "purpose": "statistics",
        "reason": None,
    }


@given(st.one_of(st.text(), st.none(), st.integers()))
def test_matches_the_reference(value: Any) -> None:
    assert safe_cell(value) == reference(value)
    assert set(FORMULA_TRIGGERS) == set("=+-@\t\r\x00")


@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\x00")), min_size=1, max_size=6))
def test_written_and_read_back_no_cell_starts_a_formula(cells: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out).writerow([safe_cell(c) for c in cells])
    (read,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert read == [safe_cell(c) for c in cells]
    assert not any(cell.startswith(FORMULA_TRIGGERS) for cell in read)
    assert [c[1:] if c != orig else c for c, orig in zip(read, cells, strict=True)] == cells
