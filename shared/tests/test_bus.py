"""The bus against a real Kafka broker and real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from algotrade.bus import (
    ConsumerRunner,
    ConsumerStalled,
    EventProducer,
    RedisDeduplicator,
    RetryPolicy,
)
from algotrade.db import ServiceSchema, build_session_factory, claim_event
from algotrade.events import Envelope, TestEventPayload, Topics, default_registry
from algotrade_testkit.kafka import read_records
from algotrade_testkit.plugin import wait_for


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so no handler catches it."""


@pytest.fixture
async def producer(kafka_bootstrap: str) -> Any:
    p = EventProducer(kafka_bootstrap, client_id="test")
    await p.start()
    yield p
    await p.stop()


async def create_topic(bootstrap: str, topic: str, *, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


def ping(n: int, key: str = "k") -> Envelope:
    return default_registry.build("platform.ping", TestEventPayload(n=n), producer="t", key=key)


def applying_handler(engine: AsyncEngine, schema: ServiceSchema, seen: list[int]) -> Any:
    """A handler whose effect (a row) commits together with its claim on the event id."""
    sessions = build_session_factory(engine)
    applied = schema.base.metadata.tables[f"{schema.name}.applied"]

    async def handle(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        seen.append(payload.n)
        async with sessions.begin() as session:
            if not await claim_event(session, schema.processed_events, "test", envelope.id):
                return
            await session.execute(insert(applied).values(event_id=envelope.id, n=payload.n))

    return handle


async def count_applied(engine: AsyncEngine, schema: ServiceSchema) -> int:
    applied = schema.base.metadata.tables[f"{schema.name}.applied"]
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(applied)) or 0)


# Short heartbeats and session timeout: a rejoin after a member left takes seconds, not the
# default 45 s (the embedded broker allows sessions down to 500 ms).
FAST_GROUP = {"heartbeat_interval_ms": 100, "session_timeout_ms": 6000}


async def run_until(r: ConsumerRunner, done: Callable[[], bool]) -> None:
    """Run a consumer until ``done()``, then stop it gracefully."""
    task = asyncio.create_task(r.run())
    try:
        await wait_for(done)
    finally:
        await r.stop()
        await task


def runner(
    kafka_bootstrap: str, topic: str, handler: Any, producer: EventProducer, **kw: Any
) -> ConsumerRunner:
    return ConsumerRunner(
        bootstrap=kafka_bootstrap,
        topics=[topic],
        group_id=f"g-{topic}",
        handler=handler,
        producer=producer,
        registry=default_registry,
        retry=kw.pop("retry", RetryPolicy(max_attempts=3, initial_backoff=0.01)),
        consumer_options=FAST_GROUP,
        **kw,
    )


async def test_consume_commit_restart_resumes_without_loss_or_double_application(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    engine: AsyncEngine,
    schema: ServiceSchema,
) -> None:
    topic = Topics(topic_prefix).strategy_events
    for n in range(10):
        await producer.publish(topic, ping(n, key=f"k{n % 3}"))
    seen: list[int] = []
    first = runner(kafka_bootstrap, topic, applying_handler(engine, schema, seen), producer)
    await run_until(first, lambda: first.stats.handled == 10)

    for n in range(10, 15):
        await producer.publish(topic, ping(n))
    seen_after: list[int] = []
    second = runner(kafka_bootstrap, topic, applying_handler(engine, schema, seen_after), producer)
    await run_until(second, lambda: second.stats.handled == 5)

    assert sorted(seen_after) == list(range(10, 15)), "restart re-read or lost messages"
    assert await count_applied(engine, schema) == 15


async def test_redelivery_after_crash_before_commit_is_applied_once(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    engine: AsyncEngine,
    schema: ServiceSchema,
) -> None:
    """The effect commits, then the consumer dies before committing the offset."""
    topic = Topics(topic_prefix).strategy_events
    await producer.publish(topic, ping(1))
    seen: list[int] = []
    inner = applying_handler(engine, schema, seen)

    async def apply_then_die(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        await inner(envelope, payload, record)
        raise Crash

    crashing = runner(kafka_bootstrap, topic, apply_then_die, producer)
    with pytest.raises(Crash):
        await crashing.run()

    again = runner(kafka_bootstrap, topic, inner, producer)
    await run_until(again, lambda: again.stats.handled == 1)
    assert seen == [1, 1], "the message should have been delivered twice"
    assert await count_applied(engine, schema) == 1


async def test_poison_message_goes_to_dlq_with_error_and_partition_moves_on(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    engine: AsyncEngine,
    schema: ServiceSchema,
) -> None:
    topic = Topics(topic_prefix).backtest_jobs
    # Same key, so the same partition: the poison sits between two good messages.
    await producer.publish(topic, ping(1, key="same"))
    await producer.send_raw(topic, b"{not an event", key="same")
    await producer.publish(topic, ping(3, key="same"))
    seen: list[int] = []
    r = runner(kafka_bootstrap, topic, applying_handler(engine, schema, seen), producer)
    await run_until(r, lambda: r.stats.handled == 2)
    assert seen == [1, 3]
    dead = await read_records(kafka_bootstrap, Topics.dlq(topic), expect=1)
    assert dead[0].value == b"{not an event"
    headers = dict(dead[0].headers)
    assert b"not JSON" in headers["dlq-error"]
    assert headers["dlq-source-topic"] == topic.encode()
    assert headers["dlq-attempts"] == b"0"


async def test_failing_handler_is_retried_then_dead_lettered(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    redis_client: Any,
    redis_prefix: str,
) -> None:
    topic = Topics(topic_prefix).session_events
    await producer.publish(topic, ping(13, key="x"))
    await producer.publish(topic, ping(14, key="x"))
    attempts: dict[int, int] = {}

    async def handler(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        attempts[payload.n] = attempts.get(payload.n, 0) + 1
        if payload.n == 13:
            raise RuntimeError("unlucky thirteen")

    given_up: list[tuple[int, str, int]] = []

    async def on_give_up(
        envelope: Envelope, payload: BaseModel, record: Any, error: BaseException, tries: int
    ) -> None:
        assert isinstance(payload, TestEventPayload)
        given_up.append((payload.n, str(error), tries))

    r = runner(
        kafka_bootstrap,
        topic,
        handler,
        producer,
        deduplicator=RedisDeduplicator(redis_client, f"{redis_prefix}c"),
        on_give_up=on_give_up,
    )
    await run_until(r, lambda: r.stats.handled == 1 and r.stats.dead_lettered == 1)
    assert attempts == {13: 3, 14: 1}
    assert given_up == [(13, "unlucky thirteen", 3)]  # once, after the last attempt
    dead = await read_records(kafka_bootstrap, Topics.dlq(topic), expect=1)
    headers = dict(dead[0].headers)
    assert headers["dlq-error"] == b"RuntimeError: unlucky thirteen"
    assert headers["dlq-attempts"] == b"3"
    assert default_registry.decode(dead[0].value)[1] == TestEventPayload(n=13)


async def test_an_outage_is_retried_for_its_budget_without_counting_as_attempts(
    kafka_bootstrap: str, topic_prefix: str, producer: EventProducer
) -> None:
    """A dependency restarting (connections refused for longer than three attempts take) does
    not fail the message; an outage outlasting ``outage_seconds`` counts again and gives up."""
    topic = Topics(topic_prefix).session_events
    await producer.publish(topic, ping(1, key="x"))
    await producer.publish(topic, ping(2, key="x"))
    tries: dict[int, int] = {}

    async def handler(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        tries[payload.n] = tries.get(payload.n, 0) + 1
        if payload.n == 2 or tries[payload.n] <= 6:  # 2: an outage that never ends
            raise ConnectionRefusedError(111, "Connection refused")

    given_up: list[tuple[int, int]] = []

    async def on_give_up(
        envelope: Envelope, payload: BaseModel, record: Any, error: BaseException, attempts: int
    ) -> None:
        assert isinstance(payload, TestEventPayload)
        given_up.append((payload.n, attempts))

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, outage_seconds=1)
    r = runner(kafka_bootstrap, topic, handler, producer, retry=policy, on_give_up=on_give_up)
    await run_until(r, lambda: r.stats.handled == 1 and r.stats.dead_lettered == 1)
    assert tries[1] == 7  # six refusals, then through: never given up
    assert tries[2] > 3 + 3  # retried through the budget, then three counted attempts
    assert given_up == [(2, 3)]


async def test_redis_deduplicator_skips_an_event_published_twice(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    redis_client: Any,
    redis_prefix: str,
) -> None:
    topic = Topics(topic_prefix).market_bars
    env = ping(5)
    await producer.publish(topic, env)
    await producer.publish(topic, env)  # e.g. an outbox relay that died before marking
    calls: list[str] = []

    async def handler(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        calls.append(envelope.id)

    r = runner(
        kafka_bootstrap,
        topic,
        handler,
        producer,
        deduplicator=RedisDeduplicator(redis_client, f"{redis_prefix}d"),
    )
    await run_until(r, lambda: r.stats.handled + r.stats.skipped_duplicates == 2)
    assert calls == [env.id]
    assert r.stats.skipped_duplicates == 1


async def test_stop_finishes_the_in_flight_message_and_commits_it(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
) -> None:
    topic = Topics(topic_prefix).backtest_events
    for n in range(3):
        await producer.publish(topic, ping(n, key="one"))
    started = asyncio.Event()
    release = asyncio.Event()
    done: list[int] = []

    async def slow(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        started.set()
        await release.wait()
        done.append(payload.n)

    r = runner(kafka_bootstrap, topic, slow, producer)
    task = asyncio.create_task(r.run())
    await asyncio.wait_for(started.wait(), 10)
    await r.stop()  # asked to stop while message 0 is in flight
    release.set()
    await asyncio.wait_for(task, 10)
    assert done == [0]

    rest: list[int] = []

    async def collect(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        rest.append(payload.n)

    again = runner(kafka_bootstrap, topic, collect, producer)
    await run_until(again, lambda: len(rest) == 2)
    assert rest == [1, 2], "the finished message must have been committed, the rest not"


async def test_a_member_left_without_a_partition_too_long_ends_with_consumer_stalled(
    kafka_bootstrap: str, topic_prefix: str, producer: EventProducer
) -> None:
    """Two members, one partition: the idle one gives up after ``stall_seconds``, so a
    supervisor can replace it; the one holding the partition keeps consuming."""
    topic = f"{topic_prefix}stall.v1"
    await create_topic(kafka_bootstrap, topic, partitions=1)

    async def handle(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        return None

    members = [runner(kafka_bootstrap, topic, handle, producer, stall_seconds=4.0) for _ in "ab"]
    tasks = [asyncio.create_task(m.run()) for m in members]
    try:
        done, pending = await asyncio.wait(tasks, timeout=90, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1, "no member stalled"
        with pytest.raises(ConsumerStalled, match="no partition assigned"):
            done.pop().result()
        await asyncio.sleep(6)  # longer than the limit: the member with the partition stays
        (survivor,) = pending
        assert not survivor.done()
    finally:
        for m in members:
            await m.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_batch_handler_applies_a_fetch_at_once_and_falls_back_to_one_by_one(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: EventProducer,
    engine: AsyncEngine,
    schema: ServiceSchema,
) -> None:
    """Good batches go through the batch handler; a batch holding a message the handler
    cannot apply is retried one by one, so the others are applied and that one dead-lettered."""
    topic = Topics(topic_prefix).strategy_events
    for n in range(20):
        await producer.publish(topic, ping(n, key="same"))
    seen: list[int] = []
    applied_one = applying_handler(engine, schema, seen)
    batches: list[list[int]] = []

    async def one(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        assert isinstance(payload, TestEventPayload)
        if payload.n < 0:
            raise ValueError("negative")
        await applied_one(envelope, payload, record)

    async def many(items: Any) -> None:
        numbers = [payload.n for _, payload, _ in items]
        if any(n < 0 for n in numbers):
            raise ValueError("a negative one in the batch")
        batches.append(numbers)
        for envelope, payload, record in items:
            await applied_one(envelope, payload, record)

    r = runner(
        kafka_bootstrap,
        topic,
        one,
        producer,
        batch_handler=many,
        retry=RetryPolicy(max_attempts=1, initial_backoff=0.01),
    )
    task = asyncio.create_task(r.run())
    try:
        await wait_for(lambda: r.stats.handled == 20)
        assert any(len(b) > 1 for b in batches), "no fetch was applied as a batch"
        await producer.publish(topic, ping(-1, key="same"))  # the handlers refuse it
        for n in range(20, 25):
            await producer.publish(topic, ping(n, key="same"))
        await wait_for(lambda: r.stats.handled == 25 and r.stats.dead_lettered == 1)
    finally:
        await r.stop()
        await task
    assert sorted(set(seen)) == [*range(25)]
    assert await count_applied(engine, schema) == 25
    dead = await read_records(kafka_bootstrap, Topics.dlq(topic), expect=1)
    assert b"negative" in dict(dead[0].headers)["dlq-error"]


async def test_send_many_puts_each_key_where_publish_does_also_from_its_cache(
    kafka_bootstrap: str, topic_prefix: str, producer: EventProducer
) -> None:
    """`send_many` remembers each key's partition; twice over, every key lands where
    `publish` (aiokafka's own partitioner) puts it."""
    topic = f"{topic_prefix}spread.v1"
    await create_topic(kafka_bootstrap, topic, partitions=6)
    keys = [f"session-{n}" for n in range(60)]
    for round_ in range(2):  # the second round's partitions come from the cache
        await producer.send_many([(topic, f"{round_}".encode(), key.encode(), ()) for key in keys])
    for key in keys:
        await producer.publish(topic, ping(0, key=key))
    records = await read_records(kafka_bootstrap, topic, expect=3 * len(keys))
    where: dict[bytes, set[int]] = {}
    for record in records:
        assert record.key is not None
        where.setdefault(record.key, set()).add(record.partition)
    assert len(where) == len(keys)
    assert all(len(partitions) == 1 for partitions in where.values()), where
    assert len({p for partitions in where.values() for p in partitions}) > 1
