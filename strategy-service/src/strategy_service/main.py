"""Composition root of the strategy service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from strategy_service.api.routes import ROUTERS
from strategy_service.config import Settings
from strategy_service.models import SCHEMA

NAME = "strategy-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
