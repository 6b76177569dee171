"""`backtesting-service worker`: a member of the consumer group on ``backtest.jobs.v1``.

Each worker process consumes one message at a time and runs its CPU work in a process pool
(one process per core by default): a single backtest uses one pool process, a sweep chunk is
split across all of them. Bars are fetched once per message. Kafka spreads partitions, and so
messages, over the group's members; run several workers to use several machines.

Delivery is at least once. The offset of a message is committed only after its result is
stored, so a worker killed mid-job leaves the message to be redelivered; the redo writes the
same S3 objects (keys and content depend only on the job) and its status changes are guarded,
so it cannot complete a job twice or revive a cancelled one. Errors:

- bad input found while running (`JobRejected`, an invalid plan, no bars): the job is marked
  failed with the reason, and the message is done;
- a message that is not a valid event, or names no job: straight to the DLQ;
- anything else (database, S3 or market data unavailable, a crashed pool process): retried by
  the consumer runner with backoff; when it gives up, `JobRunner.give_up` marks the job failed
  and the message goes to the DLQ with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import httpx
import orjson
from aiokafka import ConsumerRecord
from pydantic import BaseModel
from sqlalchemy import Row

from algotrade import backtest_events
from algotrade.auth import InternalTokens
from algotrade.bus import ConsumerRunner, ConsumerStalled, RetryPolicy
from algotrade.engine import GraphInvalid, Plan, PlanDecodeError, compile_graph
from algotrade.errors import EventError
from algotrade.events import Envelope, default_registry
from algotrade.service import open_resources, wait_until_ready
from backtesting_service import execution
from backtesting_service.backtest import BacktestConfig, BacktestInvalid
from backtesting_service.backtest.sweep import (
    SweepSpec,
    combinations,
    sort_key,
    walk_forward_report,
)
from backtesting_service.bar_sources import BarSource, HttpBarSource
from backtesting_service.config import Settings
from backtesting_service.jobs import JobStore
from backtesting_service.models import ACTIVE, SCHEMA
from backtesting_service.results import ResultStore

logger = logging.getLogger(__name__)

NAME = "backtesting-worker"
TOP_RESULTS = 100


def plan_of(job: Row[Any]) -> Plan:
    """The job's plan as compiled at submission, with its parameter values.

    Jobs submitted before plans were stored, or whose stored plan is of an older format or
    does not match the job's ``plan_id``, compile their validated graph instead.
    """
    stored = job.spec.get("plan")
    if isinstance(stored, str):
        try:
            plan = Plan.from_bytes(stored.encode())
        except PlanDecodeError as exc:
            logger.warning("stored plan unusable, compiling: %s", exc, extra={"job_id": job.id})
        else:
            if plan.plan_id == job.plan_id:
                return plan
            logger.warning("stored plan is not the job's, compiling", extra={"job_id": job.id})
    plan = compile_graph(job.spec["graph"])
    params = job.spec.get("params") or {}
    return plan.with_params(params) if params else plan


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` in at most ``parts`` contiguous, nearly equal, non-empty slices."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        stop = start + size + (1 if k < extra else 0)
        out.append(items[start:stop])
        start = stop
    return out


class JobRunner:
    """The handler of ``backtest.requested``: runs the job or chunk and stores its result."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        results: ResultStore,
        bars: BarSource,
        pool: Executor,
        processes: int,
    ) -> None:
        self._jobs = jobs
        self._results = results
        self._bars = bars
        self._pool = pool
        self._processes = processes

    async def __call__(
        self, envelope: Envelope, payload: BaseModel, record: ConsumerRecord[Any, Any]
    ) -> None:
        if not isinstance(payload, backtest_events.BacktestRequested):
            raise EventError(f"{envelope.type} is not a job message")
        job = await self._jobs.load(payload.job_id)
        if job is None:
            raise EventError(f"job {payload.job_id} does not exist")
        where = {"job_id": job.id, "chunk": payload.chunk, "offset": record.offset}
        if job.status not in ACTIVE:
            logger.info("skip %s job", job.status, extra=where)
            return
        if job.kind == "sweep" and await self._jobs.chunk_done(job.id, payload.chunk):
            logger.info("skip stored chunk", extra=where)
            return
        logger.info("%s started", "chunk" if job.kind == "sweep" else "backtest", extra=where)
        try:
            await self._run(job, payload)
        except (execution.JobRejected, BacktestInvalid, GraphInvalid) as exc:
            detail = exc.detail if isinstance(exc, BacktestInvalid | GraphInvalid) else str(exc)
            logger.warning("job failed: %s", detail, extra=where)
            await self._jobs.fail(job, detail)

    async def give_up(
        self,
        envelope: Envelope,
        payload: BaseModel,
        record: ConsumerRecord[Any, Any],
        error: BaseException,
        attempts: int,
    ) -> None:
        """The consumer runner's last attempt failed: mark the job failed with the reason."""
        if not isinstance(payload, backtest_events.BacktestRequested):
            return
        job = await self._jobs.load(payload.job_id)
        if job is not None:
            await self._jobs.fail(
                job, f"gave up after {attempts} attempts: {type(error).__name__}: {error}"
            )

    async def _run(self, job: Row[Any], message: backtest_events.BacktestRequested) -> None:
        if not await self._jobs.start(job):
            return
        clock = _Stopwatch()
        bars = await self._bars.bars(
            job.user_id, job.symbol, job.timeframe, job.start_at, job.end_at
        )
        clock.lap("fetch_ms")
        if len(bars) == 0:
            raise execution.JobRejected(
                f"no {job.timeframe} bars of {job.symbol} in [{job.start_at}, {job.end_at})"
            )
        plan = plan_of(job)
        config_json = BacktestConfig.model_validate(job.config).model_dump_json()
        loop = asyncio.get_running_loop()
        if job.kind == "backtest":
            summary, equity, trades = await loop.run_in_executor(
                self._pool, execution.run_single, plan.to_bytes(), bars, config_json
            )
            clock.lap("run_ms")
            if not await self._jobs.is_active(job.id):
                return
            document = orjson.loads(summary)
            await self._results.put_backtest(job.user_id, job.id, document, equity, trades)
            await self._jobs.complete_backtest(job, document, len(bars))
            clock.lap("store_ms")
            logger.info(
                "backtest stored", extra={"job_id": job.id, "bars": len(bars), **clock.laps}
            )
            return

        spec = SweepSpec.model_validate(job.spec["sweep"])
        combos = combinations(plan, spec.search).slice(message.first, message.last)
        walk_forward = spec.walk_forward.model_dump_json() if spec.walk_forward else None
        plan_bytes = plan.to_bytes()
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self._pool,
                    execution.run_combinations,
                    plan_bytes,
                    bars,
                    config_json,
                    part,
                    walk_forward,
                    spec.metric,
                )
                for part in split(combos, self._processes)
            )
        )
        rows = [row for part in parts for row in part]
        clock.lap("run_ms")

        async def finish(every: list[dict[str, Any]]) -> dict[str, Any]:
            """The full summary goes to S3; the job row and the event keep it without the
            top-100 list (the ranking endpoint pages through every combination)."""
            summary = sweep_summary(every, spec, len(bars))
            await self._results.put_summary(job.user_id, job.id, summary)
            return {key: value for key, value in summary.items() if key != "top"}

        outcome = await self._jobs.store_chunk(job, message.chunk, rows, len(bars), finish)
        clock.lap("store_ms")
        logger.info(
            "chunk %s",
            outcome,
            extra={"job_id": job.id, "chunk": message.chunk, "bars": len(bars), **clock.laps},
        )


class _Stopwatch:
    """Milliseconds spent per phase of a job, for the log line that closes it."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 1)
        self._last = now


def sweep_summary(rows: list[dict[str, Any]], spec: SweepSpec, bars: int) -> dict[str, Any]:
    """The ranking (best first by the sweep's metric) and the walk-forward report."""
    ranked = [
        {"index": r["index"], "params": r["params"], "metrics": r["metrics"]}
        for r in sorted(rows, key=sort_key(spec.metric))
    ]
    summary: dict[str, Any] = {
        "metric": spec.metric,
        "combinations": len(rows),
        "bars": bars,
        "best": ranked[0] if ranked else None,
        "top": ranked[:TOP_RESULTS],
    }
    if ranked:
        summary["metrics"] = ranked[0]["metrics"]
    if spec.walk_forward is not None:
        summary["walk_forward"] = walk_forward_report(rows, spec.metric, spec.walk_forward, bars)
    return summary


def process_pool(processes: int) -> ProcessPoolExecutor:
    """Spawned processes (a fork of an event loop with live sockets and threads is unsafe),
    each tied to the worker's life and loading the compiled kernels before its first job."""
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=execution.pool_process_start,
    )


class Worker:
    """The composition root of a worker process: clients, pool, consumer."""

    def __init__(
        self,
        settings: Settings,
        *,
        processes: int | None = None,
        bars: BarSource | None = None,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.processes = processes or settings.worker_processes or os.cpu_count() or 1
        self._bars = bars
        self._consumer_options = consumer_options or {}
        self._stop = asyncio.Event()
        self.runner: ConsumerRunner | None = None
        # The consuming task; cancelling it is what a crash looks like to Kafka (no commit).
        self.consumer_task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Finish the message in hand, commit, leave the group."""
        self._stop.set()
        if self.runner is not None:
            await self.runner.stop()

    async def run(self) -> None:
        """Consume until `stop`; a consumer that ends by itself (stalled) ends the worker."""
        async with self.running():
            stopped = asyncio.create_task(self._stop.wait())
            assert self.consumer_task is not None
            await asyncio.wait({stopped, self.consumer_task}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if self.consumer_task.done() and not self.consumer_task.cancelled():
                self.consumer_task.result()  # raises what ended it, e.g. ConsumerStalled

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ConsumerRunner]:
        """Everything up and consuming; on exit, stops in reverse order."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            # The same clients, pool sizes, Kafka start-up retry and outbox relay as the app's.
            resources = await stack.enter_async_context(
                open_resources(
                    name=NAME, settings=settings, uses=("postgres", "kafka", "s3"), schema=SCHEMA
                )
            )
            await wait_until_ready(resources.checks["kafka"], settings.worker_kafka_wait_seconds)
            topics = resources.topics
            producer = resources.require_producer()
            bars = self._bars
            if bars is None:
                client = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
                stack.push_async_callback(client.aclose)
                bars = HttpBarSource(
                    client,
                    settings.market_data_service_url,
                    InternalTokens(settings, ttl_seconds=settings.internal_token_ttl_seconds),
                    page_size=settings.bars_page_size,
                    max_bars=settings.max_bars,
                )
            pool = _RestartingPool(process_pool(self.processes), self.processes)
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            # Join the group only with a warm pool: otherwise the first chunks that the group
            # hands this member wait for process start-up and kernel loading.
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(pool, execution.pool_ready) for _ in range(self.processes))
            )
            handler = JobRunner(
                jobs=JobStore(
                    resources.require_sessions(), topics, producer=NAME, relay=resources.relay
                ),
                results=ResultStore(resources.require_store()),
                bars=bars,
                pool=pool,
                processes=self.processes,
            )
            runner = ConsumerRunner(
                bootstrap=settings.kafka_bootstrap,
                topics=[topics.backtest_jobs],
                group_id=settings.worker_group_id,
                handler=handler,
                producer=producer,
                registry=default_registry,
                retry=RetryPolicy(
                    max_attempts=settings.worker_retry_attempts,
                    initial_backoff=0.5,
                    max_backoff=10.0,
                    outage_seconds=settings.worker_outage_retry_seconds,
                ),
                max_batch=1,
                on_give_up=handler.give_up,
                stall_seconds=settings.worker_stall_seconds,
                consumer_options={
                    "max_poll_interval_ms": settings.worker_max_poll_interval_ms,
                    **self._consumer_options,
                },
            )
            self.runner = runner
            task = asyncio.create_task(runner.run(), name="worker-consumer")
            self.consumer_task = task

            async def stop_runner() -> None:
                await runner.stop()
                # A stall has been raised by `run` already; stopping must not raise it again.
                with contextlib.suppress(asyncio.CancelledError, ConsumerStalled):
                    await task

            stack.push_async_callback(stop_runner)
            await runner.wait_started()
            logger.info(
                "worker consuming %s as %s with %d processes",
                topics.backtest_jobs,
                settings.worker_group_id,
                self.processes,
            )
            yield runner


class _RestartingPool(Executor):
    """A process pool that replaces itself after a pool process died (e.g. the OOM killer),
    so one crash costs a retry of one message, not the worker."""

    def __init__(self, pool: ProcessPoolExecutor, processes: int) -> None:
        self._pool = pool
        self._processes = processes

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            logger.error("process pool broken; starting a new one")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = process_pool(self._processes)
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
