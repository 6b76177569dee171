"""Fixtures: the strategy service on real PostgreSQL, Redis and Kafka."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import strategy_testkit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from strategy_testkit import Service, running

from algotrade.db import asyncpg_url, build_engine
from algotrade.migrations import upgrade
from algotrade_testkit.plugin import unique
from algotrade_testkit.services import key_settings
from strategy_service.config import Settings


@pytest.fixture
async def migrated(database_url: str) -> str:
    await upgrade(database_url, "strategy_service", "strategy")
    return database_url


@pytest.fixture
def settings(make_settings: Callable[..., Any], migrated: str) -> Settings:
    return make_settings(Settings)


@pytest.fixture
def make_service(make_settings: Callable[..., Any], migrated: str) -> Callable[..., Any]:
    """Start the app with overridden settings, as an async context yielding a `Service`."""

    def build(**overrides: Any) -> Any:
        return running(make_settings(Settings, **overrides))

    return build


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """A service on a fresh database: for tests that count rows or read every event."""
    async with running(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
async def module_service(
    postgres_admin_url: str, redis_url: str, kafka_bootstrap: str
) -> AsyncIterator[Service]:
    """One service for a whole module, on its own database (starting one costs ~1 s).

    For tests that only look at what they created themselves; tests that need an empty
    database or every event on a topic use `service`.
    """
    name = unique("t_")
    admin = build_engine(postgres_admin_url, pool_size=1).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(asyncpg_url(postgres_admin_url)).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    try:
        await upgrade(database_url, "strategy_service", "strategy")
        settings = Settings(
            environment="test",
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=unique("t:") + ":",
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=unique("t") + ".",
            outbox_poll_seconds=0.05,
            **key_settings(),
        )
        async with running(settings) as svc:
            yield svc
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
