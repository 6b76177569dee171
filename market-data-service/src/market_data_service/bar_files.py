"""Reading bar files (CSV, gzip CSV, Parquet) in chunks, with a line number for every bad row.

Columns are found by name, case-insensitively, ignoring ``<>``, spaces, ``_`` and ``-``:

- time: ``timestamp``/``datetime``/``ts``/``open_time``/``t``, else ``date`` + ``time``
  (MetaTrader exports), else ``time`` or ``date`` alone;
- prices: ``open``/``o``, ``high``/``h``, ``low``/``l``, ``close``/``c``;
- volume: ``volume``/``vol``/``v``, else ``tickvol``/``tick_volume``.

Time values may be ISO-8601 (``T`` or space, optional offset; without one they are UTC), a
date alone, ``YYYY.MM.DD``/``YYYY/MM/DD`` dates, ``YYYYMMDD``, or epoch seconds, milliseconds,
microseconds or nanoseconds (told apart by magnitude). Parquet time columns may also be
timestamp or date types. CSV is read with pyarrow's streaming reader and converted a column
at a time; a reported line is the physical line an editor shows (a row is one line: quoted
values cannot hold newlines). Rows with extra trailing cells are read; a line whose cells are
all empty counts as blank.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from algotrade import epoch
from algotrade.bars import REASON_CODE, Bars
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
CSV_BLOCK_BYTES = 1 << 20  # what pyarrow parses at a time: ~20,000 rows of OHLCV


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
        parsed = epoch.parse_iso(text, assume_utc=True)
    except ValueError:
        raise ValueError(f"time {value[:40]!r} is not ISO-8601, a date or an epoch") from None
    if parsed.microsecond:
        raise ValueError(f"time {value[:40]!r} has fractional seconds")
    return epoch.seconds_from_datetime(parsed)


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


class _RowsPyarrowSkipped:
    """The ``invalid_row_handler`` of the CSV reader: every row pyarrow cannot put in a
    batch, by line. Short rows are rejections, blank ones are skipped, and long ones (extra
    trailing cells, which the columns found by name do not need) are kept to be parsed."""

    def __init__(self, layout: Layout, width: int, delimiter: str) -> None:
        self.layout = layout
        self._width = width
        self._delimiter = delimiter
        self.lines: list[int] = []  # every line not in a batch, in file order
        self.rejections: list[Rejection] = []
        self.long_rows: list[tuple[int, list[str]]] = []

    def __call__(self, row: Any) -> str:
        # ``number`` counts lines of the stream after the header, which is line 1.
        line = int(row.number) + 1
        self.lines.append(line)
        text = row.text
        if not text.strip():
            return "skip"
        if row.actual_columns < self._width:
            self.rejections.append(
                Rejection(
                    line,
                    "invalid_bar",
                    f"expected {self._width} columns, found {row.actual_columns}",
                )
            )
        else:
            cells = next(csv.reader([text], delimiter=self._delimiter, strict=False))
            self.long_rows.append((line, cells))
        return "skip"


def read_csv_chunks(path: Path, *, symbol: str, timeframe: str, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a CSV (or gzip CSV) file; a header row is required.

    pyarrow's streaming reader parses blocks of the file into string columns; times and
    prices are then converted a column at a time (`_csv_columns`), falling back to the
    per-value parsers only for a chunk that holds a value pyarrow does not take. Every bar
    and rejection keeps its physical line number: a row is one line (no newlines inside
    quotes), and the lines pyarrow skips are known from the invalid-row handler.
    """
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        counter = _Counting(raw)
        binary: IO[bytes] = io.BufferedReader(counter)
        if gzipped:
            binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
        try:
            header_bytes = binary.readline(MAX_LINE_BYTES)
        except (OSError, EOFError) as exc:
            raise BarFileError(f"cannot read the file: {exc}") from None
        header_line = header_bytes.decode("utf-8-sig", errors="replace")
        if not header_line.strip():
            raise BarFileError("the file is empty (a header row is required)")
        delimiter = _sniff_delimiter(header_line)
        header = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter))
        layout = resolve_layout(header)
        width = len(header)
        names = [f"c{i}" for i in range(width)]
        wanted = [layout.time, *(layout.prices[f] for f in PRICE_NAMES)]
        if layout.date is not None:
            wanted.append(layout.date)
        skipped = _RowsPyarrowSkipped(layout, width, delimiter)
        try:
            reader = pa_csv.open_csv(
                binary,
                read_options=pa_csv.ReadOptions(
                    column_names=names, use_threads=False, block_size=CSV_BLOCK_BYTES
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter,
                    ignore_empty_lines=False,  # an empty line stays a row, so lines add up
                    invalid_row_handler=skipped,
                ),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=[names[i] for i in sorted(set(wanted))],
                    column_types={names[i]: pa.string() for i in set(wanted)},
                    check_utf8=False,
                ),
            )
            lines = _LineCounter(skipped)
            for record_batch in reader:
                yield from _csv_chunks(
                    record_batch,
                    lines,
                    skipped,
                    layout,
                    names,
                    symbol,
                    timeframe,
                    chunk_rows,
                    counter,
                )
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise BarFileError(f"unreadable CSV: {_printable_error(exc)}") from None
        if skipped.rejections or skipped.long_rows:
            yield _finish_chunk(_no_rows(), skipped, None, symbol, timeframe, counter.count)


def _printable_error(exc: BaseException) -> str:
    return str(exc)[:300].encode("ascii", "backslashreplace").decode()


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _LineCounter:
    """Gives the rows of each batch their line numbers: the lines from the last one given,
    minus those the invalid-row handler took."""

    def __init__(self, skipped: _RowsPyarrowSkipped) -> None:
        self._skipped = skipped
        self._next = 2
        self._taken = 0  # handler lines already accounted for

    def take(self, n: int) -> npt.NDArray[np.int64]:
        pending = np.asarray(self._skipped.lines[self._taken :], np.int64)
        candidates: npt.NDArray[np.int64] = np.arange(
            self._next, self._next + n + pending.size, dtype=np.int64
        )
        if pending.size:
            candidates = candidates[~np.isin(candidates, pending)]
        lines = candidates[:n]
        if n:
            self._next = int(lines[-1]) + 1
            self._taken += int(np.searchsorted(pending, self._next))
        return lines


@dataclass
class _Rows:
    """Rows of one chunk before validation: their lines, the bars they hold and ``reasons``
    (as in `validate_ohlcv`) for rows already found bad while parsing."""

    lines: npt.NDArray[np.int64]
    bars: Bars
    reasons: npt.NDArray[np.int8]
    messages: dict[int, str]


def _no_rows() -> _Rows:
    return _Rows(np.zeros(0, np.int64), Bars.empty(), np.zeros(0, np.int8), {})


def _rows(
    lines: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64],
    prices: Sequence[npt.NDArray[np.float64]],
    reasons: npt.NDArray[np.int8],
    messages: dict[int, str],
) -> _Rows:
    """Rows whose times were read as epoch seconds, as files state them."""
    return _Rows(
        lines, Bars.from_columns(epoch.ms_from_seconds(seconds), *prices), reasons, messages
    )


def _csv_chunks(
    record_batch: pa.RecordBatch,
    lines: _LineCounter,
    skipped: _RowsPyarrowSkipped,
    layout: Layout,
    names: list[str],
    symbol: str,
    timeframe: str,
    chunk_rows: int,
    counter: _Counting,
) -> Iterator[Chunk]:
    batch_lines = lines.take(record_batch.num_rows)
    for start in range(0, record_batch.num_rows, chunk_rows):
        piece = record_batch.slice(start, chunk_rows)
        piece_lines = batch_lines[start : start + chunk_rows]
        columns = _csv_columns(piece, piece_lines, layout, names)
        yield _finish_chunk(
            columns, skipped, int(piece_lines[-1]), symbol, timeframe, counter.count
        )


def _csv_columns(
    piece: pa.RecordBatch, lines: npt.NDArray[np.int64], layout: Layout, names: list[str]
) -> _Rows:
    n = piece.num_rows
    time_text = piece.column(names[layout.time])
    date_text = piece.column(names[layout.date]) if layout.date is not None else None
    price_text = [piece.column(names[layout.prices[f]]) for f in PRICE_NAMES]
    # An empty line comes through as a row of empty cells: drop it, as a blank line.
    blank = pc.equal(time_text, "")
    if pc.any(blank).as_py():
        for column in (date_text, *price_text):
            if column is not None:
                blank = pc.and_(blank, pc.equal(column, ""))
        keep = pc.invert(blank)
        if not pc.all(keep).as_py():
            mask = np.asarray(keep.to_numpy(zero_copy_only=False), bool)
            time_text = time_text.filter(keep)
            date_text = date_text.filter(keep) if date_text is not None else None
            price_text = [c.filter(keep) for c in price_text]
            lines = lines[mask]
            n = len(lines)
    reasons = np.zeros(n, np.int8)
    messages: dict[int, str] = {}
    ts = _text_times(time_text, date_text, reasons, messages)
    prices = [
        _text_numbers(field, column, reasons, messages)
        for field, column in zip(PRICE_NAMES, price_text, strict=True)
    ]
    return _rows(lines, ts, prices, reasons, messages)


def _text_times(
    column: pa.Array,
    date_column: pa.Array | None,
    reasons: npt.NDArray[np.int8],
    messages: dict[int, str],
) -> npt.NDArray[np.int64]:
    """Epoch seconds of time text; whole-column conversions first, then value by value."""
    text = column
    if date_column is not None:
        text = pc.binary_join_element_wise(date_column, column, " ")
    fast = _iso_or_epoch(text)
    if fast is not None:
        return fast
    if date_column is not None:
        values = [
            f"{_yyyymmdd(d)} {t.strip()}"
            for d, t in zip(date_column.to_pylist(), column.to_pylist(), strict=True)
        ]
    else:
        values = [_yyyymmdd(v) for v in column.to_pylist()]
    ts = np.zeros(len(values), np.int64)
    for i, value in enumerate(values):
        try:
            ts[i] = parse_time_text(value)
        except (ValueError, OverflowError) as exc:
            reasons[i] = REASON_CODE["invalid_timestamp"]
            messages[i] = str(exc)
    return ts


def _iso_or_epoch(text: pa.Array) -> npt.NDArray[np.int64] | None:
    """The whole column as ISO-8601 (all with offsets, or all without: UTC) or as integer
    epochs, or None when some value is neither (then each value is parsed on its own)."""
    if len(text) == 0:
        return np.zeros(0, np.int64)
    for kind in (pa.timestamp("s", tz="UTC"), pa.timestamp("s")):
        try:
            stamps = pc.cast(text, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if stamps.null_count:
            return None
        return np.asarray(stamps.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    try:
        numbers = np.asarray(
            pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return None
    magnitude = np.abs(numbers)
    # Eight digits from 1900 on read as YYYYMMDD (see `_yyyymmdd`): leave those to it.
    if bool(((magnitude >= 10_000_000) & (magnitude < 100_000_000)).any()):
        return None
    divisor = np.select(
        [magnitude >= 10**17, magnitude >= 10**14, magnitude >= 10**11],
        [10**9, 10**6, 10**3],
        1,
    ).astype(np.int64)
    if bool((numbers % divisor).any()):
        return None  # not whole seconds: reported value by value
    return numbers // divisor


def _text_numbers(
    field: str, column: pa.Array, reasons: npt.NDArray[np.int8], messages: dict[int, str]
) -> npt.NDArray[np.float64]:
    """Floats of a price or volume column; a cell that is not a number is rejected."""
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        if not values.null_count:
            return np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
    out = np.zeros(len(column), np.float64)
    for i, text in enumerate(column.to_pylist()):
        try:
            out[i] = float(text)
        except (TypeError, ValueError):
            if reasons[i] == 0:
                reasons[i] = REASON_CODE["invalid_number"]
                messages[i] = f"{field} {str(text)[:30]!r} is not a number"
    return out


def _long_row_columns(rows: list[tuple[int, list[str]]], layout: Layout) -> _Rows:
    """Rows with extra cells, parsed one by one as the columns found by name need."""
    n = len(rows)
    lines = np.array([line for line, _ in rows], np.int64)
    ts = np.zeros(n, np.int64)
    prices = [np.zeros(n) for _ in PRICE_NAMES]
    reasons = np.zeros(n, np.int8)
    messages: dict[int, str] = {}
    for i, (_, cells) in enumerate(rows):
        if layout.date is None:
            stamp = _yyyymmdd(cells[layout.time])
        else:
            stamp = f"{_yyyymmdd(cells[layout.date])} {cells[layout.time].strip()}"
        try:
            ts[i] = parse_time_text(stamp)
        except (ValueError, OverflowError) as exc:
            reasons[i] = REASON_CODE["invalid_timestamp"]
            messages[i] = str(exc)
            continue
        for j, field in enumerate(PRICE_NAMES):
            text = cells[layout.prices[field]]
            try:
                prices[j][i] = float(text)
            except ValueError:
                reasons[i] = REASON_CODE["invalid_number"]
                messages[i] = f"{field} {text[:30]!r} is not a number"
                break
    return _rows(lines, ts, prices, reasons, messages)


def _finish_chunk(
    columns: _Rows,
    skipped: _RowsPyarrowSkipped,
    up_to_line: int | None,
    symbol: str,
    timeframe: str,
    bytes_done: int,
) -> Chunk:
    """Validate a chunk's rows together with the skipped rows up to ``up_to_line`` (all of
    them when None), in line order."""
    last = math.inf if up_to_line is None else up_to_line
    rejected = [r for r in skipped.rejections if r.index <= last]
    if rejected:
        skipped.rejections = skipped.rejections[len(rejected) :]
    long_rows = [r for r in skipped.long_rows if r[0] <= last]
    if long_rows:
        skipped.long_rows = skipped.long_rows[len(long_rows) :]
        columns = _concat_columns(columns, _long_row_columns(long_rows, skipped.layout))
    batch = BarBatch.of_series(symbol, timeframe, columns.bars, index=columns.lines)
    valid, invalid = batch.validate(columns.reasons, columns.messages)
    rejections = sorted(rejected + invalid, key=lambda r: r.index) if rejected else invalid
    return Chunk(valid, rejections, len(columns.lines) + len(rejected), bytes_done)


def _concat_columns(a: _Rows, b: _Rows) -> _Rows:
    lines = np.concatenate([a.lines, b.lines])
    order = np.argsort(lines, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    messages = {int(position[i]): m for i, m in a.messages.items()}
    messages.update({int(position[a.lines.size + i]): m for i, m in b.messages.items()})
    return _Rows(
        lines[order],
        Bars.concat([a.bars, b.bars]).take(order),
        np.concatenate([a.reasons, b.reasons])[order],
        messages,
    )


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
    columns = Bars.from_columns(epoch.ms_from_seconds(ts), *prices)
    batch = BarBatch.of_series(symbol, timeframe, columns, index=rows)
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
