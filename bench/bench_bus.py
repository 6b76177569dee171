"""Bus and outbox figures on the real protocol (librdkafka mock cluster) and local PostgreSQL.

Prints: publish throughput (one-by-one vs batched, the baseline ratio), end-to-end latency of one
event through the consumer runner (p50/p99), and outbox relay throughput.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from algotrade.bus import ConsumerRunner, EventProducer
from algotrade.db import build_engine, build_session_factory, service_schema
from algotrade.dev.infra import provide_kafka, provide_postgres
from algotrade.events import Envelope, TestEventPayload, default_registry
from algotrade.outbox import OutboxRelay, stage_event


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ping(n: int) -> Envelope:
    return default_registry.build("platform.ping", TestEventPayload(n=n), producer="b", key="k")


async def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    kafka = provide_kafka(state, os.environ.get("KAFKA_BOOTSTRAP"))
    pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
    producer = EventProducer(kafka.url, client_id="bench")
    await producer.start()
    try:
        n = 5000
        events = [ping(i) for i in range(n)]
        started = time.perf_counter()
        for env in events[:1000]:
            await producer.publish("bench.single", env)
        single = 1000 / (time.perf_counter() - started)
        started = time.perf_counter()
        await producer.send_many(
            [("bench.batch", e.to_bytes(), b"k", [("event-id", e.id.encode())]) for e in events]
        )
        batched = n / (time.perf_counter() - started)
        print(f"publish one-by-one (send_and_wait): {single:,.0f} events/s  [baseline]")
        print(
            f"publish batched (send_many):        {batched:,.0f} events/s  "
            f"({batched / single:.1f}x baseline)"
        )

        arrived: dict[str, float] = {}
        landed: dict[str, asyncio.Event] = {}

        async def handler(envelope: Envelope, payload: BaseModel, record: Any) -> None:
            arrived[envelope.id] = time.perf_counter()
            landed.setdefault(envelope.id, asyncio.Event()).set()

        runner = ConsumerRunner(
            bootstrap=kafka.url,
            topics=["bench.latency"],
            group_id="bench",
            handler=handler,
            producer=producer,
            registry=default_registry,
            consumer_options={"fetch_max_wait_ms": 5},
        )
        task = asyncio.create_task(runner.run())
        await runner.wait_started()
        latencies = []
        for i in range(-1, 300):  # the first one warms the group up and is not counted
            env = ping(i)
            done = landed.setdefault(env.id, asyncio.Event())
            sent = time.perf_counter()
            await producer.publish("bench.latency", env)
            await asyncio.wait_for(done.wait(), 30)
            if i >= 0:
                latencies.append((arrived[env.id] - sent) * 1000)
        await runner.stop()
        await task
        print(
            f"publish->handled latency: p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {pct(latencies, 0.99):.2f} ms (n={len(latencies)})"
        )

        schema = service_schema("bench_outbox")
        engine = build_engine(pg.url, pool_size=2)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS bench_outbox CASCADE"))
            await conn.execute(text("CREATE SCHEMA bench_outbox"))
            await conn.run_sync(schema.base.metadata.create_all)
        async with build_session_factory(engine).begin() as session:
            for env in events:
                await stage_event(session, schema.outbox, "bench.outbox", env)
        relay = OutboxRelay(engine, schema.outbox, producer, batch_size=500)
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        rate = n / (time.perf_counter() - started)
        print(f"outbox relay: {rate:,.0f} events/s ({n} rows, batches of 500)")
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA bench_outbox CASCADE"))
        await engine.dispose()
    finally:
        await producer.stop()
        kafka.stop()
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
