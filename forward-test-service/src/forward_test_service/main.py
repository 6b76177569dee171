"""Composition root of the forward-test service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from forward_test_service.api.routes import ROUTERS
from forward_test_service.config import Settings
from forward_test_service.models import SCHEMA

NAME = "forward-test-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
