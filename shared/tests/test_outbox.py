"""The outbox keeps a committed state change and its event together across crashes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from algotrade.bus import EventProducer
from algotrade.db import ServiceSchema, build_session_factory
from algotrade.events import TestEventPayload, Topics, default_registry
from algotrade.outbox import OutboxRelay, stage_event
from algotrade_testkit.kafka import read_records
from algotrade_testkit.plugin import wait_for


class Killed(BaseException):
    """The relay process dying: nothing below a BaseException handler survives it."""


class DiesAfterPublishing(EventProducer):
    """A real producer whose process dies right after Kafka acknowledged the batch."""

    async def send_many(self, messages: list[Any]) -> None:
        await super().send_many(messages)
        raise Killed


@pytest.fixture
async def producer(kafka_bootstrap: str) -> Any:
    p = EventProducer(kafka_bootstrap, client_id="relay")
    await p.start()
    yield p
    await p.stop()


async def change_state_with_event(
    engine: AsyncEngine, schema: ServiceSchema, topic: str, n: int
) -> str:
    """What a service does: the state row and its event in one transaction."""
    applied = schema.base.metadata.tables[f"{schema.name}.applied"]
    envelope = default_registry.build(
        "platform.ping", TestEventPayload(n=n), producer="t", key=f"k{n}"
    )
    async with build_session_factory(engine).begin() as session:
        await session.execute(insert(applied).values(event_id=envelope.id, n=n))
        await stage_event(session, schema.outbox, topic, envelope)
    return envelope.id


async def test_rolled_back_transaction_leaves_no_event(
    engine: AsyncEngine, schema: ServiceSchema, topic_prefix: str
) -> None:
    envelope = default_registry.build("platform.ping", TestEventPayload(n=1), producer="t")
    with pytest.raises(RuntimeError):
        async with build_session_factory(engine).begin() as session:
            await stage_event(session, schema.outbox, f"{topic_prefix}x", envelope)
            raise RuntimeError("state change failed")
    async with engine.connect() as conn:
        assert (await conn.execute(select(schema.outbox))).all() == []


async def test_event_committed_before_a_crash_is_delivered_by_the_next_relay(
    engine: AsyncEngine,
    schema: ServiceSchema,
    producer: EventProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    topic = Topics(topic_prefix).strategy_events
    # The writer commits and "crashes" before any relay ran: the event exists only in the outbox.
    event_id = await change_state_with_event(engine, schema, topic, 1)

    relay = OutboxRelay(engine, schema.outbox, producer, poll_seconds=0.05)
    task = asyncio.create_task(relay.run())
    await wait_for(lambda: _pending_is(relay, 0))
    await relay.stop()
    await task
    records = await read_records(kafka_bootstrap, topic, expect=1)
    assert [default_registry.decode(r.value)[0].id for r in records] == [event_id]
    assert records[0].key == b"k1"
    assert dict(records[0].headers)["event-id"] == event_id.encode()


async def _pending_is(relay: OutboxRelay, n: int) -> bool:
    return await relay.pending() == n


async def test_relay_killed_between_publish_and_mark_republishes_and_consumer_dedupes(
    engine: AsyncEngine,
    schema: ServiceSchema,
    kafka_bootstrap: str,
    producer: EventProducer,
    topic_prefix: str,
) -> None:
    topic = Topics(topic_prefix).backtest_jobs
    ids = [await change_state_with_event(engine, schema, topic, n) for n in range(3)]

    dying = DiesAfterPublishing(kafka_bootstrap, client_id="dying-relay")
    await dying.start()
    try:
        with pytest.raises(Killed):
            await OutboxRelay(engine, schema.outbox, dying).relay_once()
    finally:
        await dying.stop()
    # Published, but the transaction that marks the rows rolled back with the "crash".
    assert await OutboxRelay(engine, schema.outbox, producer).pending() == 3

    restarted = OutboxRelay(engine, schema.outbox, producer)
    assert await restarted.relay_once() == 3
    assert await restarted.pending() == 0

    records = await read_records(kafka_bootstrap, topic, expect=6)
    delivered = [default_registry.decode(r.value)[0].id for r in records]
    assert sorted(delivered) == sorted(ids * 2), "each event twice: at least once"
    # A consumer that dedupes by id applies each once.
    assert sorted(dict.fromkeys(delivered)) == sorted(ids)


async def test_relay_publishes_in_id_order_per_key(
    engine: AsyncEngine,
    schema: ServiceSchema,
    producer: EventProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    topic = Topics(topic_prefix).session_events
    applied = schema.base.metadata.tables[f"{schema.name}.applied"]
    sent = []
    async with build_session_factory(engine).begin() as session:
        for n in range(20):
            env = default_registry.build(
                "platform.ping", TestEventPayload(n=n), producer="t", key="session-1"
            )
            sent.append(env.id)
            await session.execute(insert(applied).values(event_id=env.id, n=n))
            await stage_event(session, schema.outbox, topic, env)
    assert await OutboxRelay(engine, schema.outbox, producer).relay_once() == 20
    records = await read_records(kafka_bootstrap, topic, expect=20)
    assert [default_registry.decode(r.value)[1].n for r in records] == list(range(20))  # type: ignore[attr-defined]


async def test_two_relays_on_one_outbox_keep_each_keys_order(
    engine: AsyncEngine, schema: ServiceSchema, topic_prefix: str, producer: EventProducer
) -> None:
    """A service and its workers each run a relay on the same outbox table."""
    topic = Topics(topic_prefix).backtest_events
    other = EventProducer(producer_bootstrap(producer), client_id="relay-2")  # its own client
    await other.start()
    relays = [
        OutboxRelay(engine, schema.outbox, p, poll_seconds=0.01, batch_size=3)
        for p in (producer, other)
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    sessions = build_session_factory(engine)
    try:
        for n in range(300):
            envelope = default_registry.build(
                "platform.ping", TestEventPayload(n=n), producer="t", key=f"job{n % 3}"
            )
            async with sessions.begin() as session:
                await stage_event(session, schema.outbox, topic, envelope)
        await wait_for(lambda: _pending_is_zero(relays[0]), within=30)
    finally:
        for relay in relays:
            await relay.stop()
        await asyncio.gather(*tasks)
        await other.stop()
    records = await read_records(producer_bootstrap(producer), topic, expect=300)
    by_key: dict[str, list[int]] = {}
    for record in records:
        _, payload = default_registry.decode(record.value)
        by_key.setdefault(record.key.decode(), []).append(payload.n)  # type: ignore[attr-defined]
    for key, ns in by_key.items():
        assert ns == sorted(ns), f"{key} published out of order: {ns}"
    assert sorted(n for ns in by_key.values() for n in ns) == list(range(300))


async def _pending_is_zero(relay: OutboxRelay) -> bool:
    return await relay.pending() == 0


def producer_bootstrap(producer: EventProducer) -> str:
    return producer._bootstrap
