"""Platform conventions every service keeps, checked on the real apps."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
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


def unbounded_integers(openapi: dict[str, Any]) -> list[str]:
    """Every integer a client can send (path, query, header, body) that lacks a lower or an
    upper bound: such a value can overflow int64 in PostgreSQL and turn into a 500."""
    components = openapi.get("components", {}).get("schemas", {})
    found: list[str] = []

    def walk(schema: Any, where: str, seen: frozenset[str]) -> None:
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen and name in components:
                walk(components[name], f"{where}<{name}>", seen | {name})
            return
        if schema.get("type") == "integer":
            low = "minimum" in schema or "exclusiveMinimum" in schema
            high = "maximum" in schema or "exclusiveMaximum" in schema
            if not (low and high):
                found.append(where)
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for k, sub in enumerate(schema.get(key, [])):
                walk(sub, f"{where}.{key}[{k}]", seen)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}", seen)
        for key in ("items", "additionalProperties"):
            walk(schema.get(key), f"{where}[]", seen)

    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter.get('in')}:{parameter.get('name')}"
                walk(parameter.get("schema"), where, frozenset())
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                walk(body.get("schema"), f"{method.upper()} {path} body({media})", frozenset())
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_integer_input_has_explicit_bounds(package: str) -> None:
    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    openapi = main.create_app(config.Settings()).openapi()
    assert unbounded_integers(openapi) == []


class _Inner(BaseModel):
    n: int = Field(ge=0)


class _Body(BaseModel):
    bounded: int = Field(ge=0, le=10)
    inner: list[_Inner]


def test_the_integer_walk_finds_an_unbounded_query_and_body_field() -> None:
    """Guards the check above against passing vacuously."""
    from fastapi import FastAPI, Query

    app = FastAPI()

    @app.post("/x")
    async def post(body: _Body, offset: int = Query(0, ge=0)) -> None:
        return None

    assert unbounded_integers(app.openapi()) == [
        "POST /x query:offset",
        "POST /x body(application/json)<_Body>.inner[]<_Inner>.n",
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_service_openapi_document_is_valid_and_every_ref_resolves(package: str) -> None:
    from openapi_spec_validator import validate

    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    document = main.create_app(config.Settings()).openapi()
    validate(document)  # raises naming the first violation
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    refs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    schemas = document.get("components", {}).get("schemas", {})
    dangling = {
        ref
        for ref in refs
        if not (ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[-1] in schemas)
    }
    assert dangling == set()
