"""`forward-test-service serve | migrate | worker`."""

from __future__ import annotations

import asyncio
import signal
from typing import cast

from algotrade.logs import configure_logging
from algotrade.service_cli import build_service_cli
from forward_test_service.config import Settings
from forward_test_service.main import NAME, create_app

app = build_service_cli(
    name=NAME,
    package="forward_test_service",
    schema="forward",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
)


@app.command()
def worker() -> None:
    """Apply live bars to running sessions (a member of the worker consumer group on
    market.bars.v1) until SIGTERM/SIGINT."""
    from forward_test_service.worker import Worker

    settings = Settings()
    configure_logging("forward-test-worker", settings.log_level)
    runner = Worker(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(runner.stop()))
        await runner.run()

    asyncio.run(main())


if __name__ == "__main__":
    app()
