"""Analytics figures: a portfolio of 50 sessions x 100k bars (load from PostgreSQL, build on a
common clock and compute its metrics and risk), its HTML tear sheet, and event consumption.

Baselines in the same process: loading the same rows with a plain asyncpg ``SELECT`` (what a
row-by-row read costs), building the same portfolio with pandas (outer join, forward fill,
weighted sum, then the same metrics), and reading the same events from Kafka without applying
them (what the broker and the decoding alone cost).
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

import asyncpg
import numpy as np
from aiokafka import AIOKafkaConsumer
from bench_bus import create_topics

from algotrade import session_events
from algotrade.bus import ConsumerRunner, EventProducer, RetryPolicy
from algotrade.db import build_engine, build_session_factory
from algotrade.events import Topics, default_registry, new_event_id
from algotrade.metrics import periods_per_year
from algotrade.migrations import upgrade
from algotrade_devstack.infra import provide_kafka, provide_postgres
from algotrade_devstack.stack import ensure_database
from analytics_service.analysis import Options, analyse_portfolio, metrics_of
from analytics_service.ingest import Ingestor
from analytics_service.runs import RunStore
from analytics_service.tearsheet import render_tearsheet

ROOT = Path(__file__).resolve().parents[1]
STEP = 3_600_000  # 1h bars
CAPITAL = 10_000.0


def plain_url(url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def percentiles(samples: list[float]) -> str:
    a = np.array(samples) * 1000
    return f"median {np.median(a):.1f} ms, p90 {np.percentile(a, 90):.1f} ms (n={len(a)})"


def curves(members: int, bars: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(members):
        start = 1_600_000_000_000 + int(rng.integers(0, 500)) * STEP
        ts = start + np.arange(bars, dtype=np.int64) * STEP
        equity = CAPITAL * np.exp(np.cumsum(rng.normal(0.00002, 0.004, bars)))
        position = np.where(rng.random(bars) < 0.6, 1.0 + i % 3, 0.0)
        out.append((ts, equity, position))
    return out


async def seed(url: str, data: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[str]:
    conn = await asyncpg.connect(plain_url(url))
    ids = []
    try:
        for ts, equity, position in data:
            run_id = new_event_id()
            ids.append(run_id)
            await conn.execute(
                "INSERT INTO analytics.runs (id, kind, user_id, status, strategy_id, "
                "strategy_version, symbol, timeframe, calendar, capital, warmup_bars, "
                "bars_applied) VALUES ($1, 'session', 'bench', 'running', 's', 1, $2, '1h', "
                "'24x7', $3, 0, $4)",
                run_id,
                f"SYM{len(ids) % 7}",
                CAPITAL,
                len(ts),
            )
            await conn.copy_records_to_table(
                "run_points",
                schema_name="analytics",
                records=zip(
                    [run_id] * len(ts), ts.tolist(), equity.tolist(), position.tolist(), strict=True
                ),
            )
    finally:
        await conn.close()
    return ids


async def plain_select(url: str, ids: list[str]) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        for run_id in ids:
            rows = await conn.fetch(
                "SELECT ts, equity, position FROM analytics.run_points WHERE run_id = $1 "
                "ORDER BY ts",
                run_id,
            )
            np.array([r["equity"] for r in rows])
    finally:
        await conn.close()


def pandas_portfolio(members: list[Any]) -> float:
    import pandas as pd

    frame = pd.concat(
        [pd.Series(m.equity / m.capital, index=m.ts, name=m.id) for m in members], axis=1
    )
    frame = frame.sort_index().ffill().fillna(1.0)
    weights = np.array([m.capital for m in members]) / sum(m.capital for m in members)
    value = (frame * weights).sum(axis=1) * sum(m.capital for m in members)
    returns = value.pct_change().dropna()
    return float(returns.mean() / returns.std() * np.sqrt(periods_per_year("1h", "24x7")))


async def portfolio(url: str, members_n: int, bars: int, repeats: int) -> None:
    print(f"seeding {members_n} sessions x {bars:,} bars ...", flush=True)
    started = time.perf_counter()
    ids = await seed(url, curves(members_n, bars))
    print(f"seeded in {time.perf_counter() - started:.1f}s")
    engine = build_engine(url, pool_size=2)
    store = RunStore(build_session_factory(engine), None, cache_entries=0)
    try:
        from sqlalchemy import select

        from analytics_service.models import runs

        async with build_session_factory(engine)() as db:
            rows = list((await db.execute(select(runs).where(runs.c.user_id == "bench"))).all())
        load, select_rows = [], []
        members: list[Any] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            members = await store.load_many(rows)
            load.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await plain_select(url, ids)
            select_rows.append(time.perf_counter() - t0)
        points = sum(m.ts.shape[0] for m in members)
        print(f"load {points:,} points (binary COPY -> NumPy): {percentiles(load)}")
        print(f"  baseline asyncpg SELECT row by row: {percentiles(select_rows)}")
        ratio = statistics.median(select_rows) / statistics.median(load)
        print(f"  ratio baseline/load: {ratio:.1f}x")

        options = Options()
        analyse(members[:1], options)  # compile numba kernels outside the timing
        build, baseline, report = [], [], {}
        for _ in range(repeats):
            t0 = time.perf_counter()
            report = analyse(members, options)
            build.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pandas_portfolio(members)
            baseline.append(time.perf_counter() - t0)
        clock = len(report["series"]["ts"])
        print(
            f"portfolio build + metrics + risk + correlation ({members_n} members, clock of "
            f"{clock:,} bars): {percentiles(build)}"
        )
        print(f"  baseline pandas align + ffill + Sharpe only: {percentiles(baseline)}")
        print(
            f"  ratio baseline/build: {statistics.median(baseline) / statistics.median(build):.2f}x"
        )
        one = [metrics_time(members[0]) for _ in range(repeats)]
        print(f"metrics of one 100k-bar session (algotrade.metrics): {percentiles(one)}")

        render, size = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            html = render_tearsheet(report)
            render.append(time.perf_counter() - t0)
            size = len(html.encode())
        print(f"HTML tear sheet of that portfolio: {percentiles(render)}, {size / 1024:.0f} KB")
    finally:
        await engine.dispose()


def analyse(members: list[Any], options: Options) -> dict[str, Any]:
    return analyse_portfolio(
        "bench", members, weighting="capital", given=[None] * len(members), options=options
    )


def metrics_time(member: Any) -> float:
    from analytics_service.analysis import curve_of

    t0 = time.perf_counter()
    metrics_of(curve_of(member))
    return time.perf_counter() - t0


async def consumption(url: str, bootstrap: str, events: int, points_each: int) -> None:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await create_topics(bootstrap, [topics.session_events, topics.backtest_events], 6)
    producer = EventProducer(bootstrap, client_id="bench-analytics")
    await producer.start()
    sessions = [new_event_id() for _ in range(50)]
    per_session = events // len(sessions)
    ts0 = 1_600_000_000_000
    try:
        for n, sid in enumerate(sessions):
            batch = []
            for k in range(per_session):
                base = ts0 + k * points_each * STEP
                points = [(base + j * STEP, CAPITAL + j, 1.0) for j in range(points_each)]
                envelope = default_registry.build(
                    session_events.EQUITY,
                    session_events.SessionEquity(
                        session_id=sid,
                        ts=points[-1][0],
                        equity=points[-1][1],
                        cash=0.0,
                        position=1.0,
                        bars_applied=(k + 1) * points_each,
                        points=points,
                    ),
                    producer="bench",
                    key=sid,
                    user_id=f"u{n % 5}",
                )
                batch.append(
                    (topics.session_events, envelope.model_dump_json().encode(), sid.encode(), [])
                )
            await producer.send_many(batch)
        total = per_session * len(sessions)
        # Baseline: the same records read and decoded, nothing applied.
        consumer = AIOKafkaConsumer(
            topics.session_events,
            bootstrap_servers=bootstrap,
            group_id=f"baseline-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        t0 = time.perf_counter()
        seen = 0
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batch.values():
                for record in records:
                    default_registry.decode(record.value)
                    seen += 1
        baseline = time.perf_counter() - t0
        await consumer.stop()

        engine = build_engine(url, pool_size=4)
        ingestor = Ingestor(build_session_factory(engine))
        handled = 0
        done = asyncio.Event()

        async def counting(envelope: Any, payload: Any, record: Any) -> None:
            nonlocal handled
            await ingestor(envelope, payload, record)
            handled += 1
            if handled >= total:
                done.set()

        spent = [0.0, 0]

        async def batch(items: Any) -> None:
            nonlocal handled
            t = time.perf_counter()
            await ingestor.batch(items)
            spent[0] += time.perf_counter() - t
            spent[1] += 1
            handled += len(items)
            if handled >= total:
                done.set()

        runner = ConsumerRunner(
            bootstrap=bootstrap,
            topics=[topics.session_events],
            group_id=f"analytics-{uuid.uuid4().hex[:6]}",
            handler=counting,
            batch_handler=batch,
            producer=producer,
            registry=default_registry,
            retry=RetryPolicy(outage_seconds=30.0),
        )
        task = asyncio.create_task(runner.run())
        await runner.wait_started()
        t0 = time.perf_counter()
        await asyncio.wait_for(done.wait(), timeout=600)
        applied = time.perf_counter() - t0
        await runner.stop()
        await task
        await engine.dispose()
        print(
            f"event consumption: {total:,} session.equity events x {points_each} points: "
            f"{total / applied:,.0f} events/s, {total * points_each / applied:,.0f} points/s "
            f"({applied:.1f}s)"
        )
        print(f"  baseline read + decode only: {total / baseline:,.0f} events/s")
        print(f"  in the batch handler: {spent[0]:.2f}s over {spent[1]} batches")
        print(f"  ratio applied/baseline: {baseline / applied:.2f}")
    finally:
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    print(f"bench_analytics: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    state = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        kafka = provide_kafka(
            state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade"
        )
        stack.callback(kafka.stop)
        print(
            f"broker: {'STAND-IN, not the real broker: ' if kafka.stand_in else ''}{kafka.source}"
        )
        pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
        stack.callback(pg.stop)
        url = await ensure_database(pg.url, f"bench_analytics_{uuid.uuid4().hex[:8]}")
        await upgrade(url, "analytics_service", "analytics")
        await portfolio(url, args.members, args.bars, args.repeats)
        for points_each in (1, 100):
            await consumption(url, kafka.url, args.events, points_each)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--events", type=int, default=5_000)
    asyncio.run(main(parser.parse_args()))
