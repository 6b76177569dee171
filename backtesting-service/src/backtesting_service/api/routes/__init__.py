"""Routers of the backtesting service, one per resource (sweeps first: their paths are more
specific than ``/api/backtests/{job_id}``)."""

from __future__ import annotations

from fastapi import APIRouter

from backtesting_service.api.routes import backtests, sweeps

ROUTERS: list[APIRouter] = [sweeps.router, backtests.router]
