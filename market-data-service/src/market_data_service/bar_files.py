"""Reading bar files (CSV, gzip CSV, Parquet) in chunks, with a line number for every bad row.

Columns are found by name, case-insensitively, ignoring ``<>``, spaces, ``_`` and ``-``:

- time: ``timestamp``/``datetime``/``ts``/``open_time``/``t``, else ``date`` + ``time``
  (MetaTrader exports), else ``time`` or ``date`` alone;
- prices: ``open``/``o``, ``high``/``h``, ``low``/``l``, ``close``/``c``;
- volume: ``volume``/``vol``/``v``, else ``tickvol``/``tick_volume``.

Time values may be ISO-8601 (``T`` or space, optional offset; without one they are UTC), a
date alone, ``YYYY.MM.DD``/``YYYY/MM/DD`` dates, ``YYYYMMDD``, or epoch seconds, milliseconds,
microseconds or nanoseconds (told apart by magnitude). Parquet time columns may also be
timestamp or date types. CSV is read with the ``csv`` module, whose ``line_num`` is the
physical line, so a reported line is the line an editor shows.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from algotrade.bars import REASON_CODE
from market_data_service.batch import BarBatch, Rejection

TIME_NAMES = ("timestamp", "datetime", "datetimeutc", "ts", "opentime", "t")
PRICE_NAMES = {
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closeprice"),
    "volume": ("volume", "vol", "v", "basevolume", "tickvol", "tickvolume"),
}
MAX_LINE_BYTES = 64 * 1024


class BarFileError(ValueError):
    """The file as a whole cannot be imported (not CSV/Parquet, required columns missing)."""


@dataclass
class Chunk:
    bars: BarBatch  # valid bars; index = line (CSV) or row number (Parquet)
    rejections: list[Rejection]
    rows: int
    bytes_done: int


@dataclass(frozen=True)
class Layout:
    """Which column holds what (positions for CSV, names for Parquet)."""

    time: Any
    date: Any | None
    prices: dict[str, Any]


def _key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch.isalnum())


def resolve_layout(header: list[str]) -> Layout:
    keys = [_key(h) for h in header]

    def find(names: tuple[str, ...]) -> int | None:
        for name in names:
            if name in keys:
                return keys.index(name)
        return None

    missing = [field for field, names in PRICE_NAMES.items() if find(names) is None]
    time_col = find(TIME_NAMES)
    date_col: int | None = None
    if time_col is None:
        date_idx, time_idx = find(("date",)), find(("time",))
        if date_idx is not None and time_idx is not None:
            time_col, date_col = time_idx, date_idx
        else:
            time_col = time_idx if time_idx is not None else date_idx
    if time_col is None:
        missing.insert(0, "timestamp")
    if missing:
        raise BarFileError(
            f"missing column(s) {', '.join(missing)}; the header has {_shown(header)}"
        )
    prices = {field: find(names) for field, names in PRICE_NAMES.items()}
    return Layout(time=time_col, date=date_col, prices=prices)


def _shown(header: list[str]) -> str:
    return ", ".join(header)[:200].encode("ascii", "backslashreplace").decode()


def detect_format(path: Path, declared: str | None = None) -> str:
    if declared in ("csv", "parquet"):
        return declared
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        return "parquet"
    return "csv"


def parse_time_text(value: str) -> int:
    """One time value of a file to epoch seconds (see the module doc for accepted forms)."""
    text = _yyyymmdd(value)
    if not text:
        raise ValueError("empty time value")
    first = text[0]
    if first.isdigit() or first in "+-":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        else:
            return epoch_seconds(number)
    if len(text) >= 10 and text[4] in "./" and text[7] in "./":
        text = f"{text[:4]}-{text[5:7]}-{text[8:10]}{text[10:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {value[:40]!r} is not ISO-8601, a date or an epoch") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.microsecond:
        raise ValueError(f"time {value[:40]!r} has fractional seconds")
    return int(parsed.timestamp())


def epoch_seconds(number: float) -> int:
    if not math.isfinite(number):
        raise ValueError("time is not a finite number")
    magnitude = abs(number)
    if magnitude >= 1e17:
        divisor = 1e9
    elif magnitude >= 1e14:
        divisor = 1e6
    elif magnitude >= 1e11:
        divisor = 1e3
    else:
        divisor = 1.0
    seconds = number / divisor
    if seconds != math.floor(seconds):
        raise ValueError(f"epoch time {number!r} is not a whole second")
    return int(seconds)


def _yyyymmdd(value: str) -> str:
    # Eight digits read as YYYYMMDD when they form a date from 1900 on: as epoch seconds they
    # would be a moment in 1970, which no bar file in practice means.
    text = value.strip()
    if len(text) == 8 and text.isdigit() and text[:2] in ("19", "20", "21"):
        month, day = int(text[4:6]), int(text[6:])
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


class _Counting(io.RawIOBase):
    """Counts bytes read from the underlying (possibly compressed) file for progress."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def read_csv_chunks(path: Path, *, symbol: str, timeframe: str, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a CSV (or gzip CSV) file; a header row is required."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        counter = _Counting(raw)
        binary: IO[bytes] = io.BufferedReader(counter)
        if gzipped:
            binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
        try:
            header_line = text.readline(MAX_LINE_BYTES)
        except (OSError, EOFError) as exc:
            raise BarFileError(f"cannot read the file: {exc}") from None
        if not header_line.strip():
            raise BarFileError("the file is empty (a header row is required)")
        delimiter = _sniff_delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=delimiter))
        layout = resolve_layout(header)
        reader = csv.reader(text, delimiter=delimiter, strict=False)
        width = len(header)
        while True:
            try:
                chunk = _read_csv_rows(reader, layout, width, chunk_rows)
            except (csv.Error, OSError, EOFError) as exc:
                raise BarFileError(
                    f"unreadable CSV near line {reader.line_num + 1}: {exc}"
                ) from None
            if chunk is None:
                return
            lines, cells, rejections = chunk
            yield _chunk(symbol, timeframe, lines, cells, rejections, counter.count)


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv_rows(
    reader: Any, layout: Layout, width: int, limit: int
) -> tuple[list[int], list[tuple[Any, ...]], list[Rejection]] | None:
    lines: list[int] = []
    cells: list[tuple[Any, ...]] = []
    rejections: list[Rejection] = []
    time_col, date_col = layout.time, layout.date
    cols = [layout.prices[f] for f in ("open", "high", "low", "close", "volume")]
    seen = 0
    for row in reader:
        line = reader.line_num + 1  # +1: the header was read before the reader started
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        seen += 1
        if len(row) < width:
            rejections.append(
                Rejection(line, "invalid_bar", f"expected {width} columns, found {len(row)}")
            )
        else:
            if date_col is None:
                stamp = _yyyymmdd(row[time_col])
            else:
                stamp = f"{_yyyymmdd(row[date_col])} {row[time_col].strip()}"
            try:
                ts = parse_time_text(stamp)
            except ValueError as exc:
                rejections.append(Rejection(line, "invalid_timestamp", str(exc)))
            else:
                try:
                    values = tuple(float(row[c]) for c in cols)
                except ValueError:
                    name, text = next(
                        (f, row[c])
                        for f, c in zip(PRICE_NAMES, cols, strict=True)
                        if not _is_float(row[c])
                    )
                    rejections.append(
                        Rejection(line, "invalid_number", f"{name} {text[:30]!r} is not a number")
                    )
                else:
                    lines.append(line)
                    cells.append((ts, *values))
        if seen >= limit:
            break
    if seen == 0:
        return None
    return lines, cells, rejections


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _chunk(
    symbol: str,
    timeframe: str,
    lines: list[int],
    cells: list[tuple[Any, ...]],
    rejections: list[Rejection],
    bytes_done: int,
) -> Chunk:
    if cells:
        matrix = np.array([c[1:] for c in cells], dtype=np.float64).reshape(len(cells), 5)
        ts = np.fromiter((c[0] for c in cells), np.int64, len(cells))
    else:
        matrix = np.zeros((0, 5))
        ts = np.zeros(0, np.int64)
    batch = BarBatch.of_series(
        symbol,
        timeframe,
        ts,
        matrix[:, 0],
        matrix[:, 1],
        matrix[:, 2],
        matrix[:, 3],
        matrix[:, 4],
        index=np.asarray(lines, np.int64),
    )
    valid, invalid = batch.validate()
    all_rejections = sorted(rejections + invalid, key=lambda r: r.index)
    return Chunk(valid, all_rejections, len(cells) + len(rejections), bytes_done)


def read_parquet_chunks(
    path: Path, *, symbol: str, timeframe: str, chunk_rows: int
) -> Iterator[Chunk]:
    """Chunks of a Parquet file; ``index`` is the 1-based row number."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise BarFileError(f"not a readable Parquet file: {exc}") from None
    names = parquet.schema_arrow.names
    layout = resolve_layout(names)
    wanted = [names[layout.time], *(names[layout.prices[f]] for f in PRICE_NAMES)]
    if layout.date is not None:
        wanted.append(names[layout.date])
    total_rows = max(1, parquet.metadata.num_rows)
    size = path.stat().st_size
    done = 0
    try:
        for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            n = record_batch.num_rows
            rows = np.arange(done + 1, done + n + 1, dtype=np.int64)
            done += n
            yield _parquet_chunk(
                record_batch, layout, names, symbol, timeframe, rows, int(size * done / total_rows)
            )
    except pa.ArrowException as exc:
        raise BarFileError(f"unreadable Parquet data after row {done}: {exc}") from None


def _parquet_chunk(
    record_batch: pa.RecordBatch,
    layout: Layout,
    names: list[str],
    symbol: str,
    timeframe: str,
    rows: npt.NDArray[np.int64],
    bytes_done: int,
) -> Chunk:
    n = record_batch.num_rows
    reasons = np.zeros(n, np.int8)
    messages: dict[int, str] = {}
    time_column = record_batch.column(names[layout.time])
    date_column = record_batch.column(names[layout.date]) if layout.date is not None else None
    ts = _arrow_times(time_column, date_column, reasons, messages)
    prices = []
    for field in PRICE_NAMES:
        column = record_batch.column(names[layout.prices[field]])
        try:
            values = pc.cast(column, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pa.array([_float_or_nan(v) for v in column.to_pylist()], type=pa.float64())
        nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), bool)
        for i in np.flatnonzero(nulls & (reasons == 0)).tolist():
            reasons[i] = REASON_CODE["invalid_number"]
            messages[i] = f"{field} is missing or not a number"
        prices.append(np.asarray(values.fill_null(math.nan).to_numpy(zero_copy_only=False)))
    batch = BarBatch.of_series(symbol, timeframe, ts, *prices, index=rows)
    valid, rejections = batch.validate(reasons, messages)
    return Chunk(valid, rejections, n, bytes_done)


def _float_or_nan(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _arrow_times(
    column: pa.Array,
    date_column: pa.Array | None,
    reasons: npt.NDArray[np.int8],
    messages: dict[int, str],
) -> npt.NDArray[np.int64]:
    n = len(column)
    ts = np.zeros(n, np.int64)
    kind = column.type
    if date_column is None and pa.types.is_timestamp(kind):
        seconds = pc.cast(column, pa.timestamp("s", tz=kind.tz), safe=False)
        exact = pc.equal(
            pc.cast(column, pa.timestamp("ns", tz=kind.tz)),
            pc.cast(seconds, pa.timestamp("ns", tz=kind.tz)),
        )
        raw = np.asarray(seconds.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
        ts[:] = raw
        _flag(
            reasons, messages, np.asarray(column.is_null()), "invalid_timestamp", "time is missing"
        )
        _flag(
            reasons,
            messages,
            ~np.asarray(exact.fill_null(True)),
            "invalid_timestamp",
            "time has fractional seconds",
        )
        return ts
    if date_column is None and pa.types.is_date(kind):
        days = pc.cast(column, pa.date32()).cast(pa.int32()).fill_null(0)
        ts[:] = np.asarray(days.to_numpy(zero_copy_only=False), np.int64) * 86_400
        _flag(
            reasons, messages, np.asarray(column.is_null()), "invalid_timestamp", "time is missing"
        )
        return ts
    parse: Callable[[Any], int]
    if date_column is None and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        parse = lambda v: epoch_seconds(float(v))  # noqa: E731
        values = column.to_pylist()
    else:
        parse = parse_time_text
        if date_column is not None:
            values = [
                None if d is None or t is None else f"{_yyyymmdd(str(d))} {t}"
                for d, t in zip(date_column.to_pylist(), column.to_pylist(), strict=True)
            ]
        else:
            values = [None if v is None else _yyyymmdd(str(v)) for v in column.to_pylist()]
    for i, value in enumerate(values):
        if value is None:
            reasons[i] = REASON_CODE["invalid_timestamp"]
            messages[i] = "time is missing"
            continue
        try:
            ts[i] = parse(value)
        except (ValueError, OverflowError) as exc:
            reasons[i] = REASON_CODE["invalid_timestamp"]
            messages[i] = str(exc)
    return ts


def _flag(
    reasons: npt.NDArray[np.int8],
    messages: dict[int, str],
    mask: npt.NDArray[np.bool_],
    reason: str,
    message: str,
) -> None:
    for i in np.flatnonzero(mask & (reasons == 0)).tolist():
        reasons[i] = REASON_CODE[reason]
        messages[i] = message
