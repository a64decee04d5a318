"""Database values as JSON values (``ledger.gateway.sources.json_ready``): column by column, the
same as :func:`plain` value by value, whatever a column mixes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.gateway.sources import json_ready, plain

_value = st.one_of(
    st.none(),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=8))])),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.binary(max_size=4),
    st.text(max_size=4),
    st.integers(),
    st.booleans(),
)


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Rows whose columns are often all dates (a PostgreSQL ``date``), sometimes mixed."""
    width = draw(st.integers(1, 4))
    column = st.one_of(st.lists(st.one_of(st.none(), st.dates())), st.lists(_value))
    columns = [draw(column) for _ in range(width)]
    height = min(map(len, columns))
    return [tuple(c[n] for c in columns) for n in range(height)]


@given(_rows())
def test_json_ready_is_plain_per_value(rows: list[tuple[Any, ...]]) -> None:
    assert [tuple(r) for r in json_ready(rows)] == [tuple(map(plain, r)) for r in rows]


def test_dates_and_datetimes() -> None:
    rows = [
        (date(2020, 1, 2), datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8)))),
        (None, None),
    ]
    assert [tuple(r) for r in json_ready(rows)] == [("2020-01-02", "2020-01-01T19:04:05Z"), (None, None)]
    assert json_ready([(Decimal("1.50"), b"\x01")]) == [(1.5, "0x01")]
