"""Reply deadlines in mainland-China working days (筑府发〔2017〕6号: 10 working days)."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.workdays import (
    STATUTORY_REPLY_DAYS,
    CalendarFallbackWarning,
    add_working_days,
    is_working_day,
    respond_by,
    working_days_between,
)

# Inside chinesecalendar 1.11.0's coverage (2004-2026) with a margin for the counting.
COVERED = st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 9, 30))


def naive_add(start: date, n: int) -> date:
    """Reference: walk the package's calendar directly."""
    day = start
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


def test_statutory_default_is_ten() -> None:
    assert STATUTORY_REPLY_DAYS == 10


@pytest.mark.parametrize(
    ("applied", "deadline"),
    [
        # National Day 2024: Oct 1-7 off; Sun 09-29 and Sat 10-12 were adjusted working days.
        (date(2024, 9, 27), date(2024, 10, 16)),
        (date(2024, 9, 30), date(2024, 10, 18)),
        (date(2024, 10, 1), date(2024, 10, 18)),  # applied on a holiday: counting starts after it
        # National Day + Mid-Autumn 2025: Oct 1-8 off; Sun 09-28 and Sat 10-11 worked.
        (date(2025, 9, 26), date(2025, 10, 16)),
        (date(2025, 9, 30), date(2025, 10, 21)),
        # Spring Festival 2025: Jan 28-Feb 4 off; Sun 01-26 and Sat 02-08 worked.
        (date(2025, 1, 24), date(2025, 2, 13)),
        (date(2025, 1, 27), date(2025, 2, 17)),
        # An ordinary fortnight: two weekends skipped.
        (date(2025, 3, 3), date(2025, 3, 17)),
    ],
)
def test_respond_by_across_holidays(applied: date, deadline: date) -> None:
    assert respond_by(applied) == deadline
    assert working_days_between(applied, deadline) == 10


def test_adjusted_weekend_days_count_and_holidays_do_not() -> None:
    assert is_working_day(date(2024, 9, 29))  # Sunday, 调休上班
    assert is_working_day(date(2024, 10, 12))  # Saturday, 调休上班
    assert is_working_day(date(2025, 1, 26))  # Sunday, 调休上班
    assert is_working_day(date(2025, 2, 8))  # Saturday, 调休上班
    assert not is_working_day(date(2024, 10, 2))  # Wednesday, National Day
    assert not is_working_day(date(2025, 1, 29))  # Wednesday, Spring Festival
    assert not is_working_day(date(2025, 3, 8))  # plain Saturday
    assert add_working_days(date(2024, 9, 27), 1) == date(2024, 9, 29)
    assert add_working_days(date(2025, 1, 25), 1) == date(2025, 1, 26)
    assert add_working_days(date(2025, 2, 7), 1) == date(2025, 2, 8)


def test_day_zero_is_the_application_date() -> None:
    assert add_working_days(date(2024, 10, 2), 0) == date(2024, 10, 2)
    assert respond_by(date(2024, 9, 27), days=0) == date(2024, 9, 27)
    assert working_days_between(date(2024, 9, 27), date(2024, 9, 27)) == 0
    assert add_working_days(date(2024, 10, 11), 1) == date(2024, 10, 12)  # Fri -> adjusted Sat


def test_working_days_between_is_antisymmetric() -> None:
    assert working_days_between(date(2024, 10, 16), date(2024, 9, 27)) == -10


@pytest.mark.parametrize("n", [-1, True, 1.5])
def test_rejects_bad_counts(n: object) -> None:
    with pytest.raises(InvalidInput) as info:
        add_working_days(date(2024, 9, 27), n)  # type: ignore[arg-type]
    assert info.value.code == "invalid_working_days"
    assert "must be an int >= 0" in info.value.message


@given(COVERED, st.integers(0, 60))
def test_matches_naive_reference(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert end == naive_add(start, n)
    assert working_days_between(start, end) == n
    if n:
        assert chinese_calendar.is_workday(end)


@given(COVERED, st.integers(0, 120))
def test_between_and_add_agree(a: date, span: int) -> None:
    b = min(a + timedelta(days=span), date(2026, 9, 30))
    k = working_days_between(a, b)
    assert add_working_days(a, k) <= b < add_working_days(a, k + 1)


def test_fallback_beyond_coverage_warns_and_uses_monday_to_friday() -> None:
    with pytest.warns(CalendarFallbackWarning, match="no mainland-China holiday calendar for 2099"):
        deadline = respond_by(date(2099, 1, 2))  # a Friday
    assert deadline == date(2099, 1, 16)
    with pytest.warns(CalendarFallbackWarning, match="2099"):
        assert not is_working_day(date(2099, 1, 3))  # Saturday
    with pytest.warns(CalendarFallbackWarning, match="2099"):
        assert working_days_between(date(2099, 1, 2), date(2099, 1, 16)) == 10


def test_fallback_before_coverage_warns() -> None:
    with pytest.warns(CalendarFallbackWarning, match="2003"):
        # 2003-12-31 (Wed) by Mon-Fri fallback, 2004-01-01 from the calendar (New Year).
        assert add_working_days(date(2003, 12, 30), 2) == date(2004, 1, 2)


def test_fallback_warns_once_per_year_per_call() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        add_working_days(date(2099, 12, 20), 20)
    years = sorted(str(w.message).split(" for ")[1][:4] for w in caught)
    assert years == ["2099", "2100"]
    assert all(issubclass(w.category, CalendarFallbackWarning) for w in caught)


def test_crossing_out_of_coverage_warns_only_for_the_uncovered_year() -> None:
    with pytest.warns(CalendarFallbackWarning, match="2027") as record:
        add_working_days(date(2026, 12, 25), 10)
    assert all("2026" not in str(w.message).split("(")[0] for w in record)


def test_unasserted_fallback_is_an_error_under_strict_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CalendarFallbackWarning):
            respond_by(date(2099, 6, 1))
