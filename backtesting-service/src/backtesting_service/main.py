"""Composition root of the backtesting service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from backtesting_service.api.routes import ROUTERS
from backtesting_service.config import Settings
from backtesting_service.models import SCHEMA

NAME = "backtesting-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "kafka", "s3"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
