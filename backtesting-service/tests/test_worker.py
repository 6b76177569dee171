"""Jobs through Kafka, a worker process pool, PostgreSQL and S3, end to end.

One in-process worker member at a time; a group of several worker processes, one of them
killed mid-chunk, is `test_scale_out.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from algotrade.backtest_events import BacktestRequested
from algotrade.bus import EventProducer
from algotrade.engine import Bars, compile_graph
from algotrade.events import Envelope, Topics, default_registry
from algotrade.storage import ObjectStore
from algotrade_testkit.kafka import read_records
from backtesting_service.backtest import BacktestConfig, run_backtest
from backtesting_service.config import Settings
from backtesting_service.execution import run_single
from backtesting_service.results import results_prefix

from .conftest import Service, csv_bars


def store_of(settings: Settings) -> ObjectStore:
    return ObjectStore.from_settings(settings)


async def spy_bars(start: str, end: str) -> Bars:
    return await csv_bars().bars(
        "alice", "SPY", "1d", datetime.fromisoformat(start), datetime.fromisoformat(end)
    )


async def test_backtest_job_runs_to_completion_with_results_in_s3_and_events(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    body = request_body()
    job = (await service.submit(body)).json()
    async with start_worker():
        done = await service.wait_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["progress"] == 1.0 and done["started_at"] and done["finished_at"]

    # The stored numbers are the engine's numbers for the same inputs.
    bars = await spy_bars(body["start"], body["end"])
    config = BacktestConfig(initial_capital=100_000, fee_bps=1, timeframe="1d")
    expected = run_backtest(compile_graph(body["graph"]), bars, config)
    assert done["bars"] == len(bars)
    assert done["summary"]["metrics"] == orjson.loads(orjson.dumps(expected.metrics.as_dict()))

    # S3: the summary, equity and trades under backtests/{user}/{job}/, byte for byte what a
    # rerun of the same job produces (so a redo overwrites with identical objects).
    store = store_of(settings)
    prefix = results_prefix("alice", job["id"])
    assert sorted(await store.list_keys(prefix)) == [
        prefix + "equity.parquet",
        prefix + "summary.json",
        prefix + "trades.parquet",
    ]
    summary, equity, trades = run_single(
        compile_graph(body["graph"]).to_bytes(), bars, config.model_dump_json()
    )
    assert await store.get_bytes(prefix + "equity.parquet") == equity
    assert await store.get_bytes(prefix + "trades.parquet") == trades
    assert await store.get_json(prefix + "summary.json") == orjson.loads(summary)

    # Trades, paged; the equity curve, down-sampled.
    url = f"/api/backtests/{job['id']}"
    page = (await service.get(f"{url}/trades", params={"offset": 2, "limit": 5})).json()
    assert page["total"] == len(expected.trades)
    assert len(page["trades"]) == 5
    assert page["trades"][0]["entry_price"] == expected.trades.entry_price[2]
    curve = (await service.get(f"{url}/equity", params={"points": 100})).json()
    assert curve["total_points"] == len(bars) and curve["method"] == "lttb"
    assert len(curve["points"]) == 100
    assert curve["points"][-1]["equity"] == expected.equity[-1]

    # Progress and completion on backtest.events.v1.
    records = await read_records(
        settings.kafka_bootstrap, Topics(settings.kafka_topic_prefix).backtest_events, expect=2
    )
    types = [default_registry.decode(r.value)[0].type for r in records]
    assert types == ["backtest.progress", "backtest.completed"]
    completed = default_registry.decode(records[-1].value)[1]
    assert completed.job_id == job["id"]  # type: ignore[attr-defined]
    assert completed.results_prefix == prefix  # type: ignore[attr-defined]


async def test_sweep_shares_chunks_and_ranks_results_with_walk_forward(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
) -> None:
    body = request_body(
        search={"parameters": {"fast": [5, 10, 15], "slow": [30, 50]}},
        metric="sharpe",
        walk_forward={"train_bars": 500, "test_bars": 250},
    )
    job = (await service.submit_sweep(body)).json()
    assert (job["combinations"], job["chunks_total"]) == (6, 2)
    async with start_worker():
        done = await service.wait_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["chunks_done"] == 2
    ranked = (
        await service.get(f"/api/backtests/sweeps/{job['id']}/results", params={"sort": "sharpe"})
    ).json()
    assert ranked["total"] == 6
    sharpes = [r["metrics"]["sharpe"] for r in ranked["results"]]
    assert sharpes == sorted(sharpes, reverse=True)
    assert [r["rank"] for r in ranked["results"]] == [1, 2, 3, 4, 5, 6]

    # The best combination's metrics are a plain backtest's metrics with those parameters.
    best = ranked["results"][0]
    assert done["summary"]["best"]["index"] == best["index"]
    bars = await spy_bars(body["start"], body["end"])
    plan = compile_graph(body["graph"]).with_params(best["params"])
    single = run_backtest(plan, bars, BacktestConfig(initial_capital=100_000, fee_bps=1))
    assert best["metrics"] == orjson.loads(orjson.dumps(single.metrics.as_dict()))

    report = done["summary"]["walk_forward"]
    assert len(report["folds"]) == (len(bars) - 500) // 250
    for fold in report["folds"]:
        assert fold["best"]["params"] in [r["params"] for r in ranked["results"]]
    drawdown_sorted = (
        await service.get(
            f"/api/backtests/sweeps/{job['id']}/results", params={"sort": "max_drawdown"}
        )
    ).json()
    drawdowns = [r["metrics"]["max_drawdown"] for r in drawdown_sorted["results"]]
    assert drawdowns == sorted(drawdowns)
    bad_sort = await service.get(
        f"/api/backtests/sweeps/{job['id']}/results", params={"sort": "luck"}
    )
    assert bad_sort.status_code == 422


class BlockingBars:
    """CSV bars that hold the first request until released: a worker 'in the middle' of a job."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self._csv = csv_bars()

    async def bars(self, *args: Any, **kwargs: Any) -> Bars:
        self.entered.set()
        await self.release.wait()
        return await self._csv.bars(*args, **kwargs)


async def test_a_worker_killed_mid_job_leaves_it_to_be_redone_with_the_same_result(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    job = (await service.submit(request_body())).json()
    blocking = BlockingBars()
    async with start_worker(bars=blocking) as doomed:
        await asyncio.wait_for(blocking.entered.wait(), 30)
        assert (await service.get(f"/api/backtests/{job['id']}")).json()["status"] == "running"
        # Kill the consumer mid-job: the offset is not committed and nothing was stored.
        assert doomed.consumer_task is not None
        doomed.consumer_task.cancel()
    assert (await service.get(f"/api/backtests/{job['id']}")).json()["status"] == "running"

    async with start_worker():
        done = await service.wait_status(job["id"], "completed", "failed")
        assert done["status"] == "completed", done["error"]
        # A duplicate of the message (redelivery after the commit was lost) changes nothing.
        topics = Topics(settings.kafka_topic_prefix)
        producer = EventProducer(settings.kafka_bootstrap, client_id="test")
        await producer.start()
        try:
            duplicate = default_registry.build(
                "backtest.requested",
                BacktestRequested(job_id=job["id"], kind="backtest"),
                producer="test",
                key=f"{job['id']}:0",
            )
            await producer.publish(topics.backtest_jobs, duplicate)
            await asyncio.sleep(1.0)
        finally:
            await producer.stop()
    again = (await service.get(f"/api/backtests/{job['id']}")).json()
    assert again["finished_at"] == done["finished_at"] and again["summary"] == done["summary"]


async def test_poison_messages_go_to_the_dlq_and_failures_are_recorded(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    # A walk-forward longer than the range is only found out by the worker: the job fails.
    too_long = request_body(
        search={"parameters": {"fast": [5, 10]}},
        walk_forward={"train_bars": 5_000, "test_bars": 1_000},
    )
    failing = (await service.submit_sweep(too_long)).json()
    producer = EventProducer(settings.kafka_bootstrap, client_id="test")
    await producer.start()
    try:
        await producer.send_raw(topics.backtest_jobs, b"not an event", key=b"x")
        ghost = default_registry.build(
            "backtest.requested",
            BacktestRequested(job_id="0" * 26, kind="backtest"),
            producer="test",
        )
        await producer.publish(topics.backtest_jobs, ghost)
    finally:
        await producer.stop()
    async with start_worker():
        failed = await service.wait_status(failing["id"], "failed", "completed")
        dead = await read_records(
            settings.kafka_bootstrap, Topics.dlq(topics.backtest_jobs), expect=2
        )
    assert failed["status"] == "failed"
    assert "walk-forward needs at least 6000 bars" in failed["error"]
    errors = sorted(dict(r.headers)["dlq-error"].decode() for r in dead)
    assert errors[0].startswith("EventError: event is not JSON")
    assert errors[1] == f"EventError: job {'0' * 26} does not exist"
    events = await read_records(settings.kafka_bootstrap, topics.backtest_events, expect=2)
    decoded = [Envelope.model_validate_json(r.value) for r in events]
    assert [e.type for e in decoded] == ["backtest.progress", "backtest.failed"]


async def test_a_job_cancelled_while_queued_is_skipped_by_the_worker(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    cancelled = (await service.submit(request_body())).json()
    await service.client.delete(f"/api/backtests/{cancelled['id']}", headers=service.headers())
    after = (await service.submit(request_body())).json()
    async with start_worker():
        await service.wait_status(after["id"], "completed")
    job = (await service.get(f"/api/backtests/{cancelled['id']}")).json()
    assert job["status"] == "cancelled" and job["summary"] is None
    store = store_of(settings)
    assert await store.list_keys(results_prefix("alice", cancelled["id"])) == []


class UnreachableBars:
    """Market data that does not answer the first ``failures`` calls (by default, never)."""

    def __init__(self, failures: int | None = None) -> None:
        self.calls = 0
        self.failures = failures

    async def bars(self, *args: Any, **kwargs: Any) -> Bars:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise ConnectionError("market data is down")
        return await csv_bars().bars(*args, **kwargs)


async def test_a_job_whose_every_attempt_fails_is_marked_failed_once_the_runner_gives_up(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    job = (await service.submit(request_body())).json()
    bars = UnreachableBars()
    # An outage is retried for its budget first (the next test); a short one here.
    async with start_worker(bars=bars, worker_outage_retry_seconds=0.5):
        failed = await service.wait_status(job["id"], "failed", "completed", within=60)
    assert failed["status"] == "failed"
    assert failed["error"] == (
        f"gave up after {settings.worker_retry_attempts} attempts: "
        "ConnectionError: market data is down"
    )
    assert bars.calls >= settings.worker_retry_attempts
    dead = await read_records(
        settings.kafka_bootstrap,
        Topics.dlq(Topics(settings.kafka_topic_prefix).backtest_jobs),
        expect=1,
    )
    assert dict(dead[0].headers)["dlq-error"] == b"ConnectionError: market data is down"


async def test_a_job_meeting_an_outage_longer_than_its_attempts_still_completes(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    """Market data restarting: refused more times than the job has attempts, then back."""
    job = (await service.submit(request_body())).json()
    bars = UnreachableBars(failures=settings.worker_retry_attempts + 1)
    async with start_worker(bars=bars):
        done = await service.wait_status(job["id"], "failed", "completed", within=60)
    assert done["status"] == "completed", done["error"]
    assert bars.calls == settings.worker_retry_attempts + 2
