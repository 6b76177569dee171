"""Fixtures: the service app on real PostgreSQL, Redis and Kafka."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import market_data_testkit

from market_data_testkit import Service, running

from algotrade.migrations import upgrade
from market_data_service.config import Settings


@pytest.fixture
async def migrated(database_url: str) -> str:
    await upgrade(database_url, "market_data_service", "market")
    return database_url


@pytest.fixture
def settings(
    make_settings: Callable[..., Any], migrated: str, tmp_path: Any, redis_client: Any
) -> Settings:
    """Settings on this test's database and key prefix (``redis_client`` deletes the keys
    under the prefix afterwards)."""
    return make_settings(Settings, import_spool_dir=tmp_path / "spool")


@pytest.fixture
def make_service(
    make_settings: Callable[..., Any], migrated: str, tmp_path: Any, redis_client: Any
) -> Callable[..., Any]:
    """Start the app with overridden settings; yields a `Service` as an async context."""

    def build(**overrides: Any) -> Any:
        candles = overrides.pop("_candles", None)  # a REST backfill hook for the provider
        overrides.setdefault("import_spool_dir", tmp_path / "spool")
        return running(make_settings(Settings, **overrides), candles)

    return build


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with running(settings, None) as svc:
        yield svc
