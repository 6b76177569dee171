"""Composition root of the analytics service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from analytics_service.api.routes import ROUTERS
from analytics_service.config import Settings
from analytics_service.models import SCHEMA

NAME = "analytics-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "kafka", "s3"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
