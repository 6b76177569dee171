"""Composition root of the notification service: builds the app and its clients."""

from __future__ import annotations

from fastapi import FastAPI

from algotrade.service import create_service_app
from notification_service.api.routes import ROUTERS
from notification_service.config import Settings

NAME = "notification-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        name=NAME,
        settings=settings or Settings(),
        uses=("redis", "kafka"),
        schema=None,
        routers=ROUTERS,
    )
