"""Request bodies parsed as strict JSON (RFC 8259) with orjson, for every service's routes.

The standard-library parser FastAPI uses accepts ``NaN``/``Infinity`` literals (PostgreSQL's
JSONB refuses them, and they poison arithmetic) and fails on deep nesting only when the
interpreter runs out of stack. orjson refuses both (nesting deeper than 1024 levels is a decode
error). NUL characters are refused too, since PostgreSQL cannot store them in text. The error
subclasses `json.JSONDecodeError`, so FastAPI answers each such body with the usual
malformed-JSON 400 problem.

Services build their routers with `api_router` so every route parses this way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if b"\\u0000" in body or b"\x00" in body:
                raise orjson.JSONDecodeError("NUL characters are not accepted", "", 0)
            self._json = orjson.loads(body)
        return self._json


class StrictJSONRoute(APIRoute):
    """An `APIRoute` whose handler reads JSON bodies with `StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def api_router(**kwargs: Any) -> APIRouter:
    """An `APIRouter` whose routes parse JSON strictly (use it instead of ``APIRouter``)."""
    return APIRouter(route_class=StrictJSONRoute, **kwargs)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema with its ``$defs`` inlined, for an ``openapi_extra`` request
    body: FastAPI copies such a schema as is, so a ``#/$defs/...`` reference in it would not
    resolve in the service's OpenAPI document."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen:
                    raise ValueError(f"{model.__name__} is recursive through {name}")
                return inline(
                    {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}, seen | {name}
                )
            return {key: inline(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema, frozenset())
    return inlined
