"""Platform conventions every service keeps, checked on the real apps."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from algotrade.strict_json import StrictJSONRoute

PACKAGES = [
    "api_gateway",
    "strategy_service",
    "market_data_service",
    "backtesting_service",
    "forward_test_service",
    "notification_service",
    "analytics_service",
]


def all_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (FastAPI nests them unflattened)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from all_routes(original.routes)
        else:
            yield route


def app_routes(package: str) -> list[BaseRoute]:
    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    return list(all_routes(main.create_app(config.Settings()).routes))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_route_with_a_body_parses_json_strictly(package: str) -> None:
    """NaN, Infinity, NUL and deep nesting must be a 400 on every endpoint, not a 500 later."""
    loose = [
        f"{sorted(route.methods)} {route.path}"
        for route in app_routes(package)
        if isinstance(route, APIRoute)
        and route.body_field is not None
        and not isinstance(route, StrictJSONRoute)
    ]
    assert not loose, f"build these routers with algotrade.strict_json.api_router: {loose}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_service_has_probes_and_metrics(package: str) -> None:
    paths = {getattr(r, "path", None) for r in app_routes(package)}
    assert {"/healthz", "/readyz", "/metrics"} <= paths


def test_the_route_walk_sees_a_loose_router() -> None:
    """Guards the check above against passing vacuously."""
    from fastapi import APIRouter, FastAPI
    from pydantic import BaseModel

    class Body(BaseModel):
        x: int

    loose = APIRouter()

    @loose.post("/loose")
    async def post(body: Body) -> None:
        return None

    outer = APIRouter()
    outer.include_router(loose)
    app = FastAPI()
    app.include_router(outer)
    found = [r for r in all_routes(app.routes) if isinstance(r, APIRoute) and r.path == "/loose"]
    assert len(found) == 1
    assert not isinstance(found[0], StrictJSONRoute)
