"""The importers of the four services that receive Beta1 rows, on the platform's databases.

Each service's settings come from the environment, as when the service runs (``DATABASE_URL``,
``S3_*``...). Where the environment does not name the infrastructure, the embedded stack's
``infra.env`` (written by ``make run`` in its state directory) does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from algotrade.db import build_engine, build_session_factory
from algotrade_devstack.beta1.migration import Targets


def apply_infra_env(infra: Mapping[str, str]) -> None:
    """Fill the infrastructure variables the environment lacks from ``infra``."""
    for name, value in infra.items():
        os.environ.setdefault(name, value)


@asynccontextmanager
async def open_targets() -> AsyncIterator[Targets]:
    from api_gateway.beta1 import UserImporter
    from api_gateway.config import Settings as GatewaySettings
    from backtesting_service.beta1 import BacktestImporter
    from backtesting_service.config import Settings as BacktestingSettings
    from forward_test_service.beta1 import SessionImporter
    from forward_test_service.config import Settings as ForwardSettings
    from strategy_service.beta1 import StrategyImporter
    from strategy_service.config import Settings as StrategySettings

    engines: dict[str, AsyncEngine] = {}

    def sessions(settings: Any) -> Any:
        url = settings.database_url.get_secret_value()
        if url not in engines:  # one pool per database, whichever services share it
            engines[url] = build_engine(url, pool_size=2)
        return build_session_factory(engines[url])

    async with AsyncExitStack() as stack:
        stack.push_async_callback(_dispose, engines)
        backtesting = BacktestingSettings()
        yield Targets(
            users=UserImporter(sessions(GatewaySettings())),
            strategies=StrategyImporter(sessions(StrategySettings())),
            sessions=SessionImporter(sessions(ForwardSettings())),
            backtests=await stack.enter_async_context(
                BacktestImporter.open(backtesting, sessions(backtesting))
            ),
        )


async def _dispose(engines: dict[str, AsyncEngine]) -> None:
    for engine in engines.values():
        await engine.dispose()
