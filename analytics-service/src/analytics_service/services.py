"""The analytics service's domain objects, built once in the lifespan (`main.create_app`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics_service.benchmarks import MarketBenchmarks
from analytics_service.config import Settings
from analytics_service.portfolios import Portfolios
from analytics_service.runs import RunStore


@dataclass(frozen=True)
class Analytics:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    runs: RunStore
    portfolios: Portfolios
    benchmarks: MarketBenchmarks
