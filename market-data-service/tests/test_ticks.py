"""POST /api/market/ticks: ticks become 1m bars by `MinuteAggregator`'s rule, stored once.

Minutes close on a later tick or on the clock (``TICK_CLOSE_GRACE_SECONDS`` past their end), so
most tests push ticks of the last few minutes with an hour of grace: the clock closes nothing
while they run, and only later ticks close minutes. The idle-close test uses a grace that ends
a few seconds after it starts, and waits for the real clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from market_data_testkit import Service
from sqlalchemy import func, select

from algotrade import epoch
from algotrade_testkit.kafka import read_events
from algotrade_testkit.plugin import wait_for
from market_data_service import history, models
from market_data_service.providers.coinbase import ClosedBar, MinuteAggregator

PROBLEM = "application/problem+json"
HOUR = 3600.0

Tick = dict[str, Any]
OHLCV = tuple[float, float, float, float, float]


def current_minute() -> int:
    return int(time.time()) // 60 * 60


def tick_ms(tick: Tick) -> int:
    ts = tick["ts"]
    return epoch.ms_from_iso(ts, assume_utc=False) if isinstance(ts, str) else int(ts)


def reference_bars(ticks: list[Tick], *, close_last: bool = False) -> dict[int, OHLCV]:
    """The 1m bars `MinuteAggregator` builds from the same ticks taken as trades: in time order
    (arrival order among equal times), without the ids the minute had already seen. The last
    minute stays open unless ``close_last``."""
    ordered = sorted(enumerate(ticks), key=lambda item: (tick_ms(item[1]), item[0]))
    first = tick_ms(ordered[0][1]) // 60_000 * 60
    aggregator = MinuteAggregator("REF")
    # The aggregator never publishes its first minute (it may have missed trades): give it one.
    aggregator.on_trade(0, first - 60, 1.0, 0.0)
    bars: dict[int, OHLCV] = {}
    seen: set[tuple[int, str]] = set()
    trade_id = 0
    events = []
    for _, tick in ordered:
        minute = tick_ms(tick) // 60_000 * 60
        if tick.get("id") is not None:
            if (minute, tick["id"]) in seen:
                continue
            seen.add((minute, tick["id"]))
        trade_id += 1
        events += aggregator.on_trade(trade_id, tick_ms(tick) / 1000, tick["price"], tick["size"])
    if close_last:
        events += aggregator.on_heartbeat(tick_ms(ordered[-1][1]) / 1000 + 60, None)
    for event in events:
        if isinstance(event, ClosedBar) and event.bar.minute >= first:
            b = event.bar
            bars[b.minute] = (b.open, b.high, b.low, b.close, b.volume)
    return bars


async def push_ticks(
    service: Service, body: Any, *, user: str = "u1", params: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await service.client.post(
        "/api/market/ticks",
        content=content,
        params=params,
        headers={**service.headers(user), "content-type": "application/json"},
    )


async def history_bars(service: Service, symbol: str, user: str = "u1") -> dict[int, OHLCV]:
    response = await service.client.get(
        f"/api/market/symbols/{symbol}/bars",
        params={"timeframe": "1m", "limit": "100"},
        headers=service.headers(user),
    )
    assert response.status_code == 200, response.text
    assert response.json()["owner"] == user
    return {
        epoch.seconds_from_ms(epoch.ms_from_iso(b["ts"], assume_utc=False)): (
            b["open"],
            b["high"],
            b["low"],
            b["close"],
            b["volume"],
        )
        for b in response.json()["bars"]
    }


async def stored_bars(service: Service) -> int:
    async with service.market.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(models.bars)) or 0)


def iso(seconds: int) -> str:
    return epoch.iso_from_seconds(seconds)


def three_minutes(m0: int) -> list[Tick]:
    """Ticks of minutes m0, m0+60 and m0+120, out of order, in both time formats, with equal
    times and one id repeated; sizes such as 0.1 + 0.2 make the volume's summing order show."""
    ms = m0 * 1000
    return [
        {"ts": ms + 5_250, "price": 1.0842, "size": 0.1, "id": "a1"},
        {"ts": ms + 100, "price": 1.0840, "size": 0.2, "id": "a0"},  # earlier: the open
        {"ts": ms + 30_000, "price": 1.0851, "size": 0.3, "id": "a2"},
        {"ts": ms + 30_000, "price": 1.0833, "size": 0.7},  # same time, later: no id
        {"ts": ms + 59_999, "price": 1.0845, "size": 1.1, "id": "a4"},
        {"ts": ms + 59_999, "price": 1.0839, "size": 0.4},  # same time, later: the close
        {"ts": iso(m0 + 60)[:-1] + ".000Z", "price": 1.0846, "size": 2.0, "id": "b0"},
        {"ts": ms + 61_500, "price": 1.0899, "size": 0.3, "id": "b1"},
        {"ts": ms + 62_000, "price": 1.0101, "size": 99.0, "id": "b1"},  # duplicate id
        {"ts": ms + 119_000, "price": 1.0800, "size": 0.1, "id": "b2"},
        {"ts": ms + 120_000, "price": 1.0790, "size": 0.5, "id": "c0"},
        {"ts": iso(m0 + 150)[:-1] + ".250+00:00", "price": 1.0795, "size": 0.25, "id": "c1"},
    ]


@pytest.fixture
async def patient(make_service: Callable[..., Any]) -> AsyncIterator[Service]:
    """The service with an hour of grace: only later ticks close the minutes of these tests."""
    async with make_service(
        tick_close_grace_seconds=HOUR, tick_close_interval_seconds=0.1
    ) as service:
        yield service


async def test_ticks_of_three_minutes_close_two_bars_as_the_minute_aggregator_builds_them(
    patient: Service, kafka_bootstrap: str
) -> None:
    m0 = current_minute() - 180
    ticks = three_minutes(m0)
    expected = reference_bars(ticks)
    assert sorted(expected) == [m0, m0 + 60]
    # The reference itself, by hand: open first by time, close last by time (arrival order
    # breaks the tie at +59.999 s), volume summed in time order.
    assert expected[m0] == (1.0840, 1.0851, 1.0833, 1.0839, 0.2 + 0.1 + 0.3 + 0.7 + 1.1 + 0.4)
    assert expected[m0 + 60] == (1.0846, 1.0899, 1.0800, 1.0800, 2.0 + 0.3 + 0.1)

    response = await push_ticks(patient, {"symbol": "eurusd", "ticks": ticks})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "symbol": "EURUSD",
        "owner": "u1",
        "accepted": len(ticks) - 1,
        "late": 0,
        "duplicates": 1,
        "closed_bars": [iso(m0), iso(m0 + 60)],
        "open_minute": iso(m0 + 120),
    }
    assert await history_bars(patient, "EURUSD") == expected
    latest = await patient.get("/api/market/symbols/EURUSD/latest?timeframe=1m&limit=5")
    assert [b["close"] for b in latest.json()["bars"]] == [1.0839, 1.0800]

    ((key, envelope, payload),) = await read_events(
        kafka_bootstrap, patient.market.ingestor._topic, expect=1, settle_ms=300
    )
    assert key == b"u1/EURUSD:1m" and envelope.user_id == "u1"
    assert (payload.symbol, payload.timeframe, payload.source, payload.owner) == (
        "EURUSD",
        "1m",
        "ticks",
        "u1",
    )
    assert {
        epoch.seconds_from_datetime(b.ts): (b.open, b.high, b.low, b.close, b.volume)
        for b in payload.bars
    } == expected
    assert [b.correction for b in payload.bars] == [False, False]


async def test_the_idle_loop_closes_the_open_minute_once_the_grace_has_passed(
    make_service: Callable[..., Any], kafka_bootstrap: str
) -> None:
    # A grace that ends 4 s from now for the minute that has just ended.
    minute = current_minute() - 60
    deadline = time.time() + 4.0
    grace = deadline - (minute + 60)
    ticks = [
        {"ts": minute * 1000 + 1_000, "price": 101.5, "size": 1.0, "id": "t1"},
        {"ts": minute * 1000 + 58_000, "price": 100.25, "size": 2.5, "id": "t2"},
    ]
    async with make_service(
        tick_close_grace_seconds=grace, tick_close_interval_seconds=0.05
    ) as service:
        response = await push_ticks(service, {"symbol": "EURUSD", "ticks": ticks})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accepted"], body["closed_bars"], body["open_minute"]) == (2, [], iso(minute))
        if time.time() < deadline - 0.5:  # a slow start can eat the margin: then skip this half
            assert await stored_bars(service) == 0

        await wait_for(lambda: stored_bars(service), within=deadline - time.time() + 10)

        assert time.time() >= deadline
        assert await history_bars(service, "EURUSD") == reference_bars(ticks, close_last=True)
        events = await read_events(
            kafka_bootstrap, service.market.ingestor._topic, expect=1, settle_ms=300
        )
        assert [e[2].source for e in events] == ["ticks"]
        # Closed by the clock: a tick of that minute is now late.
        late = await push_ticks(
            service,
            {"symbol": "EURUSD", "ticks": [{"ts": minute * 1000 + 59_000, "price": 1, "size": 1}]},
        )
        assert (late.json()["late"], late.json()["open_minute"]) == (1, None)
        assert await history_bars(service, "EURUSD") == reference_bars(ticks, close_last=True)


async def test_the_same_request_twice_changes_nothing(
    patient: Service, kafka_bootstrap: str
) -> None:
    m0 = current_minute() - 180
    ticks = three_minutes(m0)
    body = {"symbol": "EURUSD", "ticks": ticks}
    first = await push_ticks(patient, body)
    assert first.status_code == 200
    stored = await history_bars(patient, "EURUSD")

    again = await push_ticks(patient, body)

    assert again.status_code == 200
    # The closed minutes' ids are gone with them: their ticks are late; the open minute's
    # are duplicates.
    assert again.json() == {
        **first.json(),
        "accepted": 0,
        "late": 10,
        "duplicates": 2,
        "closed_bars": [],
    }
    assert await history_bars(patient, "EURUSD") == stored
    # The open minute did not take the repeated ticks: a later tick closes it as they made it.
    closing = await push_ticks(
        patient, {"symbol": "EURUSD", "ticks": [{"ts": (m0 + 180) * 1000, "price": 2.0, "size": 1}]}
    )
    assert closing.json()["closed_bars"] == [iso(m0 + 120)]
    assert await history_bars(patient, "EURUSD") == reference_bars(
        [*ticks, {"ts": (m0 + 180) * 1000, "price": 2.0, "size": 1.0}]
    )
    events = await read_events(
        kafka_bootstrap, patient.market.ingestor._topic, expect=2, settle_ms=300
    )
    assert [len(e[2].bars) for e in events] == [2, 1]


async def test_late_ticks_are_reported_and_never_alter_a_closed_bar(patient: Service) -> None:
    m0 = current_minute() - 180
    ms = m0 * 1000
    ticks = [
        {"ts": ms + 10_000, "price": 50.0, "size": 1.0},
        {"ts": ms + 70_000, "price": 51.0, "size": 1.0},
    ]
    await push_ticks(patient, {"symbol": "EURUSD", "ticks": ticks})
    closed = await history_bars(patient, "EURUSD")
    assert closed == {m0: (50.0, 50.0, 50.0, 50.0, 1.0)}

    # Into the closed minute (a new high, a new open) and, in the same push, the open one.
    response = await push_ticks(
        patient,
        {
            "symbol": "EURUSD",
            "ticks": [
                {"ts": ms + 5_000, "price": 80.0, "size": 3.0, "id": "late-1"},
                {"ts": ms + 59_000, "price": 20.0, "size": 3.0},
                {"ts": ms + 71_000, "price": 52.0, "size": 1.0},
            ],
        },
    )

    assert response.json()["accepted"] == 1
    assert response.json()["late"] == 2
    assert response.json()["closed_bars"] == []
    assert await history_bars(patient, "EURUSD") == closed


async def test_minutes_survive_a_restart_and_late_ticks_stay_late(
    make_service: Callable[..., Any],
) -> None:
    m0 = current_minute() - 180
    ms = m0 * 1000
    first = [
        {"ts": ms + 10_000, "price": 50.0, "size": 1.0},
        {"ts": ms + 70_000, "price": 51.0, "size": 1.0, "id": "x"},
    ]
    async with make_service(tick_close_grace_seconds=HOUR) as service:
        await push_ticks(service, {"symbol": "EURUSD", "ticks": first})
    async with make_service(tick_close_grace_seconds=HOUR) as service:
        response = await push_ticks(
            service,
            {
                "symbol": "EURUSD",
                "ticks": [
                    {"ts": ms + 20_000, "price": 99.0, "size": 1.0},  # late
                    {"ts": ms + 65_000, "price": 52.5, "size": 1.0},  # before the open: opens
                    {"ts": ms + 80_000, "price": 51.0, "size": 5.0, "id": "x"},  # duplicate
                    {"ts": ms + 90_000, "price": 49.0, "size": 2.0},
                    {"ts": ms + 120_000, "price": 60.0, "size": 1.0},
                ],
            },
        )
        assert response.json()["late"] == 1 and response.json()["duplicates"] == 1
        assert response.json()["closed_bars"] == [iso(m0 + 60)]
        assert await history_bars(service, "EURUSD") == {
            m0: (50.0, 50.0, 50.0, 50.0, 1.0),
            m0 + 60: (52.5, 52.5, 49.0, 49.0, 4.0),
        }


def _tick(**changes: Any) -> Tick:
    return {"ts": current_minute() * 1000, "price": 1.0842, "size": 1.0, "id": "t", **changes}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"symbol": "EURUSD", "ticks": [_tick(price="1.0842")]}, ["body", "ticks", 0, "price"]),
        ({"symbol": "EURUSD", "ticks": [_tick(price="NaN")]}, ["body", "ticks", 0, "price"]),
        ({"symbol": "EURUSD", "ticks": [_tick(), _tick(size=-0.5)]}, ["body", "ticks", 1, "size"]),
        ({"symbol": "EURUSD", "ticks": [_tick(price=0)]}, ["body", "ticks", 0, "price"]),
        ({"symbol": "EURUSD", "ticks": [_tick(size=True)]}, ["body", "ticks", 0, "size"]),
        ({"symbol": "EURUSD", "ticks": []}, ["body", "ticks"]),
        ({"symbol": "EURUSD", "ticks": [_tick()] * 10_001}, ["body", "ticks"]),
        ({"symbol": "EURUSD", "ticks": [_tick(bid=1.0)]}, ["body", "ticks", 0, "bid"]),
        ({"symbol": "EURUSD", "ticks": [_tick()], "timeframe": "1m"}, ["body", "timeframe"]),
        ({"symbol": "EUR USD", "ticks": [_tick()]}, ["body", "symbol"]),
        ({"ticks": [_tick()]}, ["body", "symbol"]),
        ({"symbol": "EURUSD", "ticks": [_tick(ts="2024-01-02T15:04:05")]}, ["body", "ticks", 0]),
        ({"symbol": "EURUSD", "ticks": [_tick(ts=1.5e12)]}, ["body", "ticks", 0]),
        ({"symbol": "EURUSD", "ticks": [_tick(id="a b")]}, ["body", "ticks", 0, "id"]),
        ({"symbol": "EURUSD", "ticks": [_tick(id="x" * 65)]}, ["body", "ticks", 0, "id"]),
        (
            {"symbol": "EURUSD", "ticks": [_tick(ts=(current_minute() + 3600) * 1000)]},
            ["body", "ticks", 0, "ts"],
        ),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
    patient: Service, redis_client: Any, redis_prefix: str, body: Any, loc: list[Any]
) -> None:
    response = await push_ticks(patient, body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    locs = [e["loc"] for e in response.json()["errors"]]
    assert any(found[: len(loc)] == loc for found in locs), locs
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}md:t:*")] == []
    assert await stored_bars(patient) == 0


async def test_a_nan_literal_makes_the_body_malformed_json(
    patient: Service, redis_client: Any, redis_prefix: str
) -> None:
    """Strict JSON, as on every platform route: NaN is not JSON (a 400, not a 422)."""
    body = b'{"symbol": "EURUSD", "ticks": [{"ts": 1704067200000, "price": NaN, "size": 1}]}'
    response = await push_ticks(patient, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}md:t:*")] == []


async def test_another_users_ticks_go_to_their_own_series(patient: Service) -> None:
    m0 = current_minute() - 180
    ms = m0 * 1000
    mine = [
        {"ts": ms + 1_000, "price": 1.10, "size": 1.0},
        {"ts": ms + 61_000, "price": 1.11, "size": 1.0},
    ]
    theirs = [
        {"ts": ms + 2_000, "price": 1.20, "size": 4.0},
        {"ts": ms + 62_000, "price": 1.21, "size": 1.0},
    ]
    assert (await push_ticks(patient, {"symbol": "EURUSD", "ticks": mine})).status_code == 200
    response = await push_ticks(patient, {"symbol": "EURUSD", "ticks": theirs}, user="u2")

    assert response.json()["owner"] == "u2"
    assert response.json()["closed_bars"] == [iso(m0)]  # u1's open minute is not u2's
    assert await history_bars(patient, "EURUSD") == {m0: (1.10, 1.10, 1.10, 1.10, 1.0)}
    assert await history_bars(patient, "EURUSD", user="u2") == {m0: (1.20, 1.20, 1.20, 1.20, 4.0)}
    # Writing into u1's series is refused as for bars, and nothing of u2's is applied.
    refused = await push_ticks(
        patient, {"symbol": "EURUSD", "ticks": theirs}, user="u2", params={"owner": "u1"}
    )
    assert refused.status_code == 404
    async with patient.market.sessions() as session:
        columns, _ = await history.read_latest(session, "u1", "EURUSD", "1m", 10)
    assert len(columns) == 1


async def test_pushing_ticks_needs_the_write_scope(patient: Service) -> None:
    body = orjson.dumps({"symbol": "EURUSD", "ticks": [_tick()]})
    headers = {"content-type": "application/json"}
    anonymous = await patient.client.post("/api/market/ticks", content=body, headers=headers)
    reader = await patient.client.post(
        "/api/market/ticks",
        content=body,
        headers={**headers, **patient.headers(scopes=frozenset({"market:read"}))},
    )
    writer = await patient.client.post(
        "/api/market/ticks",
        content=body,
        headers={**headers, **patient.headers(scopes=frozenset({"market:write"}))},
    )
    assert (anonymous.status_code, reader.status_code, writer.status_code) == (401, 403, 200)


async def test_a_closed_minute_history_refused_is_stored_later_exactly_once(
    patient: Service, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The minute waits in Redis while history is away; the loop stores it, once."""
    m0 = current_minute() - 180
    ms = m0 * 1000
    ticks = [
        {"ts": ms + 1_000, "price": 10.0, "size": 1.0},
        {"ts": ms + 61_000, "price": 11.0, "size": 1.0},
    ]
    real = history.upsert_bars

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("history is away")

    monkeypatch.setattr(history, "upsert_bars", unreachable)
    response = await push_ticks(patient, {"symbol": "EURUSD", "ticks": ticks})
    assert response.status_code == 200, response.text
    assert response.json()["closed_bars"] == [iso(m0)]
    assert await stored_bars(patient) == 0

    monkeypatch.setattr(history, "upsert_bars", real)
    await wait_for(lambda: stored_bars(patient), within=10)
    assert await history_bars(patient, "EURUSD") == {m0: (10.0, 10.0, 10.0, 10.0, 1.0)}
    events = await read_events(
        kafka_bootstrap, patient.market.ingestor._topic, expect=1, settle_ms=500
    )
    assert len(events) == 1
    assert await patient.market.ticks.close_idle() == 0  # nothing left to store
