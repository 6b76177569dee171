"""POST /api/market/bars: per-bar outcomes, idempotent retries, corrections, events, bad input."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from market_data_testkit import Service, bar, minute_bars
from sqlalchemy import func, select, text

from algotrade_testkit.kafka import read_events
from market_data_service import history, models

PROBLEM = "application/problem+json"


async def stored(service: Service, table: Any = models.bars) -> int:
    async with service.market.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_push_classifies_each_bar_and_retry_is_safe(
    service: Service, kafka_bootstrap: str
) -> None:
    bars = minute_bars(3)
    first = await service.push({"symbol": "btc/usd", "timeframe": "1m", "bars": bars})
    assert first.status_code == 200, first.text
    assert first.json()["statuses"] == ["accepted"] * 3

    again = await service.push({"symbol": "BTC-USD", "timeframe": "1m", "bars": bars})
    assert again.status_code == 200
    assert again.json()["statuses"] == ["duplicate"] * 3

    corrected = dict(bars[1], close=bars[1]["close"] + 0.25)
    third = await service.push({"symbol": "btc_usd", "timeframe": "1m", "bars": [corrected]})
    assert third.json()["statuses"] == ["corrected"]
    assert third.json()["counts"] == {"accepted": 0, "duplicate": 0, "corrected": 1, "rejected": 0}

    # Once per distinct bar: 3 new bars (one event), then one correction; duplicates: nothing.
    events = await read_events(
        kafka_bootstrap, service.market.ingestor._topic, expect=2, settle_ms=300
    )
    assert len(events) == 2
    (key, envelope, payload), (_, _, fix) = events
    # The pusher's own series: the key and the payload carry its owner.
    assert key == b"u1/BTC-USD:1m" and envelope.key == "u1/BTC-USD:1m"
    assert payload.owner == "u1" and payload.symbol == "BTC-USD"
    assert envelope.user_id == "u1" and envelope.type == "market.bars"
    assert [b.correction for b in payload.bars] == [False, False, False]
    assert [(b.correction, b.revision, b.close) for b in fix.bars] == [
        (True, 1, corrected["close"])
    ]
    assert fix.bars[0].version > payload.bars[1].version

    latest = await service.get("/api/market/symbols/BTC-USD/latest?timeframe=1m&limit=2")
    assert latest.status_code == 200
    assert [b["close"] for b in latest.json()["bars"]] == [corrected["close"], bars[2]["close"]]


async def test_each_rejected_bar_gets_its_own_reason(service: Service) -> None:
    t = 1_704_067_200
    bars: list[Any] = [
        bar("2024-01-01T00:00:00Z"),  # 0 fine
        bar("2024-01-01T00:01:00Z", v=-1),  # 1
        bar("2024-01-01T00:02:30Z"),  # 2 misaligned
        bar("2024-01-01T00:03:00Z", timeframe="2m"),  # 3 unknown timeframe
        bar("2024-01-01T00:04:00Z", h=99.5),  # 4 high below open/close
        bar("2024-01-01T00:05:00Z", lo=100.75),  # 5 low above open/close
        bar("2024-01-01T00:06:00Z", h=98.0, lo=99.0),  # 6 low above high
        bar("2024-01-01T00:07:00Z", symbol="BTC USD"),  # 7 bad symbol
        bar("2024-01-01T00:08:00Z", o="100"),  # 8 wrong JSON type
        {"ts": "2024-01-01T00:09:00Z", "open": 1, "high": 2, "low": 0.5, "close": 1},  # 9
        "not an object",  # 10
        bar("2024-01-01T00:11:00"),  # 11 no UTC offset
        bar("2024-01-01T00:12:00Z", o=True),  # 12 bool is not a number
        bar(t + 13 * 60),  # 13 fine, epoch seconds
    ]
    response = await service.push({"symbol": "BTC-USD", "timeframe": "1m", "bars": bars})
    assert response.status_code == 207
    body = response.json()
    reasons = {r["index"]: r["reason"] for r in body["rejections"]}
    assert reasons == {
        1: "negative_volume",
        2: "misaligned_timestamp",
        3: "invalid_timeframe",
        4: "high_below_open_close",
        5: "low_above_open_close",
        6: "low_above_high",
        7: "invalid_symbol",
        8: "invalid_number",
        9: "missing_field",
        10: "invalid_bar",
        11: "invalid_timestamp",
        12: "invalid_number",
    }
    assert all(r["message"] for r in body["rejections"])
    messages = {r["index"]: r["message"] for r in body["rejections"]}
    assert messages[8] == "open must be a JSON number, not a string"
    assert messages[12] == "open must be a JSON number, not a bool"
    assert body["statuses"][0] == body["statuses"][13] == "accepted"
    assert body["counts"] == {"accepted": 2, "duplicate": 0, "corrected": 0, "rejected": 12}
    assert await stored(service) == 2


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", str(10**400)])
async def test_non_finite_numbers_make_the_body_malformed_json(
    service: Service, number: str
) -> None:
    """Strict JSON, as on every platform route: some encoders write NaN/Infinity literals."""
    good = json.dumps(bar("2024-01-01T00:00:00Z"))
    bad = json.dumps(bar("2024-01-01T00:01:00Z", c=0)).replace('"close": 0', f'"close": {number}')
    body = f'{{"symbol": "X", "timeframe": "1m", "bars": [{good}, {bad}]}}'
    response = await service.client.post(
        "/api/market/bars",
        content=body,
        headers={**service.headers(), "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await stored(service) == 0


async def test_a_timestamp_repeated_in_one_batch_is_applied_in_order(
    service: Service, kafka_bootstrap: str
) -> None:
    first = bar("2024-01-01T00:00:00Z", c=100.5)
    second = bar("2024-01-01T00:00:00Z", c=100.75)
    response = await service.push(
        {"symbol": "X", "timeframe": "1m", "bars": [first, second, dict(first)]}
    )
    assert response.json()["statuses"][:2] == ["accepted", "corrected"]
    async with service.market.sessions() as session:
        columns, _ = await history.read_latest(session, "u1", "X", "1m", 5)
    assert columns.close.tolist() == [100.5]  # the third bar equals the first again
    events = await read_events(
        kafka_bootstrap, service.market.ingestor._topic, expect=3, settle_ms=300
    )
    assert [[b.correction for b in e[2].bars] for e in events] == [[False], [True], [True]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b'{"symbol": "X\\u0000", "bars": []}', 400, "bad_request"),
        (b'{"bars": ' + b"[" * 2000 + b"]" * 2000 + b"}", 400, "bad_request"),
        (b"[]", 422, "validation_failed"),
        (b'{"bars": "x"}', 422, "validation_failed"),
        (b'{"bars": [], "timeframe": "2h"}', 422, "validation_failed"),
        (b'{"bars": [], "symbol": "??"}', 422, "validation_failed"),
        (
            orjson.dumps({"symbol": "X", "timeframe": "1m", "bars": minute_bars(5001)}),
            413,
            "payload_too_large",
        ),
    ],
)
async def test_a_bad_envelope_is_a_problem_and_writes_nothing(
    service: Service, body: bytes, status: int, code: str
) -> None:
    response = await service.client.post(
        "/api/market/bars",
        content=body,
        headers={**service.headers(), "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code
    assert await stored(service) == 0


async def test_huge_bodies_are_refused_before_parsing(service: Service) -> None:
    bars_100k = orjson.dumps({"symbol": "X", "timeframe": "1m", "bars": minute_bars(100_000)})
    twenty_mb = b'{"bars": [' + b" " * (20 * 1024 * 1024) + b"]}"
    for body in (bars_100k, twenty_mb):
        response = await service.client.post(
            "/api/market/bars",
            content=body,
            headers={**service.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
    assert await stored(service) == 0


async def test_pushing_needs_the_write_scope(service: Service) -> None:
    body = orjson.dumps({"symbol": "X", "timeframe": "1m", "bars": minute_bars(1)})
    anonymous = await service.client.post("/api/market/bars", content=body)
    reader = await service.client.post(
        "/api/market/bars",
        content=body,
        headers=service.headers(scopes=frozenset({"market:read"})),
    )
    writer = await service.client.post(
        "/api/market/bars",
        content=body,
        headers=service.headers(scopes=frozenset({"market:write"})),
    )
    assert (anonymous.status_code, reader.status_code, writer.status_code) == (401, 403, 200)


async def test_a_failed_transaction_leaves_nothing_behind(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """History, summary and outbox commit together or not at all; the window is untouched."""

    async def lose_connection(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError("connection lost mid-transaction")

    monkeypatch.setattr(history, "update_series", lose_connection)
    response = await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(10)})
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert await stored(service) == 0
    assert await stored(service, models.series) == 0
    async with service.market.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM market.outbox")) == 0
    assert await service.market.windows.size("u1/X", "1m") == 0


async def test_health_answers_without_credentials(service: Service) -> None:
    response = await service.client.get("/api/market/health")
    assert response.status_code == 200
    body = response.json()
    assert body["accepting"] is True and body["status"] == "ok"
    assert body["limits"]["max_batch_bars"] == 5000
    assert body["dependencies"] == {"postgres": "ok", "redis": "ok", "kafka": "ok"}


async def test_without_postgres_the_service_says_so_instead_of_failing(
    make_service: Any,
) -> None:
    async with make_service(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none") as svc:
        health = await svc.client.get("/api/market/health")
        assert health.status_code == 503
        assert health.headers["content-type"] == PROBLEM
        push = await svc.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(2)})
        assert push.status_code == 503
        assert push.json()["code"] == "dependency_unavailable"


@pytest.mark.parametrize(
    ("price", "kind"), [("100.5", "a string"), (False, "a bool"), (None, "null"), ([1], "an array")]
)
async def test_a_close_of_another_json_type_is_rejected_per_bar_with_its_type(
    service: Service, price: Any, kind: str
) -> None:
    bars = minute_bars(2)
    bars[1]["close"] = price
    response = await service.push({"symbol": "BTC-USD", "timeframe": "1m", "bars": bars})
    assert response.status_code == 207, response.text
    assert response.json()["statuses"] == ["accepted", "rejected"]
    assert response.json()["rejections"] == [
        {
            "index": 1,
            "reason": "invalid_number",
            "message": f"close must be a JSON number, not {kind}",
        }
    ]
    assert await stored(service) == 1
