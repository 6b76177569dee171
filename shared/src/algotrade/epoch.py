"""Instants as integer epoch time, and every conversion to and from it.

The platform counts time in UTC from the Unix epoch with no leap seconds, so it has no time
zones and no DST: bar columns (`algotrade.bars.Bars`) and the Arrow wire format carry int64
epoch **milliseconds**, history, Redis windows and bar JSON work in whole epoch **seconds**
(``2024-01-02T15:04:00Z``). Every boundary (HTTP, files, PostgreSQL, NumPy, pandas) converts
through the functions here, so each rule is written once:

- a naive datetime, or ISO text without an offset where that is allowed, means UTC;
- conversions to a coarser unit floor (``-1 ms`` is second ``-1``), also before 1970;
- datetime arithmetic is exact integer arithmetic, never ``float`` seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final, overload

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

Int64Array = npt.NDArray[np.int64]

EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
MS_PER_SECOND: Final[int] = 1000
_ONE_MS: Final[timedelta] = timedelta(milliseconds=1)
_ONE_SECOND: Final[timedelta] = timedelta(seconds=1)
# Seconds beyond this would overflow int64 as milliseconds; arrays saturate here instead of
# wrapping around, so an absurd value stays out of every valid range.
_MAX_MS_SECONDS: Final[int] = (2**63 - 1) // MS_PER_SECOND

# -- seconds and milliseconds ---------------------------------------------------------------


@overload
def ms_from_seconds(seconds: int) -> int: ...
@overload
def ms_from_seconds(seconds: Int64Array) -> Int64Array: ...
def ms_from_seconds(seconds: int | Int64Array) -> int | Int64Array:
    """Epoch seconds as epoch milliseconds (arrays saturate rather than overflow)."""
    if isinstance(seconds, np.ndarray):
        clipped = np.clip(seconds.astype(np.int64, copy=False), -_MAX_MS_SECONDS, _MAX_MS_SECONDS)
        ms: Int64Array = clipped * np.int64(MS_PER_SECOND)
        return ms
    return int(seconds) * MS_PER_SECOND


@overload
def seconds_from_ms(ms: int) -> int: ...
@overload
def seconds_from_ms(ms: Int64Array) -> Int64Array: ...
def seconds_from_ms(ms: int | Int64Array) -> int | Int64Array:
    """Epoch milliseconds as whole epoch seconds, floored."""
    if isinstance(ms, np.ndarray):
        seconds: Int64Array = ms.astype(np.int64, copy=False) // np.int64(MS_PER_SECOND)
        return seconds
    return int(ms) // MS_PER_SECOND


# -- datetimes ------------------------------------------------------------------------------


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken as UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def ms_from_datetime(moment: datetime) -> int:
    """A datetime as epoch milliseconds (naive means UTC; sub-millisecond parts floor)."""
    return (as_utc(moment) - EPOCH) // _ONE_MS


def seconds_from_datetime(moment: datetime) -> int:
    """A datetime as whole epoch seconds (naive means UTC; fractions floor)."""
    return (as_utc(moment) - EPOCH) // _ONE_SECOND


def datetime_from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=int(ms))


def datetime_from_seconds(seconds: int | float) -> datetime:
    """Epoch seconds (fractions kept to the microsecond) as an aware UTC datetime."""
    return EPOCH + timedelta(seconds=seconds)


def local_date(seconds: int, tz: tzinfo) -> date:
    """The calendar date in ``tz`` at the instant ``seconds``."""
    return datetime_from_seconds(seconds).astimezone(tz).date()


def seconds_from_local_midnight(day: date, tz: tzinfo) -> int:
    """Epoch seconds of 00:00 on ``day`` in ``tz``."""
    return seconds_from_datetime(datetime(day.year, day.month, day.day, tzinfo=tz))


# -- ISO-8601 text --------------------------------------------------------------------------


def parse_iso(text: str, *, assume_utc: bool = False) -> datetime:
    """ISO-8601 text as an aware UTC datetime; `ValueError` saying why not.

    Text without a UTC offset is refused unless ``assume_utc`` (files often omit it; a live
    push must say which instant it means).
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"timestamp {text[:40]!r} is not ISO-8601") from None
    if parsed.tzinfo is None and not assume_utc:
        raise ValueError(f"timestamp {text[:40]!r} has no UTC offset (add 'Z')")
    return as_utc(parsed)


def ms_from_iso(text: str, *, assume_utc: bool = True) -> int:
    """ISO-8601 text as epoch milliseconds (without an offset it is UTC unless refused)."""
    return ms_from_datetime(parse_iso(text, assume_utc=assume_utc))


def iso_from_seconds(seconds: int) -> str:
    """Epoch seconds as ``2024-01-02T15:04:00Z``, the text of a bar's open time."""
    return datetime_from_seconds(int(seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_from_ms(ms: int) -> str:
    """Epoch milliseconds as ``2024-01-02T15:04:00Z`` (whole seconds, floored)."""
    return iso_from_seconds(seconds_from_ms(int(ms)))


def iso_array_from_seconds(seconds: Int64Array) -> list[str]:
    """Vectorised `iso_from_seconds` (numpy formats the whole column at once)."""
    strings = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s", timezone="UTC")
    return list(strings.tolist())


def parse_timestamp(value: object, *, assume_utc: bool = False) -> int:
    """A bar's ``ts`` as sent: ISO-8601 text or epoch seconds (int/float) to epoch seconds.

    `ValueError` otherwise; fractional seconds must be zero; text without an offset as in
    `parse_iso`.
    """
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO-8601 text or epoch seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError("epoch timestamp must be a whole number of seconds")
        return int(value)
    if isinstance(value, str):
        parsed = parse_iso(value, assume_utc=assume_utc)
        if parsed.microsecond:
            raise ValueError(f"timestamp {value[:40]!r} has fractional seconds")
        return seconds_from_datetime(parsed)
    raise ValueError("timestamp must be ISO-8601 text or epoch seconds")


_ISO_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_ISO_SEPARATORS = np.frombuffer(b"--T::Z", np.uint8)
_ISO_SEPARATOR_AT = np.array([4, 7, 10, 13, 16, 19])


def seconds_from_iso_array(stamps: list[Any]) -> Int64Array | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` strings to epoch seconds, vectorised; None unless every one
    is exactly that form and a real date and time (callers then parse one by one)."""
    n = len(stamps)
    try:
        raw = "".join(stamps).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        return None
    if len(raw) != 20 * n:
        return None
    chars = np.frombuffer(raw, np.uint8).reshape(n, 20)
    if not (chars[:, _ISO_SEPARATOR_AT] == _ISO_SEPARATORS).all():
        return None
    digits = chars[:, _ISO_DIGITS].astype(np.int64) - 48
    if ((digits < 0) | (digits > 9)).any():
        return None
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month, day = digits[:, 4] * 10 + digits[:, 5], digits[:, 6] * 10 + digits[:, 7]
    hour, minute = digits[:, 8] * 10 + digits[:, 9], digits[:, 10] * 10 + digits[:, 11]
    second = digits[:, 12] * 10 + digits[:, 13]
    if ((month < 1) | (month > 12) | (day < 1) | (hour > 23) | (minute > 59) | (second > 59)).any():
        return None
    months = (year - 1970) * 12 + (month - 1)
    first_of_month = months.astype("datetime64[M]")
    dates = first_of_month.astype("datetime64[D]") + (day - 1)
    if (dates.astype("datetime64[M]") != first_of_month).any():  # e.g. February 30
        return None
    seconds: Int64Array = dates.astype(np.int64) * 86_400 + hour * 3600 + minute * 60 + second
    return seconds


def ms_from_iso_array(stamps: list[str]) -> Int64Array:
    """ISO-8601 strings (without an offset they are UTC) as epoch milliseconds: whole columns
    of ``YYYY-MM-DDTHH:MM:SSZ`` at NumPy speed, anything else one by one."""
    seconds = seconds_from_iso_array(stamps)
    if seconds is not None:
        return ms_from_seconds(seconds)
    return np.fromiter((ms_from_iso(s) for s in stamps), np.int64, len(stamps))


# -- PostgreSQL -----------------------------------------------------------------------------

POSTGRES_EPOCH_MS: Final[int] = 946_684_800_000  # 2000-01-01T00:00Z in Unix epoch milliseconds


def ms_from_postgres_micros(micros: Int64Array) -> Int64Array:
    """PostgreSQL's binary ``timestamptz`` (microseconds since 2000-01-01 UTC) as epoch
    milliseconds, floored."""
    ms: Int64Array = micros // np.int64(1000) + np.int64(POSTGRES_EPOCH_MS)
    return ms


# -- NumPy and pandas -----------------------------------------------------------------------


def ms_from_datetime64(values: Any) -> Int64Array:
    """NumPy ``datetime64`` values of any unit (naive, meaning UTC) as epoch milliseconds,
    floored; ISO strings without an offset are accepted too."""
    ms: Int64Array = np.asarray(values, dtype="datetime64[ms]").astype(np.int64)
    return ms


def datetime64_from_ms(ms: Int64Array) -> npt.NDArray[np.datetime64]:
    """Epoch milliseconds as ``datetime64[ms]`` (UTC, naive as NumPy keeps them)."""
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")


def ms_from_pandas(values: Any) -> Int64Array:
    """pandas datetimes (a ``DatetimeIndex`` or datetime Series; naive means UTC) as epoch
    milliseconds, floored."""
    import pandas as pd

    moments = pd.DatetimeIndex(values)
    if moments.tz is None:
        moments = moments.tz_localize("UTC")
    return np.asarray(moments.as_unit("ms").asi8, dtype=np.int64)


def seconds_from_pandas(values: Any) -> Int64Array:
    """pandas datetimes as whole epoch seconds, floored (see `ms_from_pandas`)."""
    return seconds_from_ms(ms_from_pandas(values))


def pandas_index_from_ms(ms: Any, name: str | None = "ts") -> pd.DatetimeIndex:
    """Epoch milliseconds as a UTC ``DatetimeIndex`` (pandas' default nanosecond unit)."""
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ms), unit="ms", utc=True), name=name)


# -- timeframe alignment --------------------------------------------------------------------


@overload
def floor_to_step(ts: int, step: int) -> int: ...
@overload
def floor_to_step(ts: Int64Array, step: int) -> Int64Array: ...
def floor_to_step(ts: int | Int64Array, step: int) -> int | Int64Array:
    """The start of the ``step``-long bucket holding ``ts``, counted from the epoch (works in
    any unit, as long as ``ts`` and ``step`` share it; floors before 1970 too)."""
    return ts - ts % step


def ceil_to_step(ts: int, step: int) -> int:
    """The first bucket start at or after ``ts`` (see `floor_to_step`)."""
    return ts + (-ts) % step
