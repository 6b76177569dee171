"""Routers of the market data service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

from market_data_service.api.routes import bars, imports, providers, replays, symbols, ticks

ROUTERS: list[APIRouter] = [
    bars.router,
    ticks.router,
    symbols.router,
    imports.router,
    replays.router,
    providers.router,
]
