"""The HTTP bar source against the real market data service app (in-process, over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from algotrade.auth import InternalTokens
from algotrade.backtest import BacktestInvalid
from algotrade.migrations import upgrade
from algotrade.testing.services import serve_in_process
from backtesting_service.bar_sources import HttpBarSource
from market_data_service.config import Settings as MarketSettings
from market_data_service.main import create_app as market_app

from .conftest import TEST_SECRET, csv_bars

START = datetime(2019, 1, 1, tzinfo=UTC)
END = datetime(2021, 1, 1, tzinfo=UTC)


@pytest.fixture
async def market(
    make_settings: Callable[..., Any], migrated: str, tmp_path: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, MarketSettings]]:
    await upgrade(migrated, "market_data_service", "market")
    settings: MarketSettings = make_settings(
        MarketSettings, jwt_secret=TEST_SECRET, import_spool_dir=tmp_path / "spool"
    )
    app = market_app(settings)
    async with serve_in_process(app, base_url="http://market.test") as client:
        yield client, settings


async def test_http_bar_source_pages_the_market_data_history(
    market: tuple[httpx.AsyncClient, MarketSettings],
) -> None:
    client, settings = market
    spy = await csv_bars().bars("u", "SPY", "1d", START, END)
    tokens = InternalTokens(settings, ttl_seconds=60)
    rows = [
        {
            "ts": int(ts // 1000),
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
        }
        for ts, o, h, lo, c, v in zip(
            spy.ts.tolist(),
            spy.open.tolist(),
            spy.high.tolist(),
            spy.low.tolist(),
            spy.close.tolist(),
            spy.volume.tolist(),
            strict=True,
        )
    ]
    pushed = await client.post(
        "/api/market/bars",
        json={"symbol": "SPY", "timeframe": "1d", "bars": rows},
        headers={"Authorization": f"Bearer {tokens.for_user('alice', 'market:write')}"},
    )
    assert pushed.status_code == 200, pushed.text

    source = HttpBarSource(client, "http://market.test", tokens, page_size=100, max_bars=10_000)
    bars = await source.bars("alice", "SPY", "1d", START, END)
    assert len(bars) == len(spy) > 300  # several pages of 100
    np.testing.assert_array_equal(bars.ts, spy.ts)
    for field in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(bars.field(field), spy.field(field), err_msg=field)

    first = await source.bars("alice", "SPY", "1d", START, END, limit=1)
    assert len(first) == 1 and first.ts[0] == spy.ts[0]
    empty = await source.bars(
        "alice", "SPY", "1d", datetime(1990, 1, 1, tzinfo=UTC), START.replace(year=1991)
    )
    assert len(empty) == 0

    capped = HttpBarSource(client, "http://market.test", tokens, page_size=100, max_bars=200)
    with pytest.raises(BacktestInvalid, match="more than 200 bars"):
        await capped.bars("alice", "SPY", "1d", START, END)
