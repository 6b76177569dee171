"""Bus and outbox figures on the embedded Apache Kafka broker and PostgreSQL.

Run: ``uv run --frozen python bench/bench_bus.py [--events 1000] [--gap-ms 2]``

Prints: publish throughput (one-by-one ``send_and_wait`` as the baseline, batched
``send_many`` against it), publish->handled latency of events sent one at a time through the
`ConsumerRunner` (p50/p90/p99 against the goal), and outbox relay throughput (rows staged, then
relayed until all are published). The broker is ``KAFKA_BOOTSTRAP`` when set, else the embedded
Apache Kafka broker, else librdkafka's mock cluster, which the output then calls a STAND-IN.
Everything the bench starts (broker, PostgreSQL, its database, clients) is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel
from sqlalchemy import func, select

from algotrade.bus import ConsumerRunner, EventProducer
from algotrade.db import build_engine, build_session_factory, service_schema
from algotrade.events import Envelope, TestEventPayload, default_registry
from algotrade.outbox import OutboxRelay, stage_event
from algotrade_devstack.infra import drop_database, provide_kafka, provide_postgres
from algotrade_devstack.stack import ensure_database

ROOT = Path(__file__).resolve().parents[1]
LATENCY_GOAL_P99_MS = 20.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ping(n: int) -> Envelope:
    return default_registry.build("platform.ping", TestEventPayload(n=n), producer="b", key="k")


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """The bench's own topics, created up front so that no timing includes their creation
    (and so that a broker with auto-creation off, as the stack's is, serves them too)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


async def published_count(bootstrap: str, topic: str) -> int:
    """The sum of ``topic``'s high watermarks: how many records it holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def bench_publish(producer: EventProducer, prefix: str, rounds: int) -> None:
    single_n, batch_n = 1000, 5000
    singles, batches = [], []
    for _ in range(rounds):
        events = [ping(i) for i in range(batch_n)]
        started = time.perf_counter()
        for env in events[:single_n]:
            await producer.publish(f"{prefix}single", env)
        singles.append(single_n / (time.perf_counter() - started))
        messages = [
            (f"{prefix}batch", e.to_bytes(), b"k", [("event-id", e.id.encode())]) for e in events
        ]
        started = time.perf_counter()
        await producer.send_many(messages)
        batches.append(batch_n / (time.perf_counter() - started))
    single, batched = statistics.median(singles), statistics.median(batches)
    print(f"\npublish throughput (acks=all, idempotent; median of {rounds} rounds)")
    print(
        f"  one-by-one (send_and_wait), {single_n:,} events:  {single:>9,.0f} events/s  [baseline]"
    )
    print(
        f"  batched (send_many), {batch_n:,} events:          {batched:>9,.0f} events/s  "
        f"({batched / single:.1f}x baseline)"
    )
    print(
        "  (EventProducer lingers 2 ms to fill a batch, so a lone send_and_wait waits that out: "
        "it is in both the one-by-one rate and the latency below)"
    )


async def bench_latency(
    bootstrap: str, producer: EventProducer, topic: str, events: int, gap_ms: float
) -> None:
    arrived: dict[str, float] = {}
    landed: dict[str, asyncio.Event] = {}

    async def handler(envelope: Envelope, payload: BaseModel, record: Any) -> None:
        arrived[envelope.id] = time.perf_counter()
        landed.setdefault(envelope.id, asyncio.Event()).set()

    # The runner's defaults, as the services consume (aiokafka's fetch_max_wait_ms of 500:
    # a real broker answers a waiting fetch as soon as a record arrives).
    runner = ConsumerRunner(
        bootstrap=bootstrap,
        topics=[topic],
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        handler=handler,
        producer=producer,
        registry=default_registry,
    )
    task = asyncio.create_task(runner.run())
    latencies: list[float] = []
    try:
        await runner.wait_started()
        warmup = 20  # the first waits for the group to form; none of these is counted
        for i in range(-warmup, events):
            env = ping(i)
            done = landed.setdefault(env.id, asyncio.Event())
            sent = time.perf_counter()
            await producer.publish(topic, env)
            await asyncio.wait_for(done.wait(), 60)
            if i >= 0:
                latencies.append((arrived[env.id] - sent) * 1000)
            await asyncio.sleep(gap_ms / 1000)
    finally:
        await runner.stop()
        await asyncio.wait_for(task, 30)
    p99 = pct(latencies, 0.99)
    verdict = "PASS" if p99 < LATENCY_GOAL_P99_MS else "MISS"
    print(
        f"\npublish->handled latency through ConsumerRunner ({len(latencies):,} events sent one "
        f"at a time, send_and_wait each, {gap_ms:g} ms gap after each is handled)"
    )
    print(
        f"  p50 {statistics.median(latencies):6.2f} ms   p90 {pct(latencies, 0.90):6.2f} ms   "
        f"p99 {p99:6.2f} ms   max {max(latencies):6.2f} ms"
    )
    print(f"  goal p99 < {LATENCY_GOAL_P99_MS:g} ms on the embedded stack: {verdict}")


async def bench_outbox(
    database_url: str, bootstrap: str, producer: EventProducer, topic: str, n: int
) -> None:
    schema = service_schema("bench_outbox")
    engine = build_engine(database_url, pool_size=2)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_outbox")
            await conn.run_sync(schema.base.metadata.create_all)
        async with build_session_factory(engine).begin() as session:
            for i in range(n):
                await stage_event(session, schema.outbox, topic, ping(i))
        relay = OutboxRelay(engine, schema.outbox, producer, batch_size=500)
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        elapsed = time.perf_counter() - started
        async with engine.connect() as conn:
            left = await conn.scalar(
                select(func.count()).where(schema.outbox.c.published_at.is_(None))
            )
    finally:
        await engine.dispose()
    on_kafka = await published_count(bootstrap, topic)
    print(f"\noutbox relay ({n:,} rows staged, then relayed in batches of 500 until none is left)")
    print(f"  {n / elapsed:>9,.0f} events/s  ({elapsed * 1000:.0f} ms)")
    print(
        f"  check: {left} rows left unpublished; {on_kafka - 1:,} records on the topic "
        "(besides the one warm-up record)"
    )


async def main(args: argparse.Namespace) -> None:
    print(
        f"bench_bus: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    state = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        kafka = provide_kafka(
            state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade"
        )
        stack.callback(kafka.stop)
        pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
        stack.callback(pg.stop)
        kind = "STAND-IN, not the real broker: " if kafka.stand_in else ""
        print(f"broker:   {kind}{kafka.source}")
        print(f"postgres: {pg.source}", flush=True)

        name = f"bench_bus_{uuid.uuid4().hex[:8]}"
        database_url = await ensure_database(pg.url, name)

        stack.push_async_callback(drop_database, pg.url, name)

        prefix = f"bench{uuid.uuid4().hex[:6]}."
        await create_topics(
            kafka.url, [f"{prefix}{t}" for t in ("single", "batch", "latency", "outbox")], 4
        )
        producer = EventProducer(kafka.url, client_id="bench")
        await producer.start()
        stack.push_async_callback(producer.stop)
        for t in ("single", "batch", "latency", "outbox"):  # metadata fetched before timing
            await producer.publish(f"{prefix}{t}", ping(-1))

        await bench_publish(producer, prefix, args.rounds)
        await bench_latency(kafka.url, producer, f"{prefix}latency", args.events, args.gap_ms)
        await bench_outbox(database_url, kafka.url, producer, f"{prefix}outbox", args.outbox)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="latency samples")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between latency events")
    parser.add_argument("--rounds", type=int, default=5, help="publish throughput rounds")
    parser.add_argument("--outbox", type=int, default=5000, help="outbox rows to relay")
    asyncio.run(main(parser.parse_args()))
