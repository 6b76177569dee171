"""`backtesting-service serve | migrate | worker`."""

from __future__ import annotations

import asyncio
import signal
from typing import cast

import typer

from algotrade.logs import configure_logging
from algotrade.service_cli import build_service_cli
from backtesting_service.config import Settings
from backtesting_service.main import NAME, create_app

app = build_service_cli(
    name=NAME,
    package="backtesting_service",
    schema="backtest",
    settings_factory=Settings,
    app_factory=lambda settings: create_app(cast(Settings, settings)),
)


@app.command()
def worker(
    processes: int | None = typer.Option(
        None, "--processes", min=1, help="process pool size (default: WORKER_PROCESSES, else CPUs)"
    ),
) -> None:
    """Consume backtest jobs (a member of the worker consumer group) until SIGTERM/SIGINT."""
    from backtesting_service.worker import Worker

    settings = Settings()
    configure_logging("backtesting-worker", settings.log_level)
    runner = Worker(settings, processes=processes)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(runner.stop()))
        await runner.run()

    asyncio.run(main())


if __name__ == "__main__":
    app()
