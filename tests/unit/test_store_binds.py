"""The append path's own bind processors on SQLite write what SQLAlchemy's would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, String
from sqlalchemy.dialects import sqlite

from ledger.log.store import sqlite_bind_processor

DIALECT = sqlite.dialect()
ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))])


def _theirs(column_type: DateTime | String) -> object:
    return column_type.dialect_impl(DIALECT).bind_processor(DIALECT)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)), ZONES)
def test_datetime_text_is_sqlalchemys(moment: datetime, zone: timezone | None) -> None:
    value = moment.replace(tzinfo=zone)
    for column_type in (DateTime(timezone=True), DateTime()):
        ours, theirs = sqlite_bind_processor(column_type, DIALECT), _theirs(column_type)
        assert ours is not None and callable(theirs)
        assert ours(value) == theirs(value)


def test_other_values_go_to_sqlalchemy() -> None:
    ours = sqlite_bind_processor(DateTime(timezone=True), DIALECT)
    assert ours is not None
    assert ours(None) is None
    assert ours(date(2026, 12, 7)) == "2026-12-07 00:00:00.000000"
    assert ours(datetime(2026, 12, 7, 8, 0, tzinfo=UTC)) == "2026-12-07 08:00:00.000000"
    # a type without the fast form keeps SQLAlchemy's processor (here none at all)
    assert sqlite_bind_processor(String(8), DIALECT) is _theirs(String(8)) is None
