"""A forward-test worker process for the scale-out test: the real `Worker` and consumer group,
configured from the environment like ``python -m forward_test_service worker``, with a short
session timeout so that the group notices a killed member within seconds."""

from __future__ import annotations

import asyncio
import os
import signal

from algotrade.logs import configure_logging
from forward_test_service.config import Settings
from forward_test_service.worker import Worker


def main() -> None:
    settings = Settings()
    configure_logging(os.environ.get("WORKER_NAME", "forward-test-worker"), "INFO")
    worker = Worker(
        settings, consumer_options={"heartbeat_interval_ms": 200, "session_timeout_ms": 3000}
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
        await worker.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
