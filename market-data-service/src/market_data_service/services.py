"""The service's domain objects, built once in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.windows import SlidingWindows
from market_data_service.config import Settings
from market_data_service.imports import ImportRunner
from market_data_service.ingest import BarIngestor
from market_data_service.owners import SymbolDirectory
from market_data_service.providers.coinbase import CoinbaseProvider
from market_data_service.replay import ReplayManager
from market_data_service.resample import Resampler
from market_data_service.ticks import TickAggregator
from market_data_service.window_cache import WindowCache


@dataclass
class MarketServices:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    windows: SlidingWindows
    cache: WindowCache
    ingestor: BarIngestor
    resampler: Resampler
    imports: ImportRunner
    replays: ReplayManager
    directory: SymbolDirectory
    ticks: TickAggregator
    coinbase: CoinbaseProvider | None = None
