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

Most routed requests are *plain*: no body, no ``Origin`` (the SDK, agents, the CLI), no
credential header over its limit, no NUL in the URL. For those every one of the middleware
layers does one small thing: CORS adds ``Vary: Origin``, the header limit passes, and
`PlatformMiddleware` sets the request ids, adds ``X-Request-ID``, records the metrics and
answers an unexpected error. The lane does exactly those, in one layer with one send wrapper,
found with one pass over the headers (each layer costs a few microseconds on a cold cache, and
the gateway's budget per request is a few tens). Every other request takes the layers. Both
ways answer the same (`tests/test_proxy_lane.py` compares them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from algotrade.errors import AlgoTradeError
from algotrade.logs import correlation_id_var, request_id_var
from algotrade.middleware import PlatformMiddleware, answer_unexpected, log_unexpected
from api_gateway.cors import vary_on_origin
from api_gateway.errors import gateway_error_response
from api_gateway.header_limits import CREDENTIAL_HEADERS
from api_gateway.routing import RouteTable, gateway_owned
from api_gateway.services import Gateway

# A request with one of these takes the layers: a body (its limit), an Origin (CORS).
NOT_PLAIN = frozenset({b"content-length", b"transfer-encoding", b"origin"})


@dataclass(frozen=True)
class _LaneRoute:
    """What the request metrics label a routed request with (the route it would match)."""

    path: str


class ProxyLane:
    """Routed HTTP requests of ``app``, through ``middleware``, to its proxy: plain ones in one
    layer (``max_credential_bytes``: the credential header limit the middleware applies)."""

    def __init__(
        self,
        app: FastAPI,
        *,
        middleware: list[Middleware],
        table: RouteTable,
        route_path: str,
        max_credential_bytes: int,
    ) -> None:
        self._app = app
        self._table = table
        self._route = _LaneRoute(route_path)
        self._max_credential_bytes = max_credential_bytes
        lane: ASGIApp = self._forward
        platform: PlatformMiddleware | None = None
        for cls, args, kwargs in reversed(middleware):
            lane = cls(lane, *args, **kwargs)
            if isinstance(lane, PlatformMiddleware):
                platform = lane
        if platform is None:
            raise ValueError("the lane's middleware has no PlatformMiddleware")
        self._layered = lane
        self._platform = platform  # its request ids and metrics serve plain requests too

    @property
    def app(self) -> FastAPI:
        return self._app

    def claims(self, scope: Scope) -> bool:
        """Whether the request is one the proxy forwards (not one the gateway answers)."""
        return (
            scope["type"] == "http"
            and self._table.resolve(scope["path"]) is not None
            and not gateway_owned(scope["method"], scope["path"])
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self._app  # as Starlette sets it, for anything that reads it
        ids = self.plain_ids(scope)
        if ids is None:
            await self._layered(scope, receive, send)
        else:
            await self.answer_plain(scope, receive, send, *ids)

    async def layered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A claimed request through the middleware layers, plain or not."""
        scope["app"] = self._app
        await self._layered(scope, receive, send)

    def plain_ids(
        self, scope: Scope, not_plain: frozenset[bytes] = NOT_PLAIN
    ) -> tuple[bytes | None, bytes | None] | None:
        """The request and correlation ids a plain request gave (None each when it gave none);
        None when the request is not plain: it has a header in ``not_plain``, a credential
        header over the limit, or a NUL in its URL."""
        given_request_id = given_correlation_id = None
        for name, value in scope["headers"]:
            if name in not_plain:
                return None
            if name == b"x-request-id":
                given_request_id = value
            elif name == b"x-correlation-id":
                given_correlation_id = value
            elif len(value) > self._max_credential_bytes and name in CREDENTIAL_HEADERS:
                return None
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            return None
        return given_request_id, given_correlation_id

    async def answer_plain(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        given_request_id: bytes | None,
        given_correlation_id: bytes | None,
    ) -> None:
        """What the layers do for a plain request, in one."""
        started = time.perf_counter()
        request_id, correlation_id = self._platform.ids.of(given_request_id, given_correlation_id)
        rid_token = request_id_var.set(request_id)
        cid_token = correlation_id_var.set(correlation_id)
        tagged = (b"x-request-id", request_id.encode())
        status = 500
        response_started = False

        async def plain_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = vary_on_origin([*message.get("headers", ()), tagged])
            await send(message)

        try:
            await self._forward(scope, receive, plain_send)
        except Exception as exc:
            if response_started:
                log_unexpected(exc, scope)
                raise
            status = await answer_unexpected(exc, scope, plain_send)
        finally:
            self._platform.metrics.observe(self._route.path, scope["method"], status, started)
            request_id_var.reset(rid_token)
            correlation_id_var.reset(cid_token)

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
