"""Which bars a series is expected to have: the 24/7 calendar and the NYSE regular session.

Gap reports compare these expectations with history. ``24x7`` (crypto) expects every aligned
open time. ``xnys`` expects bars inside NYSE regular sessions (09:30-16:00 New York time, 13:00
on early-close days), skipping weekends, the exchange's rule-based holidays and its special
closures since 1998. A daily bar is labelled with the trading date at midnight UTC; an intraday
bar with the start of its UTC-aligned bucket, so the 09:30 open falls in the 09:00 hour bar as
Lean labels it.

Limits: the holiday and early-close rules are those in force since 2009; before that a few
early closes differed (the rule set reproduces every SPY trading day 1998-2021 in the demo data,
and every hourly bar count from 2009 on).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from algotrade.bars import TIMEFRAME_SECONDS

Calendar = Literal["24x7", "xnys"]
CALENDARS: Final[tuple[str, ...]] = ("24x7", "xnys")
NEW_YORK: Final[ZoneInfo] = ZoneInfo("America/New_York")
DAY: Final[int] = 86_400

SPECIAL_CLOSURES: Final[frozenset[date]] = frozenset(
    {
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),  # September 11 attacks
        date(2004, 6, 11),  # President Reagan's funeral
        date(2007, 1, 2),  # President Ford's day of mourning
        date(2012, 10, 29),
        date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # President G. H. W. Bush's day of mourning
        date(2025, 1, 9),  # President Carter's day of mourning
    }
)


class CalendarError(ValueError):
    """A calendar that does not apply to the request (e.g. NYSE sessions for 4h bars)."""


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=256)
def nyse_holidays(year: int) -> frozenset[date]:
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    # New Year's Day on a Saturday is not observed on the Friday before (NYSE rule 7.2).
    if date(year, 1, 1).weekday() != 5:
        days.add(_observed(date(year, 1, 1)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


def is_nyse_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in nyse_holidays(day.year) and day not in SPECIAL_CLOSURES


def nyse_close(day: date) -> time:
    """13:00 on the day before Independence Day, after Thanksgiving and on Christmas Eve."""
    thanksgiving = _nth_weekday(day.year, 11, 3, 4)
    early = (
        (day.month == 7 and day.day == 3)
        or day == thanksgiving + timedelta(days=1)
        or (day.month == 12 and day.day == 24)
    )
    return time(13, 0) if early else time(16, 0)


def expected_open_times(
    calendar: str, timeframe: str, start: int, end: int
) -> npt.NDArray[np.int64]:
    """Open times (epoch seconds) the calendar expects in ``[start, end)``."""
    step = TIMEFRAME_SECONDS[timeframe]
    if calendar == "24x7":
        first = start + (-start) % step
        return np.arange(first, end, step, dtype=np.int64)
    if calendar != "xnys":
        raise CalendarError(f"unknown calendar {calendar!r}; use one of {', '.join(CALENDARS)}")
    if timeframe == "4h":
        raise CalendarError("the xnys calendar has no 4h bars (sessions are 6.5 hours)")
    first_day = datetime.fromtimestamp(start, UTC).date() - timedelta(days=1)
    last_day = datetime.fromtimestamp(max(start, end - 1), UTC).date() + timedelta(days=1)
    out: list[npt.NDArray[np.int64]] = []
    day = first_day
    while day <= last_day:
        if is_nyse_trading_day(day):
            if timeframe == "1d":
                stamp = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
                out.append(np.array([stamp], np.int64))
            else:
                opens = int(datetime.combine(day, time(9, 30), NEW_YORK).timestamp())
                closes = int(datetime.combine(day, nyse_close(day), NEW_YORK).timestamp())
                out.append(np.arange(opens - opens % step, closes, step, dtype=np.int64))
        day += timedelta(days=1)
    if not out:
        return np.zeros(0, np.int64)
    stamps = np.concatenate(out)
    return stamps[(stamps >= start) & (stamps < end)]


def session_day_labels(ts: npt.NDArray[np.int64], tz: ZoneInfo) -> npt.NDArray[np.int64]:
    """The local calendar date of each open time, as midnight UTC of that date (epoch s).

    Daily bars of a session market are labelled by trading date; grouping intraday bars this
    way reproduces them (e.g. SPY hourly to daily by New York date).
    """
    if ts.size == 0:
        return ts.copy()
    labels = np.empty_like(ts)
    # Offsets change only at DST transitions: compute once per distinct UTC day.
    days = ts - ts % DAY
    unique_days, inverse = np.unique(days, return_inverse=True)
    offsets = np.array(
        [
            int(datetime.fromtimestamp(int(d) + 12 * 3600, tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for d in unique_days
        ],
        dtype=np.int64,
    )
    local = ts + offsets[inverse]
    # Exact for sessions away from the 02:00 local DST switch (all exchange sessions).
    labels[:] = local - local % DAY
    return labels
