"""Routers of the API gateway, one per resource; the proxy's catch-all comes last."""

from __future__ import annotations

from fastapi import APIRouter

from api_gateway.api.routes import agents, api_keys, auth, proxy

ROUTERS: list[APIRouter] = [auth.router, api_keys.router, agents.router, proxy.router]
