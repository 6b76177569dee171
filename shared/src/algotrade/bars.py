"""The bar: timeframes, symbol names, validation rules, `Bars` columns, wire encoding and the
bar event schema.

A bar is (symbol, timeframe, open time in UTC, open, high, low, close, volume). The open time
must be aligned to its timeframe counted from the Unix epoch (a 4h bar opens at 00, 04, ... 20
UTC; a 1d bar at midnight UTC, the trading date for equities). Every service that reads or
writes bars uses these rules, so they live here.

Many bars travel as one type, `Bars`: int64 epoch-millisecond open times and float64 OHLCV
columns. The engine runs on it, the Arrow wire format (`algotrade.columnar`) carries it, and
the market data service parses, validates, stores, reads, resamples and replays it. A single
`Bar` is in epoch seconds, as history and the bar JSON count. Conversions between the two and
to text go through `algotrade.epoch`.

The canonical JSON of a bar is ``{"ts":"2024-01-02T15:04:00Z","open":..,"high":..,"low":..,
"close":..,"volume":..}`` with every number a float. The market data service serves it over
HTTP, stores it in Redis windows (`algotrade.windows`) and publishes it in ``market.bars``
events, byte for byte the same.
"""

from __future__ import annotations

import builtins
import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel, ConfigDict, Field

from algotrade import epoch
from algotrade.events import default_registry

if TYPE_CHECKING:
    import pandas as pd

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]

TIMEFRAME_SECONDS: Final[dict[str, int]] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14_400,
    "1d": 86_400,
}
TIMEFRAMES: Final[tuple[str, ...]] = tuple(TIMEFRAME_SECONDS)

# Open times the platform accepts: 1900-01-01 up to (not including) 2200-01-01.
MIN_TS: Final[int] = -2_208_988_800
MAX_TS: Final[int] = 7_258_118_400
MIN_TS_MS: Final[int] = MIN_TS * 1000
MAX_TS_MS: Final[int] = MAX_TS * 1000

# The most bars one read of a series returns in one piece: the market data service's columnar
# history answer and a backtest job's range share this bound.
MAX_RANGE_BARS: Final[int] = 5_000_000

SYMBOL_MAX_LENGTH: Final[int] = 32
SYMBOL_PATTERN: Final[str] = r"^[A-Z0-9]+(?:[.-][A-Z0-9]+)*$"
"""Normalised symbol: upper-case letters and digits in segments joined by ``-`` or ``.``.

Examples: ``BTC-USD``, ``SPY``, ``BRK.B``, ``ES-Z24``. Input is trimmed and upper-cased and
``/`` or ``_`` become ``-``, so ``btc-usd``, ``BTC/USD`` and ``btc_usd`` name the same market.
``BTCUSD`` (no separator) is a different name: base and quote cannot be split reliably.
"""
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_SEPARATORS = str.maketrans({"/": "-", "_": "-"})

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume")
CSV_COLUMNS: Final[tuple[str, ...]] = ("timestamp", *PRICE_COLUMNS)


def timeframe_seconds(timeframe: str) -> int:
    """Seconds in ``timeframe``; `ValueError` naming the valid ones for anything else."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
        ) from None


def normalize_symbol(raw: object) -> str:
    """The normalised form of a symbol (see `SYMBOL_PATTERN`), or `ValueError` saying why."""
    if not isinstance(raw, str):
        raise ValueError("symbol must be a string")
    symbol = raw.strip().upper().translate(_SEPARATORS)
    if not symbol:
        raise ValueError("symbol is empty")
    if len(symbol) > SYMBOL_MAX_LENGTH:
        raise ValueError(f"symbol is longer than {SYMBOL_MAX_LENGTH} characters")
    if not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"symbol {raw!r} does not match {SYMBOL_PATTERN} after normalisation "
            "(letters and digits joined by '-', '/', '_' or '.')"
        )
    return symbol


# Rejection reasons, in the order they are checked. Code 0 means valid.
REASONS: Final[tuple[str, ...]] = (
    "ok",
    "invalid_bar",
    "missing_field",
    "invalid_symbol",
    "invalid_timeframe",
    "invalid_timestamp",
    "invalid_number",
    "timestamp_out_of_range",
    "misaligned_timestamp",
    "non_finite",
    "negative_volume",
    "low_above_high",
    "high_below_open_close",
    "low_above_open_close",
)
REASON_CODE: Final[dict[str, int]] = {name: i for i, name in enumerate(REASONS)}


def validate_ohlcv(
    bars: Bars,
    step_ms: Int64Array | int,
    *,
    reasons: Int8Array | None = None,
) -> Int8Array:
    """Vectorised bar checks: one reason code per bar (first failing rule), 0 when valid.

    ``step_ms`` is each bar's timeframe in milliseconds (0 for none). ``reasons`` may carry
    codes already found while parsing (kept; later checks only fill zeros), so each rejected
    bar reports the first problem it has.
    """
    ts = bars.ts
    n = ts.shape[0]
    out: Int8Array = np.zeros(n, dtype=np.int8) if reasons is None else reasons
    step = np.asarray(step_ms, dtype=np.int64)
    safe_step = np.where(step > 0, step, 1)

    def flag(mask: npt.NDArray[np.bool_], reason: str) -> None:
        out[(out == 0) & mask] = REASON_CODE[reason]

    flag((ts < MIN_TS_MS) | (ts >= MAX_TS_MS), "timestamp_out_of_range")
    flag(ts % safe_step != 0, "misaligned_timestamp")
    open_, high, low, close, volume = bars.open, bars.high, bars.low, bars.close, bars.volume
    with np.errstate(invalid="ignore"):
        finite = (
            np.isfinite(open_)
            & np.isfinite(high)
            & np.isfinite(low)
            & np.isfinite(close)
            & np.isfinite(volume)
        )
        flag(~finite, "non_finite")
        flag(volume < 0, "negative_volume")
        flag(low > high, "low_above_high")
        flag(high < np.maximum(open_, close), "high_below_open_close")
        flag(low > np.minimum(open_, close), "low_above_open_close")
    return out


def reason_message(code: int, *, ts: int, values: tuple[float, float, float, float, float]) -> str:
    """A sentence for a rejection reason, naming the offending values."""
    o, h, lo, c, v = values
    reason = REASONS[code]
    messages = {
        "timestamp_out_of_range": f"open time {ts} is outside 1900-01-01..2200-01-01",
        "misaligned_timestamp": "open time is not aligned to the timeframe (UTC, from epoch)",
        "non_finite": "prices and volume must be finite numbers (no NaN or infinity)",
        "negative_volume": f"volume {v!r} is negative",
        "low_above_high": f"low {lo!r} is above high {h!r}",
        "high_below_open_close": f"high {h!r} is below max(open {o!r}, close {c!r})",
        "low_above_open_close": f"low {lo!r} is above min(open {o!r}, close {c!r})",
    }
    return messages.get(reason, reason.replace("_", " "))


def _float_column(values: Any, name: str) -> Float64Array:
    array = np.array(values, dtype=np.float64, copy=True, order="C")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """Bars as columns: ``ts`` int64 epoch milliseconds (bar open), float64 OHLCV.

    The platform's one bar-column type, from a file or a push to history, over the wire and
    into the engine. `from_arrays`, `from_csv`, `from_pandas` and every read of a stored
    series give bars strictly increasing in time, as the executors need. The constructor
    itself checks only dtypes and shapes, without copying: a batch on its way in (arrival
    order, repeats, not yet validated) is held in the same columns.

    Treat the arrays as read-only (they are not flagged read-only because numba would compile
    a separate kernel variant for read-only arrays).
    """

    ts: Int64Array
    open: Float64Array
    high: Float64Array
    low: Float64Array
    close: Float64Array
    volume: Float64Array

    def __post_init__(self) -> None:
        # The kernels are compiled for 1-D contiguous float64 columns; anything else would
        # either fail inside numba or silently compile another variant.
        length = self.ts.shape[0] if self.ts.ndim == 1 else -1
        if self.ts.dtype != np.int64 or length < 0 or not self.ts.flags.c_contiguous:
            raise ValueError("ts must be a 1-D contiguous int64 array (use Bars.from_arrays)")
        for name in PRICE_COLUMNS:
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
        """Copy array-likes into bars; ``ts`` (epoch ms, strictly increasing) defaults to 0,
        1, 2, ... milliseconds."""
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
        stamps: Int64Array
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
    def from_columns(cls, ts: Any, open: Any, high: Any, low: Any, close: Any, volume: Any) -> Bars:
        """Bars over arrays as they are (no copy when they already have the right dtype and
        layout, one conversion otherwise); no ordering check, see the class docstring."""
        return cls(
            ts=np.ascontiguousarray(ts, dtype=np.int64),
            open=np.ascontiguousarray(open, dtype=np.float64),
            high=np.ascontiguousarray(high, dtype=np.float64),
            low=np.ascontiguousarray(low, dtype=np.float64),
            close=np.ascontiguousarray(close, dtype=np.float64),
            volume=np.ascontiguousarray(volume, dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> Bars:
        return cls.from_columns(*(np.zeros(0) for _ in range(6)))

    @classmethod
    def concat(cls, parts: Sequence[Bars]) -> Bars:
        """The bars of ``parts`` one after another."""
        if not parts:
            return cls.empty()
        return cls(
            ts=np.concatenate([p.ts for p in parts]),
            **{n: np.concatenate([getattr(p, n) for p in parts]) for n in PRICE_COLUMNS},
        )

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
                ts.append(epoch.ms_from_iso(row[0]))
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
        missing = [f for f in PRICE_COLUMNS if f not in columns]
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
                ts = epoch.ms_from_pandas(series)
            else:
                ts = series.to_numpy(dtype=np.int64)
        fields = {f: frame[columns[f]].to_numpy(dtype=np.float64) for f in PRICE_COLUMNS}
        return cls.from_arrays(ts=ts, **fields)

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame of the bars, indexed by UTC bar-open time (``ts`` as a DatetimeIndex)."""
        import pandas as pd

        return pd.DataFrame(
            {name: getattr(self, name).copy() for name in PRICE_COLUMNS},
            index=epoch.pandas_index_from_ms(self.ts),
        )

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def slice(self, start: int | None = None, stop: int | None = None) -> Bars:
        """Bars ``[start:stop]`` (copies, so the result is independent)."""
        window = slice(start, stop)
        return Bars(
            ts=self.ts[window].copy(),
            **{name: getattr(self, name)[window].copy() for name in PRICE_COLUMNS},
        )

    def take(self, rows: npt.NDArray[Any] | builtins.slice) -> Bars:
        """The bars at ``rows``, in that order: an index array or mask copies, a slice (step 1)
        gives views of these arrays."""
        return Bars(ts=self.ts[rows], **{name: getattr(self, name)[rows] for name in PRICE_COLUMNS})

    def field(self, name: str) -> Float64Array:
        """A price column by name (``open``/``high``/``low``/``close``/``volume``)."""
        column: Float64Array = getattr(self, name)
        return column

    def seconds(self) -> Int64Array:
        """The open times as epoch seconds (history, windows and bar JSON count in them)."""
        return epoch.seconds_from_ms(self.ts)

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


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar; ``ts`` is the open time in epoch seconds (UTC)."""

    symbol: str
    timeframe: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def to_json(self) -> bytes:
        """The canonical JSON of this bar (no symbol/timeframe: its container names them)."""
        return encode_bar_json(self.ts, self.open, self.high, self.low, self.close, self.volume)

    @classmethod
    def from_json(cls, symbol: str, timeframe: str, raw: bytes | str) -> Bar:
        data = orjson.loads(raw)
        return cls(
            symbol=symbol,
            timeframe=timeframe,
            ts=epoch.parse_timestamp(data["ts"]),
            open=float(data["open"]),
            high=float(data["high"]),
            low=float(data["low"]),
            close=float(data["close"]),
            volume=float(data["volume"]),
        )


def encode_bar_json(
    ts: int | str, open_: float, high: float, low: float, close: float, volume: float
) -> bytes:
    """Canonical bar JSON; ``ts`` as epoch seconds or an already formatted ISO string."""
    stamp = ts if isinstance(ts, str) else epoch.iso_from_seconds(ts)
    return orjson.dumps(
        {
            "ts": stamp,
            "open": float(open_),
            "high": float(high),
            "low": float(low),
            "close": float(close),
            "volume": float(volume),
        }
    )


def owned_symbol(owner: str | None, symbol: str) -> str:
    """The name of ``owner``'s ``symbol`` where series of every owner share one namespace
    (Redis window keys, Kafka keys): ``SYMBOL`` for the platform's public reference data
    (``owner`` ``None`` or empty), ``owner/SYMBOL`` for a user's own series. A symbol never
    contains ``/`` (see `SYMBOL_PATTERN`), so no two owners' names can collide."""
    return f"{owner}/{symbol}" if owner else symbol


def series_key(symbol: str, timeframe: str, owner: str | None = None) -> str:
    """The Kafka key and window name of a series: ``SYMBOL:timeframe`` for platform data,
    ``owner/SYMBOL:timeframe`` for a user's own series (see `owned_symbol`)."""
    return f"{owned_symbol(owner, symbol)}:{timeframe}"


class BarEventItem(BaseModel):
    """One bar inside a ``market.bars`` event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    correction: bool = Field(description="true when this replaces a bar published before")
    revision: int = Field(ge=0, description="0 for the first version, +1 per correction")
    version: int = Field(
        ge=0, description="increases with every stored change of this bar; keep the highest"
    )


@default_registry.register("market.bars")
class MarketBarsPayload(BaseModel):
    """Bars of one series accepted or corrected together, oldest first.

    Published on ``market.bars.v1`` with key `series_key` (``SYMBOL:timeframe``, prefixed
    ``owner/`` for a user's own series). A bulk ingest yields events of up to
    ``bars_per_event`` bars; a live feed yields one bar per event. Duplicates of stored bars
    are never published; a correction carries ``correction=true``. Two users' series of one
    symbol are different series: a consumer tells them apart by ``owner``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str
    timeframe: Timeframe
    source: str
    owner: str | None = Field(
        default=None,
        description="the user whose series this is; null for the platform's public data",
    )
    bars: list[BarEventItem] = Field(min_length=1)


def payload_dict(
    symbol: str, timeframe: str, source: str, bars: Any, owner: str | None = None
) -> dict[str, Any]:
    """A `MarketBarsPayload` as plain data (the hot path skips model construction; ``bars``
    may be pre-encoded JSON wrapped in ``orjson.Fragment``)."""
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "source": source,
        "owner": owner or None,
        "bars": bars,
    }
