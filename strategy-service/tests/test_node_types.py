"""The node-type palette and the graph schema, served with ETags."""

from __future__ import annotations

import pytest
from strategy_testkit import Service

from algotrade.engine import NODE_TYPES, strategy_graph_json_schema


@pytest.fixture
def service(module_service: Service) -> Service:
    return module_service


async def test_node_types_serve_the_engine_registry(service: Service) -> None:
    response = await service.call("GET", "/api/strategies/node-types")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(NODE_TYPES) == len(body["data"])
    sma = next(t for t in body["data"] if t["type"] == "sma")
    assert sma["category"] == "indicator" and sma["doc"]
    assert sma["inputs"][0]["name"] == "in" and sma["outputs"][0]["type"] == "float"
    period = sma["params"][0]
    assert (period["name"], period["min"], period["max"]) == ("period", 2, 5000)

    etag = response.headers["etag"]
    assert "public" in response.headers["cache-control"]
    cached = await service.call(
        "GET", "/api/strategies/node-types", headers={"If-None-Match": f'W/{etag}, "x"'}
    )
    assert cached.status_code == 304 and cached.headers["etag"] == etag
    stale = await service.call(
        "GET", "/api/strategies/node-types", headers={"If-None-Match": '"other"'}
    )
    assert stale.status_code == 200


async def test_schema_publishes_the_graph_json_schema(service: Service) -> None:
    response = await service.call("GET", "/api/strategies/schema")
    assert response.status_code == 200
    assert response.json() == strategy_graph_json_schema()
    assert response.headers["etag"]
