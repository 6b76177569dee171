"""The routed requests' own lane: straight to the proxy, past FastAPI's layers and router.

Every ``/api/<resource>/...`` request of the route table is forwarded, so matching it against
the gateway's routes, and the layers FastAPI and Starlette wrap around every request (the
telemetry check, the error, body-limit, exception and exit-stack middleware), are work for
nothing on the hottest path. `GatewayApp` hands such requests to `ProxyLane` before any of
that: the lane sends them through the *same* middleware the app has (CORS, the credential
header limit, request ids, body limits, metrics) to the proxy; the gateway's own routes
(``/api/auth``, ``/api/keys``, probes, ``/ws``) and the lifespan take the usual way.

What the skipped layers would do on this path is done by the lane's middleware or needs no
doing: `PlatformMiddleware` answers any unexpected error with a problem (Starlette's
``ServerErrorMiddleware`` would only ever see an error of the CORS or header-limit layers, and
uvicorn answers those the same 500), the gateway sets no app-wide body limit and no
OpenTelemetry provider, and the proxy raises no ``HTTPException``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from algotrade.errors import AlgoTradeError
from api_gateway.errors import gateway_error_response
from api_gateway.routing import RouteTable, gateway_owned
from api_gateway.services import Gateway


@dataclass(frozen=True)
class _LaneRoute:
    """What the request metrics label a routed request with (the route it would match)."""

    path: str


class ProxyLane:
    """Routed HTTP requests of ``app``, through ``middleware``, to its proxy."""

    def __init__(
        self, app: FastAPI, *, middleware: list[Middleware], table: RouteTable, route_path: str
    ) -> None:
        self._app = app
        self._table = table
        self._route = _LaneRoute(route_path)
        lane: ASGIApp = self._forward
        for cls, args, kwargs in reversed(middleware):
            lane = cls(lane, *args, **kwargs)
        self._lane = lane

    def claims(self, scope: Scope) -> bool:
        """Whether the request is one the proxy forwards (not one the gateway answers)."""
        return (
            scope["type"] == "http"
            and self._table.resolve(scope["path"]) is not None
            and not gateway_owned(scope["method"], scope["path"])
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self._app  # as Starlette sets it, for anything that reads it
        await self._lane(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route
        gateway: Gateway = self._app.state.services
        try:
            await gateway.proxy.handle(scope, receive, send)
        except AlgoTradeError as exc:  # raised before the response started (see `Proxy`)
            await gateway_error_response(exc)(scope, receive, send)


class GatewayApp(FastAPI):
    """The gateway's FastAPI app, which gives the requests its `proxy_lane` claims to it."""

    proxy_lane: ProxyLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.proxy_lane
        if lane is not None and lane.claims(scope):
            if self.root_path:
                scope["root_path"] = self.root_path
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
