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
