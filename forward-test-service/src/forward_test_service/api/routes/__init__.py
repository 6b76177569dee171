"""Routers of the forward-test service, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

from forward_test_service.api.routes import agents, sessions

ROUTERS: list[APIRouter] = [sessions.router, agents.router]
