"""Coinbase Exchange provider: trade aggregation, gap detection, reconnect, backfill, records.

The end-to-end test runs a local WebSocket server speaking the documented feed format
(``subscriptions``, ``last_match``, ``match``, ``heartbeat``) that drops the connection in the
middle of a minute and comes back having missed trades.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import select, text
from websockets.asyncio.server import ServerConnection, serve

from algotrade.bars import Bar
from algotrade_testkit.kafka import read_events
from algotrade_testkit.plugin import wait_for
from market_data_service import history, models
from market_data_service.models import PLATFORM
from market_data_service.providers.coinbase import (
    ClosedBar,
    ClosedGap,
    CoinbaseCandles,
    MinuteAggregator,
)

M = 1_704_067_200  # 2024-01-01T00:00:00Z


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def match(
    trade_id: int, ts: float, price: float, size: float, kind: str = "match"
) -> dict[str, Any]:
    return {
        "type": kind,
        "trade_id": trade_id,
        "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
        "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
        "side": "buy",
        "size": f"{size:.8f}",
        "price": f"{price:.2f}",
        "product_id": "BTC-USD",
        "sequence": 50 + trade_id,
        "time": iso(ts),
    }


def heartbeat(ts: float, last_trade_id: int) -> dict[str, Any]:
    return {
        "type": "heartbeat",
        "sequence": 90,
        "last_trade_id": last_trade_id,
        "product_id": "BTC-USD",
        "time": iso(ts),
    }


# -- the aggregator alone ------------------------------------------------------------------


def test_trades_become_minute_bars_and_the_first_partial_minute_is_a_gap() -> None:
    agg = MinuteAggregator("BTC-USD")
    assert agg.on_trade(1, M + 30, 100, 1) == []
    assert agg.on_trade(2, M + 65, 101, 1) == [ClosedGap(M, M + 60)]
    agg.on_trade(3, M + 90, 103, 2)
    agg.on_trade(3, M + 95, 500, 9)  # a trade id seen before: ignored
    agg.on_trade(4, M + 110, 99, 0.5)
    (closed,) = agg.on_trade(5, M + 125, 100, 1)
    assert isinstance(closed, ClosedBar)
    b = closed.bar
    assert (b.minute, b.open, b.high, b.low, b.close, b.volume) == (M + 60, 101, 103, 99, 99, 3.5)


def test_a_quiet_minute_is_closed_by_a_heartbeat() -> None:
    agg = MinuteAggregator("BTC-USD", resume_from=M)
    agg.on_trade(7, M + 10, 100, 1)
    assert agg.on_heartbeat(M + 61, 7) == [ClosedGap(M, M + 60)]
    agg.on_trade(8, M + 70, 100, 1)
    events = agg.on_heartbeat(M + 121, 8)
    assert [type(e) for e in events] == [ClosedBar]


def test_a_trade_id_jump_marks_the_minutes_in_between_incomplete() -> None:
    agg = MinuteAggregator("BTC-USD", resume_from=M)
    agg.on_trade(1, M + 1, 100, 1)
    agg.on_trade(2, M + 61, 100, 1)  # closes the first (partial) minute
    agg.on_trade(3, M + 121, 100, 1)  # M+60 complete
    events = agg.on_trade(9, M + 250, 100, 1)  # 4..8 missed: M+120..M+240 incomplete
    assert events == []  # M+120 was open and is now incomplete: nothing to publish
    events = agg.on_trade(10, M + 301, 100, 1)
    assert events == [ClosedGap(M + 120, M + 300)]
    # A heartbeat that knows of trades we never saw also opens a gap.
    assert agg.on_heartbeat(M + 330, 12) == []
    assert agg.on_heartbeat(M + 361, 12) == [ClosedGap(M + 300, M + 360)]


# -- the REST candles hook -------------------------------------------------------------------


async def test_candles_hook_reads_the_documented_rest_format() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        start = datetime.fromisoformat(request.url.params["start"]).timestamp()
        rows = [[int(start) + 60 * i, 9.0, 11.0, 10.0, 10.5, 2.0] for i in range(3)]
        return httpx.Response(200, json=list(reversed(rows)))  # newest first, like Coinbase

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        hook = CoinbaseCandles("https://api.example", client=client)
        bars = await hook("BTC-USD", M, M + 400 * 60)
    assert len(requests) == 2  # 300 candles per request at most
    assert requests[0].url.path == "/products/BTC-USD/candles"
    assert requests[0].url.params["granularity"] == "60"
    assert bars[0] == Bar("BTC-USD", "1m", M, 10.0, 11.0, 9.0, 10.5, 2.0)
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)


def _drained(relay: Any) -> Any:
    async def check() -> bool:
        return bool(await relay.pending() == 0)

    return check


# -- end to end against a local feed ----------------------------------------------------------

FIRST_CONNECTION: list[Any] = [
    match(100, M + 10, 100, 1, kind="last_match"),  # first trade seen: M is partial
    match(101, M + 20, 100, 1),
    match(102, M + 65, 101, 1),
    match(103, M + 90, 103, 2),
    match(104, M + 110, 99, 0.5),
    match(105, M + 121, 100, 1),
    match(106, M + 179, 102, 1),
    heartbeat(M + 180.5, 106),  # closes M+120
    match(107, M + 190, 104, 1),
    "DROP",  # network failure in the middle of minute M+180
]
SECOND_CONNECTION: list[Any] = [
    match(115, M + 320, 107, 1, kind="last_match"),  # 108..114 were missed
    match(116, M + 340, 108, 1),
    match(117, M + 370, 110, 1),  # closes M+300: minutes M+180..M+300 need a backfill
    match(118, M + 410, 111, 1),
    heartbeat(M + 421, 118),  # closes M+360
]


async def test_feed_with_a_disconnect_is_backfilled_and_unfillable_minutes_are_recorded(
    make_service: Any, kafka_bootstrap: str
) -> None:
    subscriptions: list[Any] = []
    scripts = [FIRST_CONNECTION, SECOND_CONNECTION]

    async def feed(ws: ServerConnection) -> None:
        subscriptions.append(orjson.loads(await ws.recv()))
        await ws.send(
            orjson.dumps(
                {
                    "type": "subscriptions",
                    "channels": [
                        {"name": "matches", "product_ids": ["BTC-USD"]},
                        {"name": "heartbeat", "product_ids": ["BTC-USD"]},
                    ],
                }
            ).decode()
        )
        script = scripts.pop(0) if scripts else []
        for message in script:
            if message == "DROP":
                ws.transport.abort()
                return
            await ws.send(orjson.dumps(message).decode())
        await ws.wait_closed()

    fetched: list[tuple[int, int]] = []

    async def candles(product: str, start: int, end: int) -> list[Bar]:
        # The exchange has candles for M and M+180..M+240, but none for M+300.
        fetched.append((start, end))
        have = {M: 100.0, M + 180: 104.0, M + 240: 106.0}
        return [
            Bar(product, "1m", t, p, p + 1, p - 1, p, 3.0)
            for t, p in have.items()
            if start <= t < end
        ]

    async with serve(feed, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with make_service(
            coinbase_enabled=True,
            coinbase_products=["btc-usd"],
            coinbase_ws_url=f"ws://127.0.0.1:{port}",
            coinbase_reconnect_initial_seconds=0.05,
            coinbase_derive_timeframes=["5m"],
            _candles=candles,
        ) as service:
            provider = service.market.coinbase
            assert provider is not None

            async def settled() -> bool:
                async with service.market.sessions() as session:
                    gaps = (await session.execute(select(models.gaps))).all()
                    bars = await history.read_range(
                        session, PLATFORM, "BTC-USD", "1m", 0, 2**40, limit=50
                    )
                return bool(gaps) and len(bars) == 6 and provider.idle

            await wait_for(settled, within=20)
            status = (await service.get("/api/market/providers")).json()["providers"][0]

            async with service.market.sessions() as session:
                minutes = await history.read_range(
                    session, PLATFORM, "BTC-USD", "1m", 0, 2**40, limit=50
                )
                fives = await history.read_range(
                    session, PLATFORM, "BTC-USD", "5m", 0, 2**40, limit=50
                )
            gaps_url = f"/api/market/symbols/BTC-USD/gaps?timeframe=1m&start={iso(M)}"
            report = (await service.get(f"{gaps_url}&end={iso(M + 420)}")).json()
            relay = service.app.state.resources.relay
            await wait_for(_drained(relay), within=10)
            async with service.market.sessions() as session:
                staged = int(await session.scalar(text("SELECT count(*) FROM market.outbox")) or 0)

    assert subscriptions[0] == {
        "type": "subscribe",
        "product_ids": ["BTC-USD"],
        "channels": ["matches", "heartbeat"],
    }
    assert len(subscriptions) == 2 and status["connections"] == 2 and status["reconnects"] >= 1

    by_minute = {
        int(t) - M: (o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            minutes.seconds(),
            minutes.open,
            minutes.high,
            minutes.low,
            minutes.close,
            minutes.volume,
            strict=True,
        )
    }
    assert by_minute == {
        0: (100.0, 101.0, 99.0, 100.0, 3.0),  # partial at start: from REST, not from 2 trades
        60: (101.0, 103.0, 99.0, 99.0, 3.5),  # from trades
        120: (100.0, 102.0, 100.0, 102.0, 2.0),  # from trades, closed by a heartbeat
        180: (104.0, 105.0, 103.0, 104.0, 3.0),  # cut by the disconnect: from REST
        240: (106.0, 107.0, 105.0, 106.0, 3.0),  # during the outage: from REST
        360: (110.0, 111.0, 110.0, 111.0, 2.0),  # from trades after the reconnect
    }
    # M+300 had missed trades and no candle: recorded, and visible in the gap report.
    assert report["missing"] == 1
    assert report["gaps"] == [
        {"start": iso(M + 300)[:19] + "Z", "end": iso(M + 360)[:19] + "Z", "missing": 1}
    ]
    (recorded,) = report["recorded"]
    assert recorded["reason"] == "unfilled_after_reconnect" and recorded["source"] == "coinbase"
    assert {(s - M, e - M) for s, e in fetched} == {(0, 60), (180, 360)}
    # The derived 5m bar of M..M+300 is built from the final 1m bars.
    assert fives.seconds().tolist() == [M]
    assert (fives.open[0], fives.high[0], fives.low[0], fives.close[0], fives.volume[0]) == (
        100.0,
        107.0,
        99.0,
        106.0,
        14.5,
    )
    events = await read_events(
        kafka_bootstrap, service.market.ingestor._topic, expect=staged, settle_ms=300
    )
    assert len(events) == staged
    published = {b.ts.timestamp() - M for e in events if e[0] == b"BTC-USD:1m" for b in e[2].bars}
    assert published == {0, 60, 120, 180, 240, 360}


async def test_the_provider_keeps_reconnecting_with_backoff(make_service: Any) -> None:
    attempts: list[float] = []

    async def refuse(ws: ServerConnection) -> None:
        attempts.append(asyncio.get_running_loop().time())
        await ws.send(
            orjson.dumps(
                {"type": "error", "message": "Failed to subscribe", "reason": "test"}
            ).decode()
        )
        await ws.close()

    async with serve(refuse, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with make_service(
            coinbase_enabled=True,
            coinbase_ws_url=f"ws://127.0.0.1:{port}",
            coinbase_reconnect_initial_seconds=0.05,
            coinbase_reconnect_max_seconds=0.2,
        ) as service:
            await wait_for(lambda: len(attempts) >= 4, within=10)
            provider = service.market.coinbase
            assert provider is not None and provider.status.last_error is not None
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[1] > gaps[0] * 1.3  # backoff grows (with jitter of +-20%)
