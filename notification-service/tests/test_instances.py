"""Two notification-service instances behind real uvicorn servers, on the test run's Kafka,
Redis and PostgreSQL, fed by events produced to Kafka as the other services produce them.

Properties: both instances send every event of a stream under the same numbers, in order, with
nothing missing, whichever partition order each consumed in; a client that drops out on one
instance and resumes on the other receives exactly what it missed; a client that stops reading
is closed as too slow while a fast one on the same instance receives everything."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from algotrade.bus import EventProducer, envelope_headers
from algotrade.config import ServiceSettings
from algotrade.events import Envelope, Topics, new_event_id
from algotrade.migrations import upgrade
from algotrade_testkit.services import internal_token, key_settings, serve_on_port
from algotrade_testkit.stalled import StalledClient
from notification_service.config import Settings
from notification_service.main import create_app

USER = "user-ws-1"
GRACE = 1.0  # seconds a socket may stay behind before it is closed


@pytest.fixture
async def instances(
    database_url: str, make_settings: Callable[..., Any], topic_prefix: str, kafka_bootstrap: str
) -> AsyncIterator[tuple[list[int], ServiceSettings, EventProducer]]:
    await upgrade(database_url, "notification_service", "notify")
    from algotrade.topics import ensure_topics

    await ensure_topics(kafka_bootstrap, topic_prefix)

    def settings(name: str) -> Settings:
        built: Settings = make_settings(
            Settings,
            **key_settings("notification"),
            instance_id=name,
            socket_queue=200,
            slow_grace_seconds=GRACE,
            max_sockets_per_user=4,
            stats_flush_seconds=0.2,
        )
        return built

    one, two = settings("one"), settings("two")
    # Tokens as the gateway mints them (the notification signer may not mint user tokens).
    minting: ServiceSettings = make_settings(ServiceSettings, **key_settings("gateway"))
    producer = EventProducer(kafka_bootstrap, client_id="test-events")
    await producer.start()
    try:
        # No protocol keepalive: uvicorn's (a ping every 20 s, 20 s for its pong) would close
        # the stalled client below as 1011 before its queue's grace when a loaded machine is
        # slow to push it the flood; the grace is what the tests check.
        async with (
            serve_on_port(create_app(one), ws_ping_interval=None) as url_one,
            serve_on_port(create_app(two), ws_ping_interval=None) as url_two,
        ):
            ports = [int(url.rsplit(":", 1)[1]) for url in (url_one, url_two)]
            yield ports, minting, producer
    finally:
        await producer.stop()


async def _client(port: int, settings: ServiceSettings, **options: Any) -> ClientConnection:
    token = internal_token(settings, USER)
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        **options,
    )
    welcome = orjson.loads(await ws.recv())
    assert welcome["type"] == "welcome" and welcome["user_id"] == USER
    await ws.send(orjson.dumps({"type": "subscribe", "channel": "user"}).decode())
    subscribed = orjson.loads(await ws.recv())
    assert subscribed["type"] == "subscribed"
    return ws


def _failed(job: str, size: int = 100) -> Envelope:
    return Envelope(
        type="backtest.failed",
        producer="test",
        key=job,
        user_id=USER,
        payload={"job_id": job, "kind": "backtest", "error": "x" * size},
    )


async def _produce(producer: EventProducer, topics: Topics, envelopes: list[Envelope]) -> None:
    await producer.send_many(
        [
            (
                topics.backtest_events,
                e.to_bytes(),
                e.key.encode() if e.key else None,
                envelope_headers(e),
            )
            for e in envelopes
        ]
    )


async def _events(ws: ClientConnection, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            message = orjson.loads(await ws.recv())
            if message["type"] == "event":
                out.append(message)
    return out


async def _until_consuming(
    clients: list[ClientConnection], producer: EventProducer, topics: Topics
) -> int:
    """Probe until every client got an event (the groups start at the end of the topics, so
    events sent before they are assigned are not theirs); the last number each holds."""
    last = [0] * len(clients)
    async with asyncio.timeout(60):
        while not all(last):
            await _produce(producer, topics, [_failed(new_event_id())])
            for i, ws in enumerate(clients):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        while True:
                            message = orjson.loads(await ws.recv())
                            if message["type"] == "event":
                                last[i] = message["seq"]
    # Drain what the probes left, so every client stands at the same number.
    await asyncio.sleep(1.0)
    for i, ws in enumerate(clients):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                while True:
                    message = orjson.loads(await ws.recv())
                    if message["type"] == "event":
                        last[i] = message["seq"]
    assert len(set(last)) == 1, last
    return last[0]


async def test_both_instances_number_alike_and_a_client_resumes_on_the_other(
    instances: tuple[list[int], ServiceSettings, EventProducer], topic_prefix: str
) -> None:
    ports, settings, producer = instances
    topics = Topics(topic_prefix)
    a = await _client(ports[0], settings)
    b = await _client(ports[1], settings)
    start = await _until_consuming([a, b], producer, topics)

    # Many jobs: their events spread over every partition of backtest.events.v1.
    envelopes = [_failed(new_event_id()) for _ in range(300)]
    await _produce(producer, topics, envelopes[:150])
    first_a = await _events(a, 150)
    await a.close()  # drops out; the rest comes while it is away
    await _produce(producer, topics, envelopes[150:])
    all_b = await _events(b, 300)

    numbers = [m["seq"] for m in all_b]
    assert numbers == list(range(start + 1, start + 301))  # in order, nothing missing
    assert {m["event"]["id"] for m in all_b} == {e.id for e in envelopes}
    assert [(m["seq"], m["event"]["id"]) for m in first_a] == [
        (m["seq"], m["event"]["id"]) for m in all_b[:150]
    ]

    # Back on the other instance, from where it was.
    back = await connect(
        f"ws://127.0.0.1:{ports[1]}/ws",
        additional_headers={"Authorization": f"Bearer {internal_token(settings, USER)}"},
    )
    await back.recv()  # welcome
    resume = first_a[-1]["seq"]
    await back.send(orjson.dumps({"type": "subscribe", "channel": "user", "resume_from": resume}))
    resumed = await _events(back, 150)
    assert [(m["seq"], m["event"]["id"]) for m in resumed] == [
        (m["seq"], m["event"]["id"]) for m in all_b[150:]
    ]
    for ws in (b, back):
        await ws.close()


async def test_a_client_that_stops_reading_is_closed_and_holds_nobody_up(
    instances: tuple[list[int], ServiceSettings, EventProducer], topic_prefix: str
) -> None:
    ports, settings, producer = instances
    topics = Topics(topic_prefix)
    fast = await _client(ports[0], settings)
    slow = await StalledClient.open(
        ports[0],
        "/ws",
        {"Authorization": f"Bearer {internal_token(settings, USER)}"},
        say=(orjson.dumps({"type": "subscribe", "channel": "user"}).decode(),),
    )
    await _until_consuming([fast], producer, topics)

    # 3,000 events of ~10 KB: far more than the slow client's socket buffers hold.
    count = 3000
    await _produce(producer, topics, [_failed(new_event_id(), 10_000) for _ in range(count)])

    async def drain_later() -> Any:
        """The stalled peer reads again well past the grace period (within the service's
        bounded wait for its close to get through)."""
        await asyncio.sleep(3 * GRACE)
        return await asyncio.wait_for(slow.read_to_close(), timeout=180)

    draining = asyncio.create_task(drain_later())
    got = await _events(fast, count, timeout=120)
    assert [m["seq"] for m in got] == list(range(got[0]["seq"], got[0]["seq"] + count))

    # The stalled one: whatever was on its way, then the close, 4008 with the reason.
    close = await draining
    assert close is not None and close.code == 4008 and "too slow" in close.reason
    events = [t for t in slow.texts if orjson.loads(t)["type"] == "event"]
    assert len(events) < count  # cut off, not served in full
    await fast.close()


async def test_one_user_cannot_hold_more_sockets_than_allowed(
    instances: tuple[list[int], ServiceSettings, EventProducer],
) -> None:
    ports, settings, _ = instances
    held = [await _client(ports[0], settings) for _ in range(4)]
    with pytest.raises(InvalidStatus) as refused:
        await _client(ports[0], settings)
    assert refused.value.response.status_code == 403  # closed before the handshake: 1008
    other = await connect(
        f"ws://127.0.0.1:{ports[0]}/ws",
        additional_headers={"Authorization": f"Bearer {internal_token(settings, 'someone-else')}"},
    )
    assert orjson.loads(await other.recv())["type"] == "welcome"  # others are not affected
    await held.pop().close()
    await asyncio.sleep(0.2)
    held.append(await _client(ports[0], settings))  # a freed place can be taken again
    for ws in [*held, other]:
        await ws.close()


async def test_a_flood_of_subscribes_is_limited_per_socket_and_the_socket_goes_on(
    instances: tuple[list[int], ServiceSettings, EventProducer],
) -> None:
    ports, settings, _ = instances
    ws = await _client(ports[0], settings)  # one subscribe spent
    started = time.monotonic()
    for _ in range(80):
        await ws.send(orjson.dumps({"type": "subscribe", "channel": "user"}).decode())
    answers = [orjson.loads(await ws.recv()) for _ in range(80)]
    elapsed = time.monotonic() - started
    accepted = sum(1 for a in answers if a["type"] == "subscribed")
    limited = [a for a in answers if a["type"] == "error"]
    assert accepted + len(limited) == 80
    assert {a["code"] for a in limited} == {"rate_limited"} and limited[0]["channel"] == "user"
    # The burst (50, one spent on connecting) and what refilled meanwhile (10 a second).
    assert 49 <= accepted <= 49 + math.ceil(10 * elapsed) + 1
    await ws.send(orjson.dumps({"type": "ping"}).decode())
    assert orjson.loads(await ws.recv())["type"] == "pong"
    await ws.close()
