"""Benchmark of the strategy service's plan cache: a cache hit against compiling the graph.

Run: ``uv run --frozen python bench/bench_strategy_service.py`` (``--quick`` for a shorter run).
Uses ``REDIS_URL``, else 127.0.0.1:6379, else a redis-server it starts. For three graph sizes
it times, interleaved so both see the same machine state:

- compile: ``compile_graph(graph)`` (what a cache miss costs, validation included);
- hit (raw): Redis ``GET`` + ``Plan.from_bytes`` on the event loop;
- hit (service): ``PlanCache.get`` as the compile endpoint calls it (adds the timeout guard and
  the hop to a worker thread that keeps decoding off the event loop).

and prints p50/p99 (the raw hit also split into its GET and decode) and the compile/hit ratio.
p99s are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from algotrade.engine import Plan, compile_graph
from algotrade_devstack.infra import provide_redis
from strategy_service.plan_cache import PlanCache, PlanCacheMetrics
from strategy_service.templates import MACD_TREND, SMA_CROSS


def chain_graph(length: int) -> dict[str, Any]:
    """``length`` chained SMAs compared with the close: a graph near the engine's size limits."""
    nodes: list[dict[str, Any]] = [{"id": "close", "type": "price", "params": {}}]
    edges = []
    previous = "close"
    for i in range(length):
        nodes.append({"id": f"s{i}", "type": "sma", "params": {"period": 2 + i % 50}})
        edges.append({"from": f"{previous}.out", "to": f"s{i}.in"})
        previous = f"s{i}"
    nodes += [
        {"id": "above", "type": "gt", "params": {}},
        {"id": "entry", "type": "enter_long", "params": {}},
    ]
    edges += [
        {"from": "close.out", "to": "above.a"},
        {"from": f"{previous}.out", "to": "above.b"},
        {"from": "above.out", "to": "entry.in"},
    ]
    return {"nodes": nodes, "edges": edges}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def line(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"    {name:<14} p50 {statistics.median(ms):8.3f} ms   p99 {percentile(ms, 99):8.3f} ms"


async def bench_graph(
    label: str, graph: dict[str, Any], redis: Redis, cache: PlanCache, rounds: int
) -> None:
    plan = compile_graph(graph)
    key = cache.key(plan.plan_id)
    await redis.set(key, plan.to_bytes())
    size = len(plan.to_bytes())
    names = ("compile", "hit (raw)", "  redis GET", "  from_bytes", "hit (service)")
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds + rounds // 10):
        warm = i < rounds // 10
        started = time.perf_counter()
        compile_graph(graph)
        compiled = time.perf_counter()
        data = await redis.get(key)
        fetched = time.perf_counter()
        Plan.from_bytes(data)
        raw = time.perf_counter()
        loaded = await cache.get(plan.plan_id)
        served = time.perf_counter()
        assert loaded is not None and loaded.plan_id == plan.plan_id
        if not warm:
            times["compile"].append(compiled - started)
            times["hit (raw)"].append(raw - compiled)
            times["  redis GET"].append(fetched - compiled)
            times["  from_bytes"].append(raw - fetched)
            times["hit (service)"].append(served - raw)
    await redis.delete(key)
    print(f"\n  {label}: {plan.node_count} nodes, cached plan {size / 1024:.1f} KiB")
    for name, values in times.items():
        print(line(name, values))
    for name in ("hit (raw)", "hit (service)"):
        p50 = statistics.median(times["compile"]) / statistics.median(times[name])
        p99 = percentile(times["compile"], 99) / percentile(times[name], 99)
        print(f"    compile / {name:<14} x{p50:6.1f} at p50, x{p99:6.1f} at p99")


async def main(quick: bool) -> None:
    rounds = 200 if quick else 1000
    with tempfile.TemporaryDirectory(prefix="bench-strategy-") as state:
        provided = provide_redis(Path(state), os.environ.get("REDIS_URL"), allow_local=True)
        try:
            redis = Redis.from_url(provided.url)
            cache = PlanCache(
                redis,
                prefix=f"bench:{time.time_ns()}:",
                ttl_seconds=60,
                timeout_seconds=1.0,
                retry_seconds=0.0,
                metrics=PlanCacheMetrics(CollectorRegistry()),
            )
            print(f"redis: {provided.source}; {rounds} rounds per graph (+10% warm-up)")
            await bench_graph("SMA crossover template", dict(SMA_CROSS.graph), redis, cache, rounds)
            await bench_graph("MACD trend template", dict(MACD_TREND.graph), redis, cache, rounds)
            await bench_graph("480-SMA chain", chain_graph(480), redis, cache, rounds // 4)
            await redis.aclose()
        finally:
            provided.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    asyncio.run(main(parser.parse_args().quick))
    sys.exit(0)
