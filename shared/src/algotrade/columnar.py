"""Bars as an Apache Arrow IPC stream: the columnar wire format between services.

The market data service answers a history read with it when asked (``Accept:
application/vnd.apache.arrow.stream``) and the backtest worker reads it, so a 100k-bar range
crosses the wire as six contiguous columns instead of 100k JSON objects. Columns, in order:
``ts`` int64 epoch milliseconds of the bar's open, then ``open``, ``high``, ``low``, ``close``,
``volume`` float64, the columns of `algotrade.bars.Bars` one for one. The schema metadata
names the ``symbol`` and ``timeframe``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from algotrade.bars import PRICE_COLUMNS, Bars

ARROW_STREAM: Final[str] = "application/vnd.apache.arrow.stream"

BAR_SCHEMA: Final[pa.Schema] = pa.schema(
    [pa.field("ts", pa.int64(), nullable=False)]
    + [pa.field(name, pa.float64(), nullable=False) for name in PRICE_COLUMNS]
)


class ColumnarError(ValueError):
    """A stream that is not Arrow bars in `BAR_SCHEMA`."""


def accepts_arrow(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for the Arrow stream (JSON stays the default)."""
    if not accept:
        return False
    for item in accept.split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() == ARROW_STREAM and "q=0" not in params.replace(" ", ""):
            return True
    return False


def encode_bars(bars: Bars, *, symbol: str, timeframe: str) -> bytes:
    """One record batch of bars as an IPC stream (the arrays are wrapped, not converted)."""
    schema = BAR_SCHEMA.with_metadata({"symbol": symbol, "timeframe": timeframe})
    batch = pa.record_batch(
        [pa.array(bars.ts, pa.int64())]
        + [pa.array(getattr(bars, n), pa.float64()) for n in PRICE_COLUMNS],
        schema=schema,
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def decode_bars(data: bytes) -> Bars:
    """The bars of an IPC stream written by `encode_bars`.

    The columns are read as views of ``data``'s buffers and copied once into `Bars` (the
    engine wants its own writable arrays); a stream whose times are not strictly increasing
    is refused like any other malformed one.
    """
    try:
        table = pa.ipc.open_stream(data).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ColumnarError(f"not an Arrow IPC stream: {exc}") from None
    if [(f.name, f.type) for f in table.schema] != [(f.name, f.type) for f in BAR_SCHEMA]:
        raise ColumnarError(f"unexpected columns: {table.schema}")
    if table.num_rows and any(table.column(n).null_count for n in table.column_names):
        raise ColumnarError("bars must not contain nulls")

    def column(name: str) -> npt.NDArray[np.generic]:
        chunks = table.column(name).chunks
        if len(chunks) == 1:
            return np.asarray(chunks[0].to_numpy(zero_copy_only=True))
        return np.asarray(table.column(name).to_numpy())

    try:
        return Bars.from_arrays(ts=column("ts"), **{n: column(n) for n in PRICE_COLUMNS})
    except ValueError as exc:
        raise ColumnarError(f"not bars of one series: {exc}") from None
