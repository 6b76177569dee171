"""Composition root of the market data service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from market_data_service.api.routes import ROUTERS
from market_data_service.config import Settings
from market_data_service.models import SCHEMA

NAME = "market-data-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
