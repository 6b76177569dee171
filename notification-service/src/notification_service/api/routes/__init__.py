"""Routers of the notification service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

from notification_service.api.routes import notifications, sockets

ROUTERS: list[APIRouter] = [notifications.router, sockets.router]
