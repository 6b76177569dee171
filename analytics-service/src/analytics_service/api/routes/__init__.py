"""Routers of the analytics service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
