"""The bar: timeframes, symbol names, validation rules, wire encoding and the bar event schema.

A bar is (symbol, timeframe, open time in UTC, open, high, low, close, volume). The open time
is held as integer epoch seconds and must be aligned to its timeframe counted from the Unix
epoch (a 4h bar opens at 00, 04, ... 20 UTC; a 1d bar at midnight UTC, the trading date for
equities). Every service that reads or writes bars uses these rules, so they live here.

The canonical JSON of a bar is ``{"ts":"2024-01-02T15:04:00Z","open":..,"high":..,"low":..,
"close":..,"volume":..}`` with every number a float. The market data service serves it over
HTTP, stores it in Redis windows (`algotrade.windows`) and publishes it in ``market.bars``
events, byte for byte the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel, ConfigDict, Field

from algotrade.events import default_registry

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


def iso_utc(ts: int) -> str:
    """Epoch seconds as ``2024-01-02T15:04:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_array(ts: Int64Array) -> list[str]:
    """Vectorised `iso_utc` (numpy formats the whole column at once)."""
    strings = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s", timezone="UTC")
    return list(strings.tolist())


def parse_timestamp(value: object, *, assume_utc: bool = False) -> int:
    """ISO-8601 text or epoch seconds (int/float) to epoch seconds; `ValueError` otherwise.

    Text without a UTC offset is refused unless ``assume_utc`` (files often omit it; a live
    push must say which instant it means). Fractional seconds must be zero.
    """
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO-8601 text or epoch seconds")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError("epoch timestamp must be a whole number of seconds")
        seconds = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"timestamp {value[:40]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            if not assume_utc:
                raise ValueError(f"timestamp {value[:40]!r} has no UTC offset (add 'Z')")
            parsed = parsed.replace(tzinfo=UTC)
        if parsed.microsecond:
            raise ValueError(f"timestamp {value[:40]!r} has fractional seconds")
        seconds = int(parsed.timestamp())
    else:
        raise ValueError("timestamp must be ISO-8601 text or epoch seconds")
    return seconds


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
    ts: Int64Array,
    open_: Float64Array,
    high: Float64Array,
    low: Float64Array,
    close: Float64Array,
    volume: Float64Array,
    step_seconds: Int64Array | int,
    *,
    reasons: Int8Array | None = None,
) -> Int8Array:
    """Vectorised bar checks: one reason code per bar (first failing rule), 0 when valid.

    ``reasons`` may carry codes already found while parsing (kept; later checks only fill
    zeros), so each rejected bar reports the first problem it has.
    """
    n = ts.shape[0]
    out: Int8Array = np.zeros(n, dtype=np.int8) if reasons is None else reasons
    step = np.asarray(step_seconds, dtype=np.int64)
    safe_step = np.where(step > 0, step, 1)

    def flag(mask: npt.NDArray[np.bool_], reason: str) -> None:
        out[(out == 0) & mask] = REASON_CODE[reason]

    flag((ts < MIN_TS) | (ts >= MAX_TS), "timestamp_out_of_range")
    flag(ts % safe_step != 0, "misaligned_timestamp")
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
            ts=parse_timestamp(data["ts"]),
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
    stamp = ts if isinstance(ts, str) else iso_utc(ts)
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
