"""Routers of the analytics service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

from analytics_service.api.routes import analytics

ROUTERS: list[APIRouter] = [analytics.router]
