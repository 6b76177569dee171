"""The routed requests' own lane: straight to the proxy, past FastAPI's router.

Every ``/api/<resource>/...`` request of the route table is forwarded, so matching it against
the gateway's routes, and the exception and exit-stack layers FastAPI wraps around its router,
are work for nothing on the hottest path. `ProxyLane` sits outermost among the app's middleware
and sends such requests through the *same* middleware the app has (CORS, the credential
header limit, request ids, body limits, metrics) to the proxy; the gateway's own routes
(``/api/auth``, ``/api/keys``, probes, ``/ws``) take the usual way.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Routed HTTP requests to the proxy through ``middleware``; the rest to the app."""

    def __init__(
        self, app: ASGIApp, *, middleware: list[Middleware], table: RouteTable, route_path: str
    ) -> None:
        self.app = app
        self._table = table
        self._route = _LaneRoute(route_path)
        lane: ASGIApp = self._forward
        for cls, args, kwargs in reversed(middleware):
            lane = cls(lane, *args, **kwargs)
        self._lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self._table.resolve(scope["path"]) is not None
            and not gateway_owned(scope["method"], scope["path"])
        ):
            await self._lane(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route
        gateway: Gateway = scope["app"].state.services
        try:
            await gateway.proxy.handle(scope, receive, send)
        except AlgoTradeError as exc:  # raised before the response started (see `Proxy`)
            await gateway_error_response(exc)(scope, receive, send)
