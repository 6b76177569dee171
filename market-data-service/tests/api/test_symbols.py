"""Reading: latest-N from the window (and its repair), history pages, symbols, gap reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from market_data_testkit import DATA, Service, load_file, minute_bars
from redis.exceptions import ConnectionError as RedisConnectionError

from algotrade import epoch
from algotrade.bars import Bars
from algotrade.windows import SlidingWindows
from market_data_service.batch import BarBatch


async def test_latest_comes_from_the_window_and_a_cold_window_refills(service: Service) -> None:
    await service.push({"symbol": "ETH-USD", "timeframe": "1m", "bars": minute_bars(300)})
    url = "/api/market/symbols/eth-usd/latest?timeframe=1m&limit=100"

    cold = (await service.get(url)).json()  # the first read after a start fills the window
    assert cold["source"] == "history"
    warm = (await service.get(url)).json()
    assert warm["source"] == "window"
    assert warm["bars"] == cold["bars"]
    assert len(warm["bars"]) == 100
    assert warm["bars"][-1]["ts"] == "2024-01-01T04:59:00Z"

    await service.market.windows.drop("u1/ETH-USD", "1m")  # e.g. Redis lost its data
    again = (await service.get(url)).json()
    assert again["source"] == "history" and again["bars"] == warm["bars"]


async def test_latest_rejects_bad_parameters_with_problems(service: Service) -> None:
    for url in (
        "/api/market/symbols/X/latest?timeframe=2m",
        "/api/market/symbols/X/latest?timeframe=1m&limit=0",
        "/api/market/symbols/X/latest?timeframe=1m&limit=10001",
        "/api/market/symbols/X$/latest?timeframe=1m",
    ):
        response = await service.get(url)
        assert response.status_code == 422, url
        assert response.headers["content-type"] == "application/problem+json"
    assert (await service.client.get("/api/market/symbols/X/latest")).status_code == 401


async def test_a_failed_window_update_makes_the_window_cold_not_wrong(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(5)})
    await service.get("/api/market/symbols/X/latest?timeframe=1m")  # warm

    async def redis_down(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("redis went away")

    monkeypatch.setattr(SlidingWindows, "upsert_encoded", redis_down)
    response = await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(6)[5:]})
    assert response.status_code == 200  # durable in history; the window catches up
    monkeypatch.undo()
    latest = (await service.get("/api/market/symbols/X/latest?timeframe=1m&limit=3")).json()
    assert latest["source"] == "history"
    assert latest["bars"][-1]["ts"] == "2024-01-01T00:05:00Z"


async def test_a_crash_between_commit_and_window_is_repaired_by_the_next_start(
    make_service: Any,
) -> None:
    async with make_service() as first:
        await first.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(3)})
        await first.get("/api/market/symbols/X/latest?timeframe=1m")  # warm window
        # Commit history without touching the window, as a process dying right after commit.
        late = minute_bars(4)[3]
        batch = BarBatch.of_series(
            "X",
            "1m",
            Bars.from_columns(
                [epoch.ms_from_seconds(late["ts"])],
                *([late[k]] for k in ("open", "high", "low", "close", "volume")),
            ),
        )
        async with first.market.sessions() as session, session.begin():
            await first.market.ingestor.write(session, batch, owner="u1", source="http")
        stale = (await first.get("/api/market/symbols/X/latest?timeframe=1m")).json()
        assert len(stale["bars"]) == 3  # the window is behind history
    async with make_service() as second:
        repaired = (await second.get("/api/market/symbols/X/latest?timeframe=1m")).json()
        assert [b["ts"][-6:-1] for b in repaired["bars"]] == ["00:00", "01:00", "02:00", "03:00"]


async def test_history_pages_through_everything_with_an_opaque_cursor(service: Service) -> None:
    await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(25)})
    seen: list[str] = []
    url = "/api/market/symbols/X/bars?timeframe=1m&limit=10&start=2024-01-01T00:02:00Z"
    while url:
        page = (await service.get(url)).json()
        seen += [b["ts"] for b in page["bars"]]
        cursor = page["next_cursor"]
        url = f"/api/market/symbols/X/bars?timeframe=1m&limit=10&cursor={cursor}" if cursor else ""
    assert len(seen) == 23 and seen == sorted(seen) and len(set(seen)) == 23

    first = (await service.get("/api/market/symbols/X/bars?timeframe=1m&limit=5")).json()
    for bad in ("nonsense", first["next_cursor"][:-2] + "zz"):
        response = await service.get(f"/api/market/symbols/X/bars?timeframe=1m&cursor={bad}")
        assert response.status_code == 400
    other = await service.get(
        f"/api/market/symbols/Y/bars?timeframe=1m&cursor={first['next_cursor']}"
    )
    assert other.status_code == 400  # a cursor belongs to its symbol and timeframe
    end = await service.get(
        "/api/market/symbols/X/bars?timeframe=1m&end=2024-01-01T00:03:00Z&limit=100"
    )
    assert len(end.json()["bars"]) == 3 and end.json()["next_cursor"] is None


async def test_symbols_list_timeframes_first_last_and_count(service: Service) -> None:
    await service.push({"symbol": "B", "timeframe": "1m", "bars": minute_bars(10)})
    await service.push({"symbol": "A", "timeframe": "5m", "bars": minute_bars(1)})
    await service.push({"symbol": "A", "timeframe": "1m", "bars": minute_bars(4)})
    await service.push({"symbol": "A", "timeframe": "1m", "bars": minute_bars(4)})  # dups
    body = (await service.get("/api/market/symbols")).json()
    assert body == {
        "symbols": [
            {
                "symbol": "A",
                "owner": "u1",
                "access": "owner",
                "calendar": "24x7",
                "timeframes": [
                    {
                        "timeframe": "1m",
                        "first": "2024-01-01T00:00:00Z",
                        "last": "2024-01-01T00:03:00Z",
                        "count": 4,
                    },
                    {
                        "timeframe": "5m",
                        "first": "2024-01-01T00:00:00Z",
                        "last": "2024-01-01T00:00:00Z",
                        "count": 1,
                    },
                ],
            },
            {
                "symbol": "B",
                "owner": "u1",
                "access": "owner",
                "calendar": "24x7",
                "timeframes": [
                    {
                        "timeframe": "1m",
                        "first": "2024-01-01T00:00:00Z",
                        "last": "2024-01-01T00:09:00Z",
                        "count": 10,
                    }
                ],
            },
        ]
    }
    only = (await service.get("/api/market/symbols?symbol=b")).json()
    assert [s["symbol"] for s in only["symbols"]] == ["B"]


async def test_gap_report_24x7_finds_the_known_holes_in_coinbase_4h(service: Service) -> None:
    await load_file(service, DATA / "btc-usd-4h.csv", "BTC-USD", "4h")
    report = (await service.get("/api/market/symbols/BTC-USD/gaps?timeframe=4h")).json()
    # The data README lists them: 2017-02-28 20:00, 2018-08-10 04:00-12:00, 2025-10-25 16:00.
    assert report["missing"] == 5 and report["unexpected"] == 0
    assert [(g["start"], g["missing"]) for g in report["gaps"]] == [
        ("2017-02-28T20:00:00Z", 1),
        ("2018-08-10T04:00:00Z", 3),
        ("2025-10-25T16:00:00Z", 1),
    ]


async def test_gap_report_with_the_nyse_calendar_finds_no_gap_in_spy_daily(
    service: Service,
) -> None:
    await load_file(service, DATA / "spy-1d.csv", "SPY", "1d")
    report = (await service.get("/api/market/symbols/SPY/gaps?timeframe=1d&calendar=xnys")).json()
    assert report["expected"] == 5849 and report["missing"] == 0 and report["unexpected"] == 0
    naive = (await service.get("/api/market/symbols/SPY/gaps?timeframe=1d")).json()
    assert naive["missing"] > 2000  # 24x7 expects weekends: equities need a session calendar
    four_hour = await service.get(
        "/api/market/symbols/SPY/gaps?timeframe=4h&calendar=xnys&start=2020-01-01T00:00:00Z&end=2020-02-01T00:00:00Z"
    )
    assert four_hour.status_code == 422
    unknown = await service.get("/api/market/symbols/SPY/gaps?timeframe=1d&calendar=xmoon")
    assert unknown.status_code == 422 and "unknown calendar" in unknown.json()["detail"]


async def test_gap_report_uses_the_calendar_the_symbol_is_configured_with(
    make_service: Any,
) -> None:
    async with make_service(symbol_calendars={"spy": "XNYS"}) as service:
        await load_file(service, DATA / "spy-1d.csv", "SPY", "1d")
        report = (await service.get("/api/market/symbols/SPY/gaps?timeframe=1d")).json()
        assert report["calendar"] == "xnys" and report["missing"] == 0
        assert report["start"] == "1998-01-02T00:00:00Z"  # before exchange_calendars' default
        listed = (await service.get("/api/market/symbols")).json()["symbols"]
        assert [(s["symbol"], s["calendar"]) for s in listed] == [("SPY", "xnys")]
        naive = await service.get("/api/market/symbols/SPY/gaps?timeframe=1d&calendar=24x7")
        assert naive.json()["missing"] > 2000  # an explicit calendar wins


def test_demo_data_is_where_the_tests_expect_it() -> None:
    assert isinstance(DATA, Path) and (DATA / "spy-1h.csv").exists()
