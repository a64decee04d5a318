"""Mainland-China working days, for the statutory reply deadline of a share request.

筑府发〔2017〕6号 requires a department that receives a conditional share request to answer
"自申请之日起10个工作日内反馈意见并说明理由" — within 10 working days from the application date,
with a reason. "Working day" follows the State Council's yearly holiday notice (国务院办公厅关于
节假日安排的通知): statutory holidays are not working days, and adjusted weekend days (调休上班,
e.g. Sunday 2024-09-29) are. The ``chinesecalendar`` package carries those notices.

The application date itself is day 0; the deadline is the n-th working day after it.

For a year the package does not cover (it raises ``NotImplementedError``) we fall back to
Monday–Friday and emit :class:`CalendarFallbackWarning`: a deadline must still be computed,
but the operator has to know it may be off until the package is updated with the new notice.

Pure: no I/O (``chinese_calendar`` is a table of constants).
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import chinese_calendar

from ledger.errors import InvalidInput

__all__ = [
    "STATUTORY_REPLY_DAYS",
    "CalendarFallbackWarning",
    "add_working_days",
    "is_working_day",
    "respond_by",
    "working_days_between",
]

#: 筑府发〔2017〕6号: conditional share requests are answered within 10 working days.
STATUTORY_REPLY_DAYS = 10

_ONE_DAY = timedelta(days=1)


class CalendarFallbackWarning(UserWarning):
    """A date lies outside the holiday calendar's coverage; Monday–Friday was assumed."""


def _lookup(day: date, fallback_years: set[int]) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        fallback_years.add(day.year)
        return day.weekday() < 5


def _warn(fallback_years: set[int]) -> None:
    # One warning per year per call; the warnings registry (message includes the year) then
    # shows it once per call site under Python's default filter.
    for year in sorted(fallback_years):
        warnings.warn(
            f"no mainland-China holiday calendar for {year} (chinesecalendar "
            f"{getattr(chinese_calendar, '__version__', '?')}); counted Monday-Friday as working "
            "days — update chinesecalendar once the State Council notice is published",
            CalendarFallbackWarning,
            stacklevel=3,
        )


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a mainland-China working day (holiday notice, 调休 included)."""
    fallback: set[int] = set()
    result = _lookup(day, fallback)
    _warn(fallback)
    return result


def add_working_days(start: date, n: int) -> date:
    """The n-th working day after ``start`` (``start`` itself is day 0 and never counts).

    ``n == 0`` returns ``start`` unchanged. ``n`` must not be negative.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidInput(
            f"number of working days must be an int >= 0, got {n!r}", code="invalid_working_days"
        )
    fallback: set[int] = set()
    day = start
    remaining = n
    while remaining:
        day += _ONE_DAY
        if _lookup(day, fallback):
            remaining -= 1
    _warn(fallback)
    return day


def respond_by(applied: date, days: int = STATUTORY_REPLY_DAYS) -> date:
    """The reply deadline for a share request applied for on ``applied``.

    筑府发〔2017〕6号: "自申请之日起10个工作日内反馈意见并说明理由" — counting starts after the
    application date, so this is ``add_working_days(applied, 10)``; a reply on that date is on time.
    """
    return add_working_days(applied, days)


def working_days_between(a: date, b: date) -> int:
    """Working days d with a < d <= b; negative (−count of b < d <= a) when b is before a.

    The inverse of :func:`add_working_days`: ``working_days_between(s, add_working_days(s, n)) == n``.
    """
    if b < a:
        return -working_days_between(b, a)
    fallback: set[int] = set()
    count = 0
    day = a
    while day < b:
        day += _ONE_DAY
        if _lookup(day, fallback):
            count += 1
    _warn(fallback)
    return count
