"""Session calendars (exchange_calendars) against real data: XNYS reproduces SPY's trading
days; other exchanges' holidays and 24/5 sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from market_data_testkit import DATA, epochs

from market_data_service.calendars import (
    CalendarError,
    canonical_calendar,
    expected_open_times,
    is_session,
)


def _epochs(path: str) -> np.ndarray:
    frame = pd.read_csv(DATA / path, parse_dates=["timestamp"])
    return epochs(frame.timestamp)


def test_xnys_daily_expectation_equals_every_spy_trading_day_1998_2021() -> None:
    stored = _epochs("spy-1d.csv")
    expected = expected_open_times("xnys", "1d", int(stored[0]), int(stored[-1]) + 86_400)
    assert np.array_equal(expected, stored)


def test_xnys_hourly_expectation_equals_spy_hours_since_2009() -> None:
    stored = _epochs("spy-1h.csv")
    start, end = 1_230_768_000, 1_609_459_200  # 2009-01-01 .. 2021-01-01
    stored = stored[(stored >= start) & (stored < end)]
    expected = expected_open_times("xnys", "1h", start, end)
    assert np.array_equal(expected, stored)


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_xnys_holiday_rules_and_special_closures() -> None:
    assert is_session("xnys", date(2021, 12, 31))  # New Year on a Saturday: no holiday
    assert not is_session("xnys", date(2023, 6, 19))  # Juneteenth from 2022
    assert not is_session("xnys", date(2024, 3, 29))  # Good Friday
    assert not is_session("xnys", date(2012, 10, 29))  # Hurricane Sandy
    assert not is_session("XNYS", date(2025, 1, 9))  # President Carter's day of mourning


def test_xnys_reaches_back_before_the_default_range_to_spy_1993() -> None:
    # exchange_calendars builds 20 years back by default; SPY's history starts in 1993.
    expected = expected_open_times("xnys", "1d", _ts("1993-01-25"), _ts("1993-02-01"))
    assert expected.tolist() == [_ts(f"1993-01-{d}") for d in (25, 26, 27, 28, 29)]


def test_xlon_skips_boxing_day_and_closes_early_on_christmas_eve() -> None:
    assert not is_session("xlon", date(2024, 12, 26))  # Boxing Day
    assert not is_session("xlon", date(2024, 5, 6))  # Early May bank holiday
    assert is_session("xlon", date(2024, 12, 27))
    # 08:00-16:30 London (UTC in winter), 12:30 on Christmas Eve.
    hours = expected_open_times("xlon", "1h", _ts("2024-12-23"), _ts("2024-12-28"))
    by_day: dict[str, int] = {}
    for stamp in hours.tolist():
        day = datetime.fromtimestamp(stamp, UTC).date().isoformat()
        by_day[day] = by_day.get(day, 0) + 1
    assert by_day == {"2024-12-23": 9, "2024-12-24": 5, "2024-12-27": 9}


def test_cme_trades_around_the_clock_on_weekdays_but_not_on_christmas() -> None:
    # CME Globex (cmes): the session dated D runs 17:00-17:00 Chicago time from D-1 (the
    # calendar does not model the daily 16:00 maintenance halt).
    week = expected_open_times("cmes", "1h", _ts("2024-06-09"), _ts("2024-06-16"))
    assert week[0] == _ts("2024-06-09T22:00:00")  # Sunday 17:00 CDT
    assert week[-1] == _ts("2024-06-14T21:00:00")  # the last hour before Friday's close
    assert week.size == 5 * 24
    assert not is_session("cmes", date(2024, 12, 25))
    four_hour = expected_open_times("us_futures", "4h", _ts("2024-06-10"), _ts("2024-06-11"))
    assert four_hour.size == 6


def test_24_5_forex_style_calendar_expects_every_weekday_hour_and_no_weekend() -> None:
    week = expected_open_times("24/5", "1h", _ts("2024-06-08"), _ts("2024-06-17"))
    assert week.size == 5 * 24
    assert week[0] == _ts("2024-06-10T00:00:00") and week[-1] == _ts("2024-06-14T23:00:00")
    days = expected_open_times("24/5", "1d", _ts("2024-06-08"), _ts("2024-06-17"))
    assert [datetime.fromtimestamp(d, UTC).day for d in days.tolist()] == [10, 11, 12, 13, 14]


def test_session_calendars_refuse_4h_bars_when_sessions_are_short() -> None:
    with pytest.raises(CalendarError, match="4h"):
        expected_open_times("xnys", "4h", _ts("2024-06-10"), _ts("2024-06-11"))


def test_24x7_expects_every_aligned_open_time() -> None:
    assert expected_open_times("24x7", "1h", 1800, 4 * 3600).tolist() == [3600, 7200, 10800]


def test_unknown_calendar_names_are_refused_and_known_ones_are_case_insensitive() -> None:
    assert canonical_calendar("XNYS") == "xnys" and canonical_calendar("24x7") == "24x7"
    with pytest.raises(CalendarError):
        expected_open_times("xmoon", "1h", 0, 3600)
