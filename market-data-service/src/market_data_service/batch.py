"""Batches of bars on their way into history, and turning a pushed JSON batch into valid bars
plus per-bar rejections.

Every ingestion path (HTTP push, file import, replay, exchange provider) ends in a `BarBatch`:
the bars as `algotrade.bars.Bars` columns plus, per bar, its series and where it came from, so
validation is a handful of vectorised comparisons and the history store gets its arrays
without a per-bar Python object in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from algotrade import epoch
from algotrade.bars import (
    PRICE_COLUMNS,
    REASON_CODE,
    REASONS,
    TIMEFRAME_SECONDS,
    TIMEFRAMES,
    Bars,
    normalize_symbol,
    reason_message,
    validate_ohlcv,
)
from algotrade.errors import BadRequest, PayloadTooLarge, ValidationFailed

ObjectArray = npt.NDArray[np.object_]
PRICE_FIELDS = PRICE_COLUMNS


@dataclass(frozen=True, slots=True)
class Rejection:
    """A bar that was not stored: where it came from (request index or file line) and why."""

    index: int
    reason: str
    message: str

    def as_dict(self, key: str = "index") -> dict[str, Any]:
        return {key: self.index, "reason": self.reason, "message": self.message}


@dataclass
class BarBatch:
    """Bars of one or more series, in arrival order and not yet validated: the columns, and
    per bar its ``symbol``, ``timeframe`` and ``index`` (where it came from: request index or
    file line)."""

    bars: Bars
    symbol: ObjectArray
    timeframe: ObjectArray
    index: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.bars)

    @classmethod
    def of_series(
        cls,
        symbol: str,
        timeframe: str,
        bars: Bars,
        index: npt.NDArray[np.int64] | None = None,
    ) -> BarBatch:
        """A batch of one series (imports, replays, providers)."""
        n = len(bars)
        return cls(
            bars=clean(bars),
            symbol=np.full(n, symbol, dtype=object),
            timeframe=np.full(n, timeframe, dtype=object),
            index=np.arange(n, dtype=np.int64) if index is None else index.astype(np.int64),
        )

    def take(self, rows: npt.NDArray[Any]) -> BarBatch:
        return BarBatch(
            bars=self.bars.take(rows),
            symbol=self.symbol[rows],
            timeframe=self.timeframe[rows],
            index=self.index[rows],
        )

    def step_ms(self) -> npt.NDArray[np.int64]:
        if len(self) and (self.timeframe == self.timeframe[0]).all():
            step = TIMEFRAME_SECONDS.get(self.timeframe[0], 0)
            return np.full(len(self), epoch.ms_from_seconds(step), np.int64)
        seconds = np.fromiter(
            (TIMEFRAME_SECONDS.get(tf, 0) for tf in self.timeframe), np.int64, len(self)
        )
        return epoch.ms_from_seconds(seconds)

    def validate(
        self, reasons: npt.NDArray[np.int8] | None = None, messages: dict[int, str] | None = None
    ) -> tuple[BarBatch, list[Rejection]]:
        """Split into valid bars and rejections (reasons found earlier are kept)."""
        codes = validate_ohlcv(self.bars, self.step_ms(), reasons=reasons)
        bad = np.flatnonzero(codes)
        if bad.size == 0:
            return self, []
        rejections = []
        bars = self.bars
        for i in bad.tolist():
            code = int(codes[i])
            message = (messages or {}).get(i) or reason_message(
                code,
                ts=epoch.seconds_from_ms(int(bars.ts[i])),
                values=(
                    float(bars.open[i]),
                    float(bars.high[i]),
                    float(bars.low[i]),
                    float(bars.close[i]),
                    float(bars.volume[i]),
                ),
            )
            rejections.append(Rejection(int(self.index[i]), REASONS[code], message))
        return self.take(np.flatnonzero(codes == 0)), rejections


def clean(bars: Bars) -> Bars:
    """``bars`` with -0.0 turned into 0.0 (``+ 0.0``), so a bar's JSON bytes do not depend on
    the sign of zero."""
    return Bars(ts=bars.ts, **{name: _clean(getattr(bars, name)) for name in PRICE_COLUMNS})


def _clean(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    # + 0.0 turns -0.0 into 0.0, so a bar's JSON bytes do not depend on the sign of zero.
    return np.ascontiguousarray(values, dtype=np.float64) + 0.0


@dataclass
class PushBatch:
    """A parsed ``POST /api/market/bars`` body: the valid bars and the rejected ones."""

    size: int
    bars: BarBatch
    rejections: list[Rejection] = field(default_factory=list)


def parse_push_body(body: bytes, *, max_bars: int) -> PushBatch:
    """Parse and validate a pushed batch.

    The envelope must be ``{"bars": [...]}`` with optional batch-wide ``symbol`` and
    ``timeframe``; a bad envelope is a 4xx. Each bar is an object with ``ts`` (ISO-8601 with
    offset, or epoch seconds), ``open``, ``high``, ``low``, ``close``, ``volume`` and, unless
    given batch-wide, ``symbol`` and ``timeframe``; a bad bar is a per-bar rejection.
    """
    # Strict JSON like every platform route (`algotrade.strict_json`): NaN, Infinity, numbers
    # beyond a 64-bit float, NUL and nesting deeper than 1024 levels make the body a 400.
    if b"\\u0000" in body or b"\x00" in body:
        raise BadRequest("the request body is not valid JSON: NUL characters are not accepted")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the body must be a JSON object with a 'bars' list",
            errors=[{"loc": ["body"], "code": "object_expected", "message": "expected an object"}],
        )
    items = data.get("bars")
    if not isinstance(items, list):
        raise ValidationFailed(
            "'bars' must be a list of bar objects",
            errors=[
                {"loc": ["body", "bars"], "code": "list_expected", "message": "expected a list"}
            ],
        )
    if len(items) > max_bars:
        raise PayloadTooLarge(
            f"a batch holds at most {max_bars} bars; this one has {len(items)}",
            errors=[
                {
                    "loc": ["body", "bars"],
                    "code": "batch_too_large",
                    "message": f"{len(items)} bars > {max_bars}",
                }
            ],
        )
    default_symbol = _batch_field(data, "symbol", normalize_symbol)
    default_timeframe = _batch_field(data, "timeframe", _check_timeframe)
    fast = _parse_uniform(items, default_symbol, default_timeframe)
    if fast is not None:
        return fast
    return _parse_items(items, default_symbol, default_timeframe)


_NUMBER_TYPES = frozenset({int, float})


def _column(items: list[dict[str, Any]], name: str) -> list[Any]:
    return [item[name] for item in items]


def _parse_uniform(
    items: list[Any], default_symbol: str | None, default_timeframe: str | None
) -> PushBatch | None:
    """The common case in a few vectorised steps: every bar an object with well-typed fields
    and a symbol and timeframe that normalise. Anything else returns None, and the per-bar
    parser finds and names each problem."""
    n = len(items)
    if n == 0 or set(map(type, items)) != {dict}:
        return None
    try:
        columns = [_column(items, name) for name in PRICE_FIELDS]
        stamps = _column(items, "ts")
    except KeyError:
        return None
    for column in columns:
        if not set(map(type, column)) <= _NUMBER_TYPES:
            return None
    try:
        prices = np.array(columns, dtype=np.float64)
    except OverflowError:
        return None
    if not np.isfinite(prices).all():
        return None
    kinds = set(map(type, stamps))
    if kinds == {str}:
        ts = epoch.seconds_from_iso_array(stamps)
        if ts is None:
            return None
    elif kinds == {int}:
        try:
            ts = np.array(stamps, dtype=np.int64)
        except OverflowError:
            return None
    else:
        return None
    symbols = _uniform_names(items, "symbol", default_symbol, normalize_symbol)
    timeframes = _uniform_names(items, "timeframe", default_timeframe, _check_timeframe)
    if symbols is None or timeframes is None:
        return None
    batch = BarBatch(
        bars=clean(Bars.from_columns(epoch.ms_from_seconds(ts), *prices)),
        symbol=symbols,
        timeframe=timeframes,
        index=np.arange(n, dtype=np.int64),
    )
    valid, rejections = batch.validate()
    return PushBatch(size=n, bars=valid, rejections=rejections)


def _uniform_names(
    items: list[dict[str, Any]], field: str, default: str | None, check: Any
) -> ObjectArray | None:
    raw = [item.get(field) for item in items]
    if not set(map(type, raw)) <= {str, type(None)}:
        return None
    normalised: dict[Any, str] = {}
    for value in set(raw):
        if value is None:
            if default is None:
                return None
            normalised[None] = default
            continue
        try:
            normalised[value] = check(value)
        except ValueError:
            return None
    if len(normalised) == 1:
        return np.full(len(items), next(iter(normalised.values())), dtype=object)
    out = np.empty(len(items), dtype=object)
    out[:] = [normalised[value] for value in raw]
    return out


def _json_type(value: object) -> str:
    """The JSON type of a parsed value, for messages (``true`` is a bool, not a number)."""
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else "an object"


def _check_timeframe(value: object) -> str:
    if not isinstance(value, str) or value not in TIMEFRAME_SECONDS:
        raise ValueError(f"unknown timeframe {value!r}; use one of {', '.join(TIMEFRAMES)}")
    return value


def _batch_field(data: dict[str, Any], name: str, check: Any) -> str | None:
    if name not in data or data[name] is None:
        return None
    try:
        value: str = check(data[name])
    except ValueError as exc:
        raise ValidationFailed(
            f"batch {name} is invalid: {exc}",
            errors=[{"loc": ["body", name], "code": f"invalid_{name}", "message": str(exc)}],
        ) from None
    return value


def _parse_items(
    items: list[Any], default_symbol: str | None, default_timeframe: str | None
) -> PushBatch:
    n = len(items)
    ts = np.zeros(n, np.int64)
    prices = np.zeros((5, n), np.float64)
    symbols = np.full(n, "", dtype=object)
    timeframes = np.full(n, "", dtype=object)
    reasons = np.zeros(n, np.int8)
    messages: dict[int, str] = {}
    symbol_cache: dict[str, str | ValueError] = {}
    number_types = (int, float)

    def reject(i: int, reason: str, message: str) -> None:
        reasons[i] = REASON_CODE[reason]
        messages[i] = message

    for i, item in enumerate(items):
        if type(item) is not dict:
            reject(i, "invalid_bar", "a bar must be a JSON object")
            continue
        raw_symbol = item.get("symbol")
        if raw_symbol is None:
            if default_symbol is None:
                reject(i, "invalid_symbol", "symbol is missing (give it per bar or batch-wide)")
                continue
            symbol: str | ValueError = default_symbol
        elif isinstance(raw_symbol, str):
            cached = symbol_cache.get(raw_symbol)
            if cached is None:
                try:
                    cached = normalize_symbol(raw_symbol)
                except ValueError as exc:
                    cached = exc
                symbol_cache[raw_symbol] = cached
            symbol = cached
        else:
            symbol = ValueError("symbol must be a string")
        if isinstance(symbol, ValueError):
            reject(i, "invalid_symbol", str(symbol))
            continue
        timeframe = item.get("timeframe")
        if timeframe is None:
            timeframe = default_timeframe
        if type(timeframe) is not str or timeframe not in TIMEFRAME_SECONDS:
            reject(
                i,
                "invalid_timeframe",
                f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}",
            )
            continue
        symbols[i] = symbol
        timeframes[i] = timeframe
        try:
            o = item["open"]
            h = item["high"]
            lo = item["low"]
            c = item["close"]
            v = item["volume"]
            stamp = item["ts"]
        except KeyError as exc:
            reject(i, "missing_field", f"field {exc.args[0]!r} is missing")
            continue
        if not (
            type(o) in number_types
            and type(h) in number_types
            and type(lo) in number_types
            and type(c) in number_types
            and type(v) in number_types
        ):
            # Exact types: a JSON string ("100") or bool (true) is never read as a number.
            name, value = next(
                (f, x)
                for f, x in zip(PRICE_FIELDS, (o, h, lo, c, v), strict=True)
                if type(x) not in number_types
            )
            reject(i, "invalid_number", f"{name} must be a JSON number, not {_json_type(value)}")
            continue
        try:
            finite = (
                math.isfinite(o)
                and math.isfinite(h)
                and math.isfinite(lo)
                and math.isfinite(c)
                and math.isfinite(v)
            )
        except OverflowError:
            finite = False
        if not finite:
            reject(i, "non_finite", "prices and volume must be finite 64-bit numbers")
            continue
        prices[0, i] = o
        prices[1, i] = h
        prices[2, i] = lo
        prices[3, i] = c
        prices[4, i] = v
        try:
            ts[i] = epoch.parse_timestamp(stamp)
        except (ValueError, OverflowError, OSError) as exc:
            reject(i, "invalid_timestamp", str(exc))
            continue

    batch = BarBatch(
        bars=clean(Bars.from_columns(epoch.ms_from_seconds(ts), *prices)),
        symbol=symbols,
        timeframe=timeframes,
        index=np.arange(n, dtype=np.int64),
    )
    valid, rejections = batch.validate(reasons, messages)
    return PushBatch(size=n, bars=valid, rejections=rejections)
