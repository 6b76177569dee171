"""A backtest worker process for the scale-out tests: the real `Worker` and consumer group,
configured from the environment like ``python -m backtesting_service worker``, with bars read
from the repository's CSV files instead of the market data service (not under test here).

``FETCH_DELAY_MS`` holds each bar fetch that long, as a remote fetch would, so that a chunk is
in flight long enough for a test to kill its worker in the middle of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from algotrade.engine import Bars
from algotrade.logs import configure_logging
from backtesting_service.bar_sources import CsvBarSource
from backtesting_service.config import Settings
from backtesting_service.worker import Worker

DATA = Path(__file__).resolve().parents[2] / "data"


class DelayedCsvBars:
    def __init__(self, delay_seconds: float) -> None:
        self._delay = delay_seconds
        self._csv = CsvBarSource(
            {("SPY", "1d"): DATA / "spy-1d.csv", ("BTC-USD", "4h"): DATA / "btc-usd-4h.csv"}
        )

    async def bars(self, *args: Any, **kwargs: Any) -> Bars:
        await asyncio.sleep(self._delay)
        return await self._csv.bars(*args, **kwargs)


def main() -> None:
    settings = Settings()
    configure_logging(os.environ.get("WORKER_NAME", "backtesting-worker"), "INFO")
    worker = Worker(
        settings,
        processes=1,
        bars=DelayedCsvBars(int(os.environ.get("FETCH_DELAY_MS", "0")) / 1000),
        consumer_options={"heartbeat_interval_ms": 200, "session_timeout_ms": 3000},
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
        await worker.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
