"""OHLCV bars as column arrays: the input of both executors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def _float_column(values: Any, name: str) -> FloatArray:
    array = np.array(values, dtype=np.float64, copy=True, order="C")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return array


def _iso_to_epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """Bars in time order: ``ts`` in epoch milliseconds (bar open) and float64 price columns.

    The arrays are private copies; treat them as read-only (they are not flagged read-only
    because numba would compile a separate kernel variant for read-only arrays).
    """

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        # The kernels are compiled for 1-D contiguous float64 columns; anything else would
        # either fail inside numba or silently compile another variant.
        length = self.ts.shape[0] if self.ts.ndim == 1 else -1
        if self.ts.dtype != np.int64 or length < 0 or not self.ts.flags.c_contiguous:
            raise ValueError("ts must be a 1-D contiguous int64 array (use Bars.from_arrays)")
        for name in ("open", "high", "low", "close", "volume"):
            column = getattr(self, name)
            if (
                column.dtype != np.float64
                or column.shape != (length,)
                or not column.flags.c_contiguous
            ):
                raise ValueError(
                    f"{name} must be a contiguous float64 array as long as ts "
                    "(use Bars.from_arrays)"
                )

    @classmethod
    def from_arrays(
        cls,
        *,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        ts: Any = None,
    ) -> Bars:
        """Copy array-likes into bars; ``ts`` defaults to 0, 1, 2, ... milliseconds."""
        columns = {
            "open": _float_column(open, "open"),
            "high": _float_column(high, "high"),
            "low": _float_column(low, "low"),
            "close": _float_column(close, "close"),
            "volume": _float_column(volume, "volume"),
        }
        length = len(columns["close"])
        if any(len(col) != length for col in columns.values()):
            raise ValueError("open, high, low, close and volume must have the same length")
        stamps: IntArray
        if ts is None:
            stamps = np.arange(length, dtype=np.int64)
        else:
            stamps = np.array(ts, dtype=np.int64, copy=True, order="C")
            if stamps.shape != (length,):
                raise ValueError("ts must have one entry per bar")
            if length > 1 and not bool(np.all(np.diff(stamps) > 0)):
                raise ValueError("ts must be strictly increasing")
        return cls(ts=stamps, **columns)

    @classmethod
    def from_csv(cls, path: str | PathLike[str]) -> Bars:
        """Read ``timestamp,open,high,low,close,volume`` with ISO-8601 UTC timestamps."""
        ts: list[int] = []
        cols: list[list[float]] = [[], [], [], [], []]
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip().lower() for h in header) != CSV_COLUMNS:
                raise ValueError(f"expected header {','.join(CSV_COLUMNS)}")
            for row in reader:
                if not row:
                    continue
                ts.append(_iso_to_epoch_ms(row[0]))
                for column, text in zip(cols, row[1:6], strict=True):
                    column.append(float(text))
        return cls.from_arrays(
            ts=ts, open=cols[0], high=cols[1], low=cols[2], close=cols[3], volume=cols[4]
        )

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame) -> Bars:
        """Bars from a DataFrame with open/high/low/close/volume columns (any letter case).

        Timestamps come from a ``DatetimeIndex`` (naive means UTC), else from a ``ts`` or
        ``timestamp`` column (datetimes, or integers taken as epoch milliseconds), else they
        default as in `from_arrays`. pandas is only needed by the caller, never imported here
        at module load.
        """
        import pandas as pd

        columns = {str(name).lower(): name for name in frame.columns}
        missing = [f for f in CSV_COLUMNS[1:] if f not in columns]
        if missing:
            raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")
        stamps: Any = None
        if isinstance(frame.index, pd.DatetimeIndex):
            stamps = frame.index
        else:
            for name in ("ts", "timestamp"):
                if name in columns:
                    stamps = frame[columns[name]]
                    break
        ts: Any = None
        if stamps is not None:
            series = pd.Series(stamps)
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                moments = pd.DatetimeIndex(series)
                if moments.tz is None:
                    moments = moments.tz_localize("UTC")
                ts = moments.as_unit("ms").asi8
            else:
                ts = series.to_numpy(dtype=np.int64)
        fields = {f: frame[columns[f]].to_numpy(dtype=np.float64) for f in CSV_COLUMNS[1:]}
        return cls.from_arrays(ts=ts, **fields)

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame of the bars, indexed by UTC bar-open time (``ts`` as a DatetimeIndex)."""
        import pandas as pd

        index = pd.DatetimeIndex(pd.to_datetime(self.ts, unit="ms", utc=True), name="ts")
        return pd.DataFrame(
            {
                "open": self.open.copy(),
                "high": self.high.copy(),
                "low": self.low.copy(),
                "close": self.close.copy(),
                "volume": self.volume.copy(),
            },
            index=index,
        )

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def slice(self, start: int | None = None, stop: int | None = None) -> Bars:
        """Bars ``[start:stop]`` (copies, so the result is independent)."""
        window = slice(start, stop)
        return Bars(
            ts=self.ts[window].copy(),
            open=self.open[window].copy(),
            high=self.high[window].copy(),
            low=self.low[window].copy(),
            close=self.close[window].copy(),
            volume=self.volume[window].copy(),
        )

    def field(self, name: str) -> FloatArray:
        """A price column by name (``open``/``high``/``low``/``close``/``volume``)."""
        column: FloatArray = getattr(self, name)
        return column

    def rows(self) -> Iterator[dict[str, float | int]]:
        """One mapping per bar, in the shape the streaming executor's ``update`` takes."""
        for i in range(len(self)):
            yield {
                "ts": int(self.ts[i]),
                "open": float(self.open[i]),
                "high": float(self.high[i]),
                "low": float(self.low[i]),
                "close": float(self.close[i]),
                "volume": float(self.volume[i]),
            }
