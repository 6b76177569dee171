from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from algotrade.engine import Bars


@pytest.mark.parametrize(
    ("name", "rows"), [("spy-1d", 5849), ("spy-1h", 40832), ("btc-usd-4h", 20695)]
)
def test_from_csv_reads_every_row_of_the_real_data(
    load_bars: Callable[[str], Bars], name: str, rows: int
) -> None:
    bars = load_bars(name)
    assert len(bars) == rows
    for column in (bars.open, bars.high, bars.low, bars.close, bars.volume):
        assert column.dtype == np.float64 and column.shape == (rows,)
        assert np.isfinite(column).all()
    assert bars.ts.dtype == np.int64
    assert (np.diff(bars.ts) > 0).all()
    assert (bars.high >= bars.low).all()


def test_from_csv_parses_iso_utc_timestamps_to_epoch_milliseconds(spy_daily: Bars) -> None:
    first = datetime(1998, 1, 2, tzinfo=UTC)
    assert spy_daily.ts[0] == int(first.timestamp() * 1000)
    assert spy_daily.close[0] == pytest.approx(97.36)
    assert spy_daily.volume[1] == pytest.approx(4030800)


def test_from_arrays_copies_inputs_and_defaults_timestamps() -> None:
    close = np.array([1.0, 2.0, 3.0])
    bars = Bars.from_arrays(open=close, high=close, low=close, close=close, volume=[1, 1, 1])
    close[0] = 99.0
    assert bars.close[0] == 1.0
    assert bars.ts.tolist() == [0, 1, 2]
    assert bars.volume.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"close": [1.0, 2.0]},
        {"ts": [0, 0, 1]},
        {"ts": [2, 1, 3]},
        {"ts": [1, 2]},
        {"close": [[1.0, 2.0, 3.0]]},
    ],
)
def test_from_arrays_rejects_inconsistent_columns(kwargs: dict[str, object]) -> None:
    columns: dict[str, object] = {name: [1.0, 2.0, 3.0] for name in ("open", "high", "low")}
    columns.update(close=[1.0, 2.0, 3.0], volume=[1.0, 1.0, 1.0])
    columns.update(kwargs)
    with pytest.raises(ValueError):
        Bars.from_arrays(**columns)  # type: ignore[arg-type]


def test_slice_and_rows_give_streamable_bars(spy_daily: Bars) -> None:
    window = spy_daily.slice(10, 13)
    rows = list(window.rows())
    assert len(rows) == 3
    assert rows[0]["close"] == spy_daily.close[10]
    assert rows[2]["ts"] == spy_daily.ts[12]
    assert set(rows[0]) == {"ts", "open", "high", "low", "close", "volume"}


def test_pandas_round_trip_keeps_every_value_and_timestamp(spy_daily: Bars) -> None:
    frame = spy_daily.to_pandas()
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == datetime(1998, 1, 2, tzinfo=UTC)
    back = Bars.from_pandas(frame)
    np.testing.assert_array_equal(back.ts, spy_daily.ts)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(back.field(name), spy_daily.field(name))


def test_from_pandas_reads_timestamp_columns_and_any_letter_case() -> None:
    import pandas as pd  # a dev dependency: this test always runs

    frame = pd.DataFrame(
        {
            "Timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"]),
            "Open": [1.0, 2.0],
            "High": [2.0, 3.0],
            "Low": [0.5, 1.5],
            "Close": [1.5, 2.5],
            "Volume": [10, 20],
        }
    )
    bars = Bars.from_pandas(frame)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert bars.ts.tolist() == [start, start + 3_600_000]
    assert bars.volume.dtype == np.float64 and bars.close.tolist() == [1.5, 2.5]
    by_ms = Bars.from_pandas(frame.drop(columns="Timestamp").assign(ts=[5, 9]))
    assert by_ms.ts.tolist() == [5, 9]
    with pytest.raises(ValueError, match="volume"):
        Bars.from_pandas(frame.drop(columns="Volume"))
