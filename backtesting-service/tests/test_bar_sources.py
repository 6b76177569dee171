"""The HTTP bar source against the real market data service app (in-process, over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from algotrade.auth import InternalTokens
from algotrade.engine import Bars
from algotrade.migrations import upgrade
from algotrade_testkit.services import serve_in_process
from backtesting_service.backtest import BacktestInvalid
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


async def push_spy(client: httpx.AsyncClient, tokens: InternalTokens) -> Bars:
    spy = await csv_bars().bars("u", "SPY", "1d", START, END)
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
    return spy


async def test_http_bar_source_reads_the_market_data_history(
    market: tuple[httpx.AsyncClient, MarketSettings],
) -> None:
    client, settings = market
    tokens = InternalTokens(settings, ttl_seconds=60)
    spy = await push_spy(client, tokens)
    source = HttpBarSource(client, "http://market.test", tokens, page_size=100, max_bars=10_000)
    bars = await source.bars("alice", "SPY", "1d", START, END)
    assert len(bars) == len(spy) > 300  # one Arrow answer, whatever the page size
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


async def test_http_bar_source_pages_json_from_a_service_without_arrow(
    market: tuple[httpx.AsyncClient, MarketSettings],
) -> None:
    """A market data service predating the Arrow answer ignores the Accept header: the
    source pages through JSON instead (simulated by dropping Arrow from the request, and
    pages of 100 instead of the service's default 1,000 so that cursors are followed)."""
    client, settings = market
    tokens = InternalTokens(settings, ttl_seconds=60)
    spy = await push_spy(client, tokens)
    pages: list[int] = []

    async def json_only(request: httpx.Request) -> None:
        request.headers["accept"] = "application/json"
        if "limit" not in request.url.params:
            request.url = request.url.copy_add_param("limit", 100)
        pages.append(1)

    old = httpx.AsyncClient(
        transport=client._transport, base_url=client.base_url, event_hooks={"request": [json_only]}
    )
    source = HttpBarSource(old, "http://market.test", tokens, page_size=100, max_bars=10_000)
    bars = await source.bars("alice", "SPY", "1d", START, END)
    assert len(pages) > 3  # several pages of 100
    np.testing.assert_array_equal(bars.ts, spy.ts)
    np.testing.assert_array_equal(bars.close, spy.close)
    first = await source.bars("alice", "SPY", "1d", START, END, limit=1)
    assert len(first) == 1 and first.ts[0] == spy.ts[0]
    capped = HttpBarSource(old, "http://market.test", tokens, page_size=100, max_bars=200)
    with pytest.raises(BacktestInvalid, match="more than 200 bars"):
        await capped.bars("alice", "SPY", "1d", START, END)


async def test_a_range_over_the_market_data_limit_is_the_same_refusal(
    make_settings: Callable[..., Any], migrated: str, tmp_path: Any
) -> None:
    await upgrade(migrated, "market_data_service", "market")
    settings: MarketSettings = make_settings(
        MarketSettings,
        jwt_secret=TEST_SECRET,
        import_spool_dir=tmp_path / "spool",
        history_range_max_bars=100,
    )
    async with serve_in_process(market_app(settings), base_url="http://market.test") as client:
        tokens = InternalTokens(settings, ttl_seconds=60)
        await push_spy(client, tokens)
        source = HttpBarSource(client, "http://market.test", tokens, page_size=100, max_bars=100)
        with pytest.raises(BacktestInvalid, match="more than 100 bars"):
            await source.bars("alice", "SPY", "1d", START, END)
