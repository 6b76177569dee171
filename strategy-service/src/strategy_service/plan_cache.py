"""Compiled plans cached in Redis by plan id, and compilation off the event loop.

A plan id is the hash of the resolved graph, so an entry never goes stale: identical graphs,
across strategies and users, share one entry. Entries expire after a TTL only to bound memory.
The cache is an accelerator, never a dependency: any Redis error, timeout or unreadable entry
counts as a miss and the plan is compiled. After an error the cache is skipped for
``retry_seconds`` so an outage costs one failed round trip per interval, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from anyio import to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from algotrade.engine import Plan, PlanDecodeError, compile_graph
from algotrade.engine.compiler import PLAN_FORMAT

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (RedisError, OSError, TimeoutError)


class PlanCacheMetrics:
    """Counters on the app's registry (served at ``/metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "strategy_plan_cache_hits_total",
            "Compiled plans served from the Redis cache",
            registry=registry,
        )
        self.misses = Counter(
            "strategy_plan_cache_misses_total",
            "Plans compiled because the cache could not serve them, by reason "
            "(absent, stale, error, bypassed)",
            ["reason"],
            registry=registry,
        )
        self.errors = Counter(
            "strategy_plan_cache_errors_total",
            "Redis errors and timeouts of the plan cache, by operation (get, set)",
            ["operation"],
            registry=registry,
        )
        self.compile_seconds = Histogram(
            "strategy_plan_compile_seconds",
            "Time to validate and compile a graph",
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )


# Below these sizes compiling (~0.2 ms for 10 nodes) or decoding (~0.04 ms) a plan costs less
# than handing it to a worker thread (~0.1 ms); above them the event loop would stall (a
# 500-node graph takes ~6-10 ms to compile and ~1-3 ms to decode).
INLINE_MAX_NODES = 32
INLINE_MAX_PLAN_BYTES = 16 * 1024


async def compile_off_loop(graph: Mapping[str, Any]) -> Plan:
    """`compile_graph` as a strategy, in a worker thread unless the graph is small.

    Raises `algotrade.engine.GraphInvalid` with every problem of an invalid graph; a graph
    without an entry signal is one (saved strategies are run by backtests and forward tests).
    """
    compile_strategy = partial(compile_graph, purpose="strategy")
    nodes = graph.get("nodes")
    if isinstance(nodes, list) and len(nodes) <= INLINE_MAX_NODES:
        return compile_strategy(graph)
    return await to_thread.run_sync(compile_strategy, graph)


async def decode_off_loop(data: bytes) -> Plan:
    """`Plan.from_bytes`, in a worker thread unless the plan is small."""
    if len(data) <= INLINE_MAX_PLAN_BYTES:
        return Plan.from_bytes(data)
    return await to_thread.run_sync(Plan.from_bytes, data)


class PlanCache:
    """``get``/``put`` plans by id; `load` returns a plan from the cache or by compiling."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str,
        ttl_seconds: int,
        timeout_seconds: float,
        retry_seconds: float,
        metrics: PlanCacheMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._skip_until = 0.0
        self.metrics = metrics

    def key(self, plan_id: str) -> str:
        # The plan format is part of the key: during a rolling deploy two engine versions
        # would otherwise overwrite each other's entries on every miss.
        return f"{self._prefix}strategy:plan:v{PLAN_FORMAT}:{plan_id}"

    @property
    def bypassed(self) -> bool:
        return self._redis is None or self._clock() < self._skip_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.metrics.errors.labels(operation).inc()
        self._skip_until = self._clock() + self._retry
        logger.warning(
            "plan cache %s failed (%s); compiling without the cache for %.1fs",
            operation,
            type(exc).__name__,
            self._retry,
        )

    async def get(self, plan_id: str) -> Plan | None:
        """The cached plan, or None (counted as a miss with its reason)."""
        redis = self._redis
        if redis is None or self.bypassed:
            self.metrics.misses.labels("bypassed").inc()
            return None
        try:
            async with asyncio.timeout(self._timeout):
                data = await redis.get(self.key(plan_id))
        except _CACHE_ERRORS as exc:
            self._failed("get", exc)
            self.metrics.misses.labels("error").inc()
            return None
        if data is None:
            self.metrics.misses.labels("absent").inc()
            return None
        try:
            plan = await decode_off_loop(data if isinstance(data, bytes) else data.encode())
        except PlanDecodeError as exc:
            logger.warning("plan cache entry %s unreadable (%s); recompiling", plan_id, exc)
            self.metrics.misses.labels("stale").inc()
            return None
        if plan.plan_id != plan_id:
            self.metrics.misses.labels("stale").inc()
            return None
        self.metrics.hits.inc()
        return plan

    async def put(self, plan: Plan) -> None:
        """Store ``plan``; failures are counted and logged, never raised."""
        redis = self._redis
        if redis is None or self.bypassed:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await redis.set(self.key(plan.plan_id), plan.to_bytes(), ex=self._ttl)
        except _CACHE_ERRORS as exc:
            self._failed("set", exc)

    async def compile(self, graph: Mapping[str, Any]) -> Plan:
        started = time.perf_counter()
        plan = await compile_off_loop(graph)
        self.metrics.compile_seconds.observe(time.perf_counter() - started)
        return plan

    async def load(self, plan_id: str, graph: Mapping[str, Any]) -> tuple[Plan, bool]:
        """The plan of a saved graph whose plan id is known: ``(plan, came_from_cache)``."""
        plan = await self.get(plan_id)
        if plan is not None:
            return plan, True
        plan = await self.compile(graph)
        if plan.plan_id != plan_id:
            # Same graph, other id: the engine's hashing changed since the version was saved.
            logger.warning("graph saved as plan %s now compiles to %s", plan_id, plan.plan_id)
        await self.put(plan)
        return plan, False
