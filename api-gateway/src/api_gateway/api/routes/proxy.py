"""Routed traffic: every ``/api/<resource>/...`` path of the route table, and ``/ws``.

These routes are not in the gateway's own OpenAPI: the services describe them, and the merged
document at ``/openapi.json`` shows their descriptions (see `api_gateway.openapi`).
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.types import Receive, Scope, Send

from api_gateway.services import Gateway

ALL_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
PROXY_PATH = "/api/{path:path}"


class ProxyEndpoint:
    """Plain ASGI endpoint: no request object, no response object on the hot path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["app"].state.services
        await gateway.proxy.handle(scope, receive, send)


async def websocket_pass_through(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.services
    await gateway.websockets.serve(websocket)


router = APIRouter()
# An ASGI app as endpoint: Starlette calls it with (scope, receive, send).
router.add_route(
    PROXY_PATH,
    ProxyEndpoint(),  # type: ignore[arg-type]
    methods=ALL_METHODS,
    include_in_schema=False,
)
router.add_api_websocket_route("/ws", websocket_pass_through)
