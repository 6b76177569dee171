"""Routers of the strategy service, one per resource.

The fixed paths (``/api/strategies/node-types``, ``/schema``, ``/templates``) come before the
strategies router, whose ``/api/strategies/{strategy_id}`` would otherwise capture them.
"""

from __future__ import annotations

from fastapi import APIRouter

from strategy_service.api.routes import node_types, strategies, templates

ROUTERS: list[APIRouter] = [node_types.router, templates.router, strategies.router]
