"""pandas frames of answers, for the ``frames`` extra (``pip install 'algotrade-sdk[frames]'``).

pandas and pyarrow are imported here, inside the functions, so that the client itself needs
neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import pandas as pd

ARROW_STREAM = "application/vnd.apache.arrow.stream"
EXTRA = "pip install 'algotrade-sdk[frames]'"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"frames need pandas and pyarrow: {EXTRA}") from exc
    return pandas


def _pyarrow_ipc() -> Any:
    try:
        import pyarrow.ipc
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"frames need pandas and pyarrow: {EXTRA}") from exc
    return pyarrow.ipc


def bars_frame(response: httpx.Response) -> pd.DataFrame:
    """An Arrow answer of bars as a frame: ``open high low close volume`` (float64) indexed by
    the bar's open time ``ts`` (UTC), with ``symbol`` and ``timeframe`` in ``attrs``."""
    pd = _pandas()
    table = _pyarrow_ipc().open_stream(response.content).read_all()
    frame = table.to_pandas()
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("ts"), unit="ms", utc=True), name="ts")
    metadata = table.schema.metadata or {}
    for key in ("symbol", "timeframe"):
        if key.encode() in metadata:
            frame.attrs[key] = metadata[key.encode()].decode()
    return frame


TRADE_TIMES = ("entry_time", "exit_time")


def trades_frame(trades: list[dict[str, Any]]) -> pd.DataFrame:
    """Trades (as the API lists them) as a frame, one row per trade, ``entry_time`` and
    ``exit_time`` as UTC datetimes; the index is a RangeIndex named ``trade``."""
    pd = _pandas()
    frame = pd.DataFrame.from_records(trades)
    for column in TRADE_TIMES:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    frame.index.name = "trade"
    return frame
