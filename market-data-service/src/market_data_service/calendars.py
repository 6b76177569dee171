"""Which bars a series is expected to have, by trading calendar.

Gap reports compare these expectations with history. ``24x7`` (crypto) expects every aligned
open time. Every other name is an `exchange_calendars` calendar (``xnys``, ``xlon``, ``cmes``,
``24/5`` and 60-odd more, case-insensitive), which carries each exchange's holidays, special
closures, early closes and lunch breaks. A daily bar is labelled with the session date at
midnight UTC; an intraday bar with the start of its UTC-aligned bucket, expected when the
bucket overlaps trading time, so NYSE's 09:30 open falls in the 09:00 hour bar as Lean labels
it.

`exchange_calendars` builds a calendar for a fixed date range (by default 20 years back and
one forward); the range is widened here to whole decades around the request, so reports on
old data (SPY from 1993) work, and each range is built once per process.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.errors import Pandas4Warning

from algotrade import epoch
from algotrade.bars import TIMEFRAME_SECONDS

ALWAYS_OPEN: Final = "24x7"
DAY: Final[int] = 86_400
# Sessions shorter than this have no sensible 4h buckets (NYSE's 6.5 hours would give one
# full and one partial bucket a day, placed by the UTC offset).
MIN_SESSION_HOURS_FOR_4H: Final = 12


class CalendarError(ValueError):
    """A calendar that does not exist or does not apply (e.g. NYSE sessions for 4h bars)."""


@lru_cache(maxsize=1)
def _exchange_names() -> dict[str, str]:
    """Lower-case name or alias -> the name `exchange_calendars` registers."""
    return {name.lower(): name for name in xcals.get_calendar_names(include_aliases=True)}


def calendar_names() -> tuple[str, ...]:
    """Every calendar name a caller may use, lower case, ``24x7`` first."""
    return (ALWAYS_OPEN, *sorted(_exchange_names()))


def canonical_calendar(name: str) -> str:
    """The lower-case calendar name, or `CalendarError` if no calendar has that name."""
    lowered = name.strip().lower()
    if lowered == ALWAYS_OPEN or lowered in _exchange_names():
        return lowered
    raise CalendarError(
        f"unknown calendar {name!r}; use 24x7 (crypto) or an exchange calendar such as "
        "xnys, xlon, cmes or 24/5"
    )


def _decade(year: int) -> int:
    return year - year % 10


@lru_cache(maxsize=16)
def _exchange_calendar(name: str, first_year: int, last_year: int) -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads Series.values, which pandas 3.1 deprecates; harmless.
        warnings.filterwarnings("ignore", category=Pandas4Warning, module="pandas")
        return xcals.get_calendar(
            _exchange_names()[name], start=f"{first_year}-01-01", end=f"{last_year}-12-31"
        )


@lru_cache(maxsize=16)
def _default_calendar(name: str) -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Pandas4Warning, module="pandas")
        return xcals.get_calendar(_exchange_names()[name])


def exchange_calendar(name: str, start: int, end: int) -> xcals.ExchangeCalendar:
    """The calendar ``name`` built over whole decades covering ``[start, end)`` (epoch s)
    and at least its default range."""
    name = canonical_calendar(name)
    if name == ALWAYS_OPEN:
        raise CalendarError("24x7 is not an exchange calendar")
    default = _default_calendar(name)
    first = epoch.datetime_from_seconds(start).year - 1
    last = epoch.datetime_from_seconds(max(start, end - 1)).year + 1
    first = min(_decade(first), default.first_session.year)
    last = max(_decade(last) + 9, default.last_session.year)
    bound_min, bound_max = default.bound_min(), default.bound_max()
    # Precomputed calendars (e.g. xkrx) know only a fixed span.
    if bound_min is not None:
        first = max(first, bound_min.year + 1)
    if bound_max is not None:
        last = min(last, bound_max.year - 1)
    return _exchange_calendar(name, first, last)


def _sessions(
    calendar: xcals.ExchangeCalendar, start: int, end: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Session dates (midnight UTC) and the ``[open, close)`` trading intervals (a lunch
    break splits a session in two), epoch seconds, of the sessions near ``[start, end)``."""
    schedule = calendar.schedule
    days = epoch.seconds_from_pandas(schedule.index)
    # A session may open the evening before its date (cmes): take a day's margin both sides.
    near = schedule[(days >= start - 2 * DAY) & (days < end + 2 * DAY)]
    days = epoch.seconds_from_pandas(near.index)
    opens = epoch.seconds_from_pandas(near["open"])
    closes = epoch.seconds_from_pandas(near["close"])
    has_break = near["break_start"].notna().to_numpy()
    if has_break.any():
        break_starts = epoch.seconds_from_pandas(near["break_start"][has_break])
        break_ends = epoch.seconds_from_pandas(near["break_end"][has_break])
        first_closes = closes.copy()
        first_closes[has_break] = break_starts
        opens = np.concatenate([opens, break_ends])
        closes = np.concatenate([first_closes, closes[has_break]])
    return days, opens, closes


def _check_span(calendar: xcals.ExchangeCalendar, name: str, start: int, end: int) -> None:
    first = int(epoch.seconds_from_pandas(pd.DatetimeIndex([calendar.first_session]))[0])
    last = int(epoch.seconds_from_pandas(pd.DatetimeIndex([calendar.last_session]))[0])
    if start < first or end > last + DAY:
        raise CalendarError(
            f"the {name} calendar covers {calendar.first_session.date()} to "
            f"{calendar.last_session.date()} only"
        )


def expected_open_times(
    calendar: str, timeframe: str, start: int, end: int
) -> npt.NDArray[np.int64]:
    """Open times (epoch seconds, ascending) the calendar expects in ``[start, end)``."""
    step = TIMEFRAME_SECONDS[timeframe]
    name = canonical_calendar(calendar)
    if name == ALWAYS_OPEN:
        first = start + (-start) % step
        return np.arange(first, end, step, dtype=np.int64)
    exchange = exchange_calendar(name, start, end)
    _check_span(exchange, name, start, end)
    days, opens, closes = _sessions(exchange, start, end)
    if timeframe == "1d":
        stamps = days
    else:
        if timeframe == "4h" and _median_hours(opens, closes) < MIN_SESSION_HOURS_FOR_4H:
            raise CalendarError(
                f"the {name} calendar has no 4h bars (its sessions are shorter than "
                f"{MIN_SESSION_HOURS_FOR_4H} hours)"
            )
        stamps = _buckets_overlapping(opens, closes, step)
    return stamps[(stamps >= start) & (stamps < end)]


def _median_hours(opens: npt.NDArray[np.int64], closes: npt.NDArray[np.int64]) -> float:
    return float(np.median(closes - opens)) / 3600 if opens.size else 24.0


def _buckets_overlapping(
    opens: npt.NDArray[np.int64], closes: npt.NDArray[np.int64], step: int
) -> npt.NDArray[np.int64]:
    """Sorted unique starts of the ``step``-second UTC buckets that overlap any interval."""
    if opens.size == 0:
        return opens.copy()
    firsts = opens - opens % step
    counts = (closes - firsts + step - 1) // step
    counts = np.maximum(counts, 0)
    # One arange over all intervals: each interval's offsets restart at its first bucket.
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    starts: npt.NDArray[np.int64] = np.unique(np.repeat(firsts, counts) + offsets * step)
    return starts


def is_session(calendar: str, day: date) -> bool:
    """Whether ``day`` is a trading session of the exchange calendar."""
    stamp = epoch.seconds_from_local_midnight(day, UTC)
    return bool(expected_open_times(calendar, "1d", stamp, stamp + DAY).size)


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
    noons = [epoch.datetime_from_seconds(int(d) + 12 * 3600).astimezone(tz) for d in unique_days]
    offsets = np.array(
        [int(noon.utcoffset().total_seconds()) for noon in noons],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    local = ts + offsets[inverse]
    # Exact for sessions away from the 02:00 local DST switch (all exchange sessions).
    labels[:] = local - local % DAY
    return labels
