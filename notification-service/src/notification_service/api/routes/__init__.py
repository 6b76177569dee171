"""Routers of the notification service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
