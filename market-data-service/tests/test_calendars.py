"""Session calendars against real data: the NYSE calendar reproduces SPY's trading days."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from market_data_testkit import DATA, epochs

from market_data_service.calendars import (
    CalendarError,
    expected_open_times,
    is_nyse_trading_day,
    nyse_holidays,
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


def test_holiday_rules() -> None:
    assert date(2021, 12, 31) not in nyse_holidays(2022)  # New Year on a Saturday: no holiday
    assert date(2023, 6, 19) in nyse_holidays(2023)  # Juneteenth from 2022
    assert not is_nyse_trading_day(date(2024, 3, 29))  # Good Friday
    assert not is_nyse_trading_day(date(2012, 10, 29))  # Hurricane Sandy


def test_24x7_expects_every_aligned_open_time() -> None:
    assert expected_open_times("24x7", "1h", 1800, 4 * 3600).tolist() == [3600, 7200, 10800]
    with pytest.raises(CalendarError):
        expected_open_times("lse", "1h", 0, 3600)
