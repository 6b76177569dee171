"""Replays: a stored series played as if live into the live path; start, status, stop, owners."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from market_data_testkit import Service, minute_bars

from algotrade_testkit.kafka import read_events


async def start(service: Service, user: str = "u1", **body: Any) -> Any:
    payload = {"symbol": "SRC", "timeframe": "1m", **body}
    return await service.client.post(
        "/api/market/replays", json=payload, headers=service.headers(user)
    )


async def status(service: Service, replay_id: str, user: str = "u1") -> dict[str, Any]:
    response = await service.client.get(
        f"/api/market/replays/{replay_id}", headers=service.headers(user)
    )
    body: dict[str, Any] = response.json()
    return body


async def test_a_replay_at_max_speed_feeds_history_window_and_kafka(
    service: Service, kafka_bootstrap: str
) -> None:
    await service.push({"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(300)})
    response = await start(service, speed="max", start="2024-01-01T01:00:00Z")
    assert response.status_code == 201, response.text
    replay = response.json()
    assert replay["target_symbol"].startswith("SRC.R") and replay["bars_total"] == 240
    await service.market.replays.wait(replay["id"])
    done = await status(service, replay["id"])
    assert (done["state"], done["bars_emitted"], done["last_ts"]) == (
        "completed",
        240,
        "2024-01-01T04:59:00Z",
    )
    target = replay["target_symbol"]
    latest = (
        await service.get(f"/api/market/symbols/{target}/latest?timeframe=1m&limit=240")
    ).json()
    source = (await service.get("/api/market/symbols/SRC/latest?timeframe=1m&limit=240")).json()
    assert latest["bars"] == source["bars"]
    events = await read_events(
        kafka_bootstrap, service.market.ingestor._topic, expect=2, settle_ms=300
    )
    replayed = [e for e in events if e[0] == f"u1/{target}:1m".encode()]
    assert sum(len(e[2].bars) for e in replayed) == 240
    assert all(e[2].source == "replay" and e[1].user_id == "u1" for e in replayed)


async def test_a_replay_keeps_to_its_speed_and_can_be_stopped(service: Service) -> None:
    await service.push({"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(100)})
    loop = asyncio.get_running_loop()
    started = loop.time()
    paced = (await start(service, speed=1200, end="2024-01-01T00:10:00Z")).json()  # 20 bars/s
    await service.market.replays.wait(paced["id"])
    elapsed = loop.time() - started
    assert (await status(service, paced["id"]))["bars_emitted"] == 10
    assert 0.45 <= elapsed < 3.0, elapsed

    slow = (await start(service, speed=60, target_symbol="src.rslow")).json()  # 1 bar per second
    assert slow["target_symbol"] == "SRC.RSLOW"
    await asyncio.sleep(1.2)
    stopped = await service.client.post(
        f"/api/market/replays/{slow['id']}/stop", headers=service.headers()
    )
    assert stopped.status_code == 200
    body = stopped.json()
    assert body["state"] == "stopped" and 1 <= body["bars_emitted"] < 100
    listed = (await service.client.get("/api/market/replays", headers=service.headers())).json()
    assert {r["id"] for r in listed["replays"]} == {paced["id"], slow["id"]}


async def test_replays_belong_to_their_user(service: Service) -> None:
    await service.client.post(
        "/api/market/bars",
        json={"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(3)},
        headers=service.headers("alice"),
    )
    mine = (await start(service, user="alice", speed="max")).json()["id"]
    assert (
        await service.client.get(f"/api/market/replays/{mine}", headers=service.headers("bob"))
    ).status_code == 404
    stop = await service.client.post(
        f"/api/market/replays/{mine}/stop", headers=service.headers("bob")
    )
    assert stop.status_code == 404
    assert (
        await service.client.get("/api/market/replays", headers=service.headers("bob"))
    ).json() == {"replays": []}


@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        ({"target_symbol": "BTC-USD"}, 422),  # never into a real market's history
        ({"target_symbol": "SRC"}, 422),
        ({"speed": 0}, 422),
        ({"speed": "fast"}, 422),
        ({"timeframe": "2m"}, 422),
        ({"symbol": "NOPE"}, 404),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, 422),
    ],
)
async def test_bad_replay_requests_are_problems(
    service: Service, body: dict[str, Any], status_code: int
) -> None:
    await service.push({"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(3)})
    response = await start(service, **body)
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("speed", ["60", True], ids=["string", "bool"])
async def test_a_replay_speed_of_another_json_type_is_refused_not_coerced(
    service: Service, speed: Any
) -> None:
    await service.push({"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(3)})
    response = await start(service, speed=speed)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"][:2]) for e in response.json()["errors"]} == {("body", "speed")}


async def test_running_replays_per_user_are_limited(make_service: Any) -> None:
    async with make_service(replay_max_active_per_user=1) as service:
        await service.push({"symbol": "SRC", "timeframe": "1m", "bars": minute_bars(50)})
        first = await start(service, speed=1)
        assert first.status_code == 201
        second = await start(service, speed=1)
        assert second.status_code == 409
