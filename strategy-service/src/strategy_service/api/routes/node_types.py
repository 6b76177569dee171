"""The node-type palette and the graph JSON Schema, for strategy editors."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from algotrade.strict_json import api_router
from strategy_service.api.deps import ReaderDep, ServicesDep
from strategy_service.schemas import NodeTypesPublic

router = api_router(prefix="/api/strategies", tags=["node types"])


@router.get(
    "/node-types",
    response_model=NodeTypesPublic,
    summary="Every node type: ports, params with ranges, warm-up and docs (ETag-cacheable)",
)
async def node_types(request: Request, principal: ReaderDep, services: ServicesDep) -> Response:
    return services.published.node_types.response(request)


@router.get(
    "/schema",
    summary="JSON Schema (draft 2020-12) of a strategy graph (ETag-cacheable)",
    responses={200: {"content": {"application/json": {}}}},
)
async def graph_schema(request: Request, principal: ReaderDep, services: ServicesDep) -> Response:
    return services.published.graph_schema.response(request)
