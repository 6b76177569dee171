"""Composition root of the API gateway: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from api_gateway.api.routes import ROUTERS
from api_gateway.config import Settings
from api_gateway.models import SCHEMA

NAME = "api-gateway"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("postgres", "redis"),
        schema=SCHEMA,
        routers=ROUTERS,
    )
