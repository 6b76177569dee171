"""The importers of the four services that receive Beta1 rows, on the platform's databases.

Each service's settings come from the environment, as when the service runs (``DATABASE_URL``,
``S3_*``, ``MARKET_DATA_SERVICE_URL``, its signing key...). Against the embedded stack,
``apply_stack_env`` fills in what the environment lacks from the stack's state directory: its
``infra.env`` (written by ``make run``) and the forward-test service's key from ``keys.json``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from algotrade.db import build_engine, build_session_factory
from algotrade.keys import KEYS_FILE, load_or_create_installation_keys
from algotrade_devstack.beta1.migration import Targets
from algotrade_devstack.stack import read_infra_env


def apply_stack_env(state_dir: Path) -> None:
    """Fill the variables the environment lacks from the stack that ran from ``state_dir``."""
    for name, value in read_infra_env(state_dir).items():
        os.environ.setdefault(name, value)
    # Session imports read the market data service as the forward-test service does, with its
    # key (sessions are resolved against the series their owner reads).
    if "INTERNAL_JWT_PRIVATE_KEY" not in os.environ and (state_dir / KEYS_FILE).is_file():
        keys = load_or_create_installation_keys(state_dir)
        for name, value in keys.env("forward-test").items():
            os.environ.setdefault(name, value)


@asynccontextmanager
async def open_targets() -> AsyncIterator[Targets]:
    from algotrade.auth import InternalTokens
    from api_gateway.beta1 import UserImporter
    from api_gateway.config import Settings as GatewaySettings
    from backtesting_service.beta1 import BacktestImporter
    from backtesting_service.config import Settings as BacktestingSettings
    from forward_test_service.beta1 import SessionImporter
    from forward_test_service.config import Settings as ForwardSettings
    from forward_test_service.market import HttpMarketData
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
        forward = ForwardSettings()
        client = httpx.AsyncClient(timeout=forward.http_timeout_seconds)
        stack.push_async_callback(client.aclose)
        market = HttpMarketData(
            client,
            forward.market_data_service_url,
            InternalTokens(forward, ttl_seconds=forward.internal_token_ttl_seconds),
        )
        backtesting = BacktestingSettings()
        yield Targets(
            users=UserImporter(sessions(GatewaySettings())),
            strategies=StrategyImporter(sessions(StrategySettings())),
            sessions=SessionImporter(sessions(forward), market, max_bars=forward.warmup_max_bars),
            backtests=await stack.enter_async_context(
                BacktestImporter.open(backtesting, sessions(backtesting))
            ),
        )


async def _dispose(engines: dict[str, AsyncEngine]) -> None:
    for engine in engines.values():
        await engine.dispose()
