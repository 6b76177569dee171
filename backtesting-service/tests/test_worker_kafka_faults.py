"""The backtest worker under broker faults, on a dedicated real Apache Kafka broker that the
test kills and starts again on the same port and data directory (`kafka_broker_factory`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pytest

from algotrade_testkit.plugin import wait_for
from backtesting_service import worker as worker_module
from backtesting_service.config import Settings
from backtesting_service.worker import Worker

from .conftest import FAST_GROUP, Service, csv_bars

CATCH_UP_WITHIN = 120.0  # generous: a broker restart takes 10-40 s on a busy machine


@pytest.fixture
def broker(kafka_broker_factory: Callable[[], Any]) -> Any:
    return kafka_broker_factory()


@pytest.fixture
def settings(make_settings: Callable[..., Any], migrated: str, broker: Any) -> Settings:
    settings: Settings = make_settings(
        Settings,
        sweep_chunk_size=4,
        strategy_service_url="http://strategy.test",
        market_data_service_url="http://market.test",
        kafka_bootstrap=broker.bootstrap,
    )
    return settings


async def test_a_worker_whose_broker_dies_as_it_starts_consumes_once_the_broker_is_back(
    service: Service,
    settings: Settings,
    broker: Any,
    request_body: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen under chaos: a worker restarted by its supervisor found Kafka ready, then the broker
    was killed before its consumer joined the group. The consumer's start failed, and the
    worker waited for it to start for good: alive, consuming nothing, jobs left queued."""
    caplog.set_level(logging.WARNING, logger="algotrade.bus")
    ready = worker_module.wait_until_ready

    async def ready_then_broker_dies(check: Any, within_seconds: float) -> None:
        await ready(check, within_seconds)
        broker.kill()

    monkeypatch.setattr(worker_module, "wait_until_ready", ready_then_broker_dies)
    worker = Worker(settings, processes=1, bars=csv_bars(), consumer_options=FAST_GROUP)
    running = asyncio.create_task(worker.run())

    def consumer_met_the_dead_broker() -> bool:
        task = worker.consumer_task
        failed = task is not None and task.done()
        retrying = any(record.name == "algotrade.bus" for record in caplog.records)
        return failed or retrying

    try:
        await wait_for(consumer_met_the_dead_broker, within=120)
        await asyncio.to_thread(broker.start)  # the same port and data directory

        job = (await service.submit(request_body())).json()
        deadline = asyncio.get_running_loop().time() + CATCH_UP_WITHIN
        while True:
            status = (await service.get(f"/api/backtests/{job['id']}")).json()["status"]
            if status in ("completed", "failed"):
                break
            if asyncio.get_running_loop().time() > deadline:
                task = worker.consumer_task
                pytest.fail(
                    f"job still {status} {CATCH_UP_WITHIN:.0f}s after the broker came back: "
                    f"the worker never consumed (consumer task done: "
                    f"{task is not None and task.done()}, worker run done: {running.done()})"
                )
            await asyncio.sleep(0.5)
        assert status == "completed"
    finally:
        await worker.stop()
        try:
            await asyncio.wait_for(asyncio.shield(running), 30)
        except BaseException:
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
