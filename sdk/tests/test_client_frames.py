"""History as a pandas frame from the service's Arrow answer (encoded here by the platform's
own encoder), and trades as a frame."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from client_fakes import FakeGateway

from algotrade.bars import Bars
from algotrade.columnar import ARROW_STREAM, encode_bars
from algotrade_client import AsyncClient, Client

DAY_MS = 86_400_000
START_MS = 1_577_923_200_000  # 2020-01-02T00:00:00Z


def arrow_bars(count: int) -> bytes:
    close = 100.0 + np.arange(count, dtype=np.float64)
    bars = Bars.from_arrays(
        ts=START_MS + DAY_MS * np.arange(count, dtype=np.int64),
        open=close - 0.5,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.full(count, 1_000.0),
    )
    return encode_bars(bars, symbol="SPY", timeframe="1d")


def serve_arrow(request: httpx.Request) -> httpx.Response:
    assert request.headers["accept"] == ARROW_STREAM
    return httpx.Response(200, content=arrow_bars(3), headers={"content-type": ARROW_STREAM})


def test_bars_come_back_as_a_frame_indexed_by_utc_open_time() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/market/symbols/BTC-USD/bars", serve_arrow)
    with Client(token="A1", transport=gateway.transport()) as client:
        frame = client.market.bars("BTC/USD", "1d", start="2020-01-01T00:00:00Z")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2020-01-02", tz="UTC")
    assert frame["close"].tolist() == [100.0, 101.0, 102.0]
    assert frame.attrs == {"symbol": "SPY", "timeframe": "1d"}
    assert dict(gateway.requests[0].url.params) == {
        "timeframe": "1d",
        "start": "2020-01-01T00:00:00Z",
    }


async def test_trades_frame_reads_every_page() -> None:
    trades = [
        {
            "entry_time": "2020-01-02T00:00:00Z",
            "exit_time": "2020-01-03T00:00:00Z",
            "side": "long",
            "pnl": 1.5,
        }
    ] * 3
    gateway = FakeGateway()
    gateway.on("GET", "/api/backtests/j1/trades", {"trades": trades, "total": 3})
    async with AsyncClient(token="A1", transport=gateway.transport()) as client:
        frame = await client.backtests.trades_frame("j1")
    assert len(frame) == 3 and frame.index.name == "trade"
    assert frame["exit_time"].iloc[0] == pd.Timestamp("2020-01-03", tz="UTC")
