"""Benchmark of a forward-test worker: one bar applied to N running sessions of one series.

Run: ``uv run --frozen python bench/bench_forward_worker.py`` (``--sessions``, ``--bars``,
``--quick``: 1,000 sessions). Real PostgreSQL and Redis (``DATABASE_URL``/``REDIS_URL``, else
the embedded ones); Kafka is left out: the handler (`forward_test_service.worker.BarApplier`)
is called with each bar's event as the consumer runner would call it, so what is timed is what
a worker does per bar besides fetching it: the PostgreSQL look-up of the series' sessions,
the bar applied to the N sessions (`live_book.apply_many`, a compiled loop per page of
sessions), their snapshots, and in Redis one ``MSET`` of checkpoints and one equity element
per chunk of sessions (session.equity events are throttled off). A 20-node plan
(`algotrade_testkit.graphs.twenty_nodes`), warmed up on 300 synthetic daily bars.

Prints the engine's part alone (`live_book.apply_many` against `LiveSession.apply` one
session at a time, the baseline, in this process), the time per bar for all sessions (median
and p99) and per session, the memory a
loaded session holds (tracemalloc across the first restore), the restore time of N sessions
from Redis (a new worker) and from PostgreSQL (a new worker after the checkpoints were copied
there and Redis emptied), and the time of that copy. Goals from issue 12: under 250 ms per bar
for 10,000 sessions with the checkpoint, under 20 KB per running session.
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
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from redis.asyncio import Redis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.bars import BarEventItem, MarketBarsPayload, series_key
from algotrade.db import build_engine, build_session_factory
from algotrade.engine import Bars, Plan, compile_graph
from algotrade.events import Envelope, Topics
from algotrade.migrations import upgrade
from algotrade.simulation import BacktestConfig, ResolvedConfig
from algotrade.simulation.live import LiveBar, LiveSession, LiveTemplate
from algotrade.simulation.live_book import LiveBook, apply_many
from algotrade_devstack.infra import provide_postgres, provide_redis
from algotrade_devstack.stack import ensure_database
from algotrade_testkit.graphs import twenty_nodes
from forward_test_service import models
from forward_test_service.broker import PaperBroker
from forward_test_service.checkpoints import CheckpointStore
from forward_test_service.config import Settings
from forward_test_service.store import SessionStore, summary_of
from forward_test_service.worker import BarApplier

WARMUP_BARS = 300
DAY_MS = 86_400_000
GOAL_BAR_MS = 250.0
GOAL_SESSION_BYTES = 20_000


def synthetic(count: int) -> Bars:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, count)))
    opens = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.005, count)) * close
    return Bars.from_arrays(
        ts=1_600_000_000_000 // DAY_MS * DAY_MS + np.arange(count, dtype=np.int64) * DAY_MS,
        open=opens,
        high=np.maximum(opens, close) + spread,
        low=np.minimum(opens, close) - spread,
        close=close,
        volume=rng.integers(1_000, 100_000, count).astype(np.float64),
    )


class NoKafka:
    """Stands in for the producer: session.equity is throttled off in this benchmark."""

    async def send_many(self, messages: list[Any]) -> None:
        return None


def event_of(bars: Bars, i: int) -> tuple[Envelope, MarketBarsPayload]:
    item = BarEventItem(
        ts=datetime.fromtimestamp(int(bars.ts[i]) / 1000, UTC),
        open=float(bars.open[i]),
        high=float(bars.high[i]),
        low=float(bars.low[i]),
        close=float(bars.close[i]),
        volume=float(bars.volume[i]),
        correction=False,
        revision=0,
        version=i,
    )
    payload = MarketBarsPayload(symbol="BENCH", timeframe="1d", source="bench", bars=[item])
    envelope = Envelope(type="market.bars", producer="bench", payload=payload.model_dump())
    return envelope, payload


def record(offset: int) -> Any:
    """What the consumer runner hands the handler besides the event: the record's place."""
    return SimpleNamespace(topic="market.bars.v1", partition=0, offset=offset)


def bench_config() -> ResolvedConfig:
    return BacktestConfig(initial_capital=100_000.0).resolve_market(timeframe="1d", calendar="24x7")


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def engine_alone(plan: Plan, bars: Bars, count: int, rounds: int = 5) -> None:
    """The engine's part, in this process: one bar applied to ``count`` sessions by
    `live_book.apply_many` (a compiled loop per page) and, as the baseline, by
    `LiveSession.apply` one session at a time, alternately over ``rounds`` bars."""
    config = bench_config()
    template = LiveTemplate(plan, config)
    warm = template.start()
    for i in range(WARMUP_BARS):
        warm.apply(live_bar_of(bars, i))
    snapshot = warm.snapshot()
    book = LiveBook(template)
    booked = [book.restore(snapshot) for _ in range(count)]
    alone = [template.restore(snapshot) for _ in range(count)]
    batched_ms, one_by_one_ms = [], []
    for i in range(WARMUP_BARS, WARMUP_BARS + rounds):
        bar = live_bar_of(bars, i)
        started = time.perf_counter()
        apply_many(booked, bar)
        batched_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for session in alone:
            session.apply(bar)
        one_by_one_ms.append((time.perf_counter() - started) * 1000)
    batched, one_by_one = statistics.median(batched_ms), statistics.median(one_by_one_ms)
    print(
        f"the engine alone, one bar to {count:,} sessions: apply_many median {batched:.1f} ms "
        f"({batched * 1000 / count:.1f} us per session); baseline, LiveSession.apply one by "
        f"one, {one_by_one:.1f} ms ({one_by_one * 1000 / count:.1f} us); "
        f"x{one_by_one / batched:.1f} faster"
    )


def live_bar_of(bars: Bars, i: int) -> LiveBar:
    return LiveBar(
        int(bars.ts[i]),
        float(bars.open[i]),
        float(bars.high[i]),
        float(bars.low[i]),
        float(bars.close[i]),
        float(bars.volume[i]),
    )


async def seed(
    sessions: async_sessionmaker[AsyncSession], count: int, bars_after: int
) -> tuple[Plan, Bars]:
    """``count`` running sessions of the 20-node plan on ``BENCH`` 1d, warmed up on the first
    `WARMUP_BARS` of the returned bars (the rest, ``bars_after`` + 3, are for the bench)."""
    plan = compile_graph(twenty_nodes())
    config = bench_config()
    bars = synthetic(WARMUP_BARS + bars_after + 3)
    account = LiveSession.start(plan, config)
    for i in range(WARMUP_BARS):
        account.apply(live_bar_of(bars, i))
    snapshot = account.snapshot()
    print(
        f"{count:,} sessions of a {len(plan.steps)}-step plan "
        f"(warm-up {plan.warmup}), snapshot {len(snapshot)} bytes"
    )
    rows = [
        {
            "id": f"01BENCH{n:019d}",
            "user_id": f"user{n % 100}",
            "status": "running",
            "strategy_id": "bench",
            "strategy_version": 1,
            "plan_id": plan.plan_id,
            "plan": plan.to_bytes().decode(),
            "params": {},
            "symbol": "BENCH",
            "timeframe": "1d",
            "owner": "",
            "series_key": series_key("BENCH", "1d"),
            "config": config.model_dump(mode="json"),
            "config_id": config.config.config_id,
            "capital": 100_000.0,
            "warmup": plan.warmup,
            "revision": n,
            "snapshot": snapshot,
            "bars_applied": account.bars_applied,
            "last_bar_ts": account.last_ts,
            "summary": summary_of(account),
        }
        for n in range(count)
    ]
    async with sessions.begin() as session:
        for start in range(0, len(rows), 2_000):
            await session.execute(insert(models.sessions), rows[start : start + 2_000])
    return plan, bars


async def run(args: argparse.Namespace, database_url: str, redis_url: str) -> None:
    await upgrade(database_url, "forward_test_service", "forward")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        checkpoint_seconds=3_600,
        equity_event_seconds=3_600,
    )
    engine = build_engine(database_url)
    sessions = build_session_factory(engine)
    redis = Redis.from_url(redis_url)
    try:
        plan, bars = await seed(sessions, args.sessions, args.bars)
        engine_alone(plan, bars, args.sessions)

        def applier() -> BarApplier:
            return BarApplier(
                store=SessionStore(sessions, Topics(prefix), producer="bench"),
                checkpoints=CheckpointStore(redis, prefix),
                broker=PaperBroker(),
                producer=cast(Any, NoKafka()),
                topics=Topics(prefix),
                settings=settings,
            )

        worker = applier()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        i = WARMUP_BARS
        envelope, payload = event_of(bars, i)
        await worker(envelope, payload, record(i))
        first = time.perf_counter() - started
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert worker.loaded == args.sessions, worker.loaded

        samples = []
        for i in range(WARMUP_BARS + 1, WARMUP_BARS + 1 + args.bars):
            envelope, payload = event_of(bars, i)
            started = time.perf_counter()
            await worker(envelope, payload, record(i))
            samples.append((time.perf_counter() - started) * 1000)
        median = statistics.median(samples)
        print(
            f"one bar, all sessions (lookup + apply + snapshot + Redis pipeline): median "
            f"{median:.1f} ms, p99 {percentile(samples, 99):.1f} ms over {len(samples)} bars"
        )
        print(f"  per session: {median * 1000 / args.sessions:.1f} us")
        print(
            f"  goal < {GOAL_BAR_MS:.0f} ms per bar for 10,000 sessions: "
            + ("met" if median * 10_000 / args.sessions < GOAL_BAR_MS else "NOT met")
            + (" (scaled from this run)" if args.sessions != 10_000 else "")
        )
        print(
            f"memory per loaded session (tracemalloc across the restore): "
            f"{held / args.sessions / 1000:.1f} KB; goal < {GOAL_SESSION_BYTES / 1000:.0f} KB: "
            + ("met" if held / args.sessions < GOAL_SESSION_BYTES else "NOT met")
        )
        print(
            f"restore of {args.sessions:,} sessions from PostgreSQL + first bar, under "
            f"tracemalloc (slower): {first:.2f} s"
        )

        fresh = applier()
        i = WARMUP_BARS + 1 + args.bars
        envelope, payload = event_of(bars, i)
        started = time.perf_counter()
        await fresh(envelope, payload, record(i))
        again = time.perf_counter() - started
        print(
            f"restore of {args.sessions:,} sessions from Redis (a new worker) + one bar: "
            f"{again:.2f} s; restore alone ~{again - median / 1000:.2f} s "
            f"({(again - median / 1000) * 1e6 / args.sessions:.0f} us per session)"
        )

        # The periodic copy to PostgreSQL, then a worker that finds nothing in Redis.
        started = time.perf_counter()
        await fresh.copy_checkpoints()
        copied = time.perf_counter() - started
        print(
            f"copy of {args.sessions:,} checkpoints to PostgreSQL: {copied:.2f} s "
            f"({args.sessions / copied:,.0f} sessions/s)"
        )
        keys = [k async for k in redis.scan_iter(match=f"{prefix}ft:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        cold = applier()
        i += 1
        envelope, payload = event_of(bars, i)
        started = time.perf_counter()
        await cold(envelope, payload, record(i))
        again = time.perf_counter() - started
        assert cold.loaded == args.sessions, cold.loaded
        print(
            f"restore of {args.sessions:,} sessions from PostgreSQL (Redis empty) + one bar: "
            f"{again:.2f} s; restore alone ~{again - median / 1000:.2f} s "
            f"({(again - median / 1000) * 1e6 / args.sessions:.0f} us per session)"
        )
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        await redis.aclose()
        await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-fwd-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        pg = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
        stack.callback(pg.stop)
        redis = provide_redis(state, os.environ.get("REDIS_URL"), allow_local=True)
        stack.callback(redis.stop)
        url = await ensure_database(pg.url, f"bench_fwd_{uuid.uuid4().hex[:8]}")
        await run(args, url, redis.url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--bars", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1,000 sessions")
    options = parser.parse_args()
    if options.quick:
        options.sessions = 1_000
    asyncio.run(main(options))
