"""Forwarding HTTP requests to services: authenticate, limit, swap credentials, stream.

The hot path is plain ASGI (no request/response objects): it reads the client's headers once,
authenticates, checks the route's scope and rate limit, then streams the request body to the
upstream and the upstream's body back, chunk by chunk, never holding a whole body in memory.

Requests go to each upstream's pool of keep-alive connections (`api_gateway.upstream_http`):
the header pairs uvicorn parsed (and so validated) are forwarded as they are, with no client
object, cookie jar or redirect machinery in between; one user's ``Set-Cookie`` can never ride
along on the next user's request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from algotrade.auth import Principal
from algotrade.errors import AlgoTradeError, BadRequest, Forbidden, NotFound
from algotrade.logs import correlation_id_var, request_id_var
from api_gateway.breaker import CircuitBreaker, CircuitOpen
from api_gateway.config import Settings
from api_gateway.credentials import Authenticator
from api_gateway.errors import BadGateway, GatewayTimeout, UpstreamUnavailable
from api_gateway.metrics import GatewayMetrics
from api_gateway.ratelimit import Decision, RateLimiter
from api_gateway.routing import RouteRule, RouteTable, has_dot_segments
from api_gateway.scopes import allows
from api_gateway.tokens import InternalTokens
from api_gateway.upstream_http import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Never forwarded from the client: its credentials (replaced by the internal token), identity
# claims it could forge, headers the gateway sets itself, and `expect` (uvicorn answered it).
_DROP_FROM_CLIENT = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"x-api-key",
    b"x-user-id",
    b"cookie",
    b"expect",
    b"x-request-id",
    b"x-correlation-id",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
}
# Never copied back from the upstream: the gateway's server adds its own.
_DROP_FROM_UPSTREAM = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_BACKOFF_SECONDS = 0.05


@dataclass
class Upstream:
    """One service behind the gateway: its connection pool and its circuit breaker."""

    name: str
    base_url: httpx.URL
    pool: UpstreamPool
    client: httpx.AsyncClient  # for the gateway's own calls (OpenAPI documents)
    breaker: CircuitBreaker

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.client.aclose()


def request_target(scope: Scope) -> bytes:
    """The request line's target upstream: the same path (as sent, still encoded) and query."""
    target: bytes = scope.get("raw_path") or scope["path"].encode()
    if query := scope.get("query_string"):
        target += b"?" + query
    return target


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    # One TLS context for all pools: building one loads the CA bundle, which takes a while.
    ssl_context = httpx.create_ssl_context()
    upstreams = {}
    for name, url in settings.upstream_urls().items():
        upstreams[name] = Upstream(
            name=name,
            base_url=httpx.URL(url.rstrip("/")),
            pool=UpstreamPool(
                url,
                max_connections=settings.upstream_max_connections_by_service.get(
                    name, settings.upstream_max_connections
                ),
                max_keepalive=settings.upstream_max_keepalive,
                keepalive_seconds=settings.upstream_keepalive_seconds,
                connect_timeout=settings.upstream_connect_timeout_seconds,
                ssl_context=ssl_context,
            ),
            client=httpx.AsyncClient(
                base_url=url,
                verify=ssl_context,
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=1),
            ),
            breaker=CircuitBreaker(
                name,
                failure_threshold=settings.breaker_failure_threshold,
                cooldown_seconds=settings.breaker_cooldown_seconds,
                min_callers=settings.breaker_min_callers,
            ),
        )
    return upstreams


def rate_limit_subject(principal: Principal) -> str:
    """Limits apply per API key for keys, per user for sessions."""
    if principal.api_key_id is not None:
        return f"k:{principal.api_key_id}"
    return f"u:{principal.user_id}"


def filter_client_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[bytes, bytes]], dict[bytes, bytes]]:
    """The client's headers worth forwarding, and the dropped ones the gateway reads."""
    named_in_connection: set[bytes] = set()
    kept: list[tuple[bytes, bytes]] = []
    dropped: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _DROP_FROM_CLIENT:
            dropped[name] = value
            if name == b"connection":
                named_in_connection.update(t.strip().lower() for t in value.split(b","))
        else:
            kept.append((name, value))
    if named_in_connection:
        kept = [(n, v) for n, v in kept if n not in named_in_connection]
    return kept, dropped


def filter_upstream_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """The upstream's response headers worth passing on (lowercased), and its Content-Length."""
    named_in_connection: set[bytes] = set()
    out = []
    length = None
    for name, value in raw:
        lowered = name.lower()
        if lowered == b"connection":
            named_in_connection.update(t.strip().lower() for t in value.split(b","))
        elif lowered == b"content-length" and value.isdigit():
            length = int(value)
        if lowered not in _DROP_FROM_UPSTREAM:
            out.append((lowered, value))
    if named_in_connection:
        out = [(n, v) for n, v in out if n not in named_in_connection]
    return out, length


class Proxy:
    """Forwards ``/api/<resource>/...`` requests to the service the route table names."""

    def __init__(
        self,
        *,
        settings: Settings,
        table: RouteTable,
        upstreams: dict[str, Upstream],
        authenticator: Authenticator,
        limiter: RateLimiter,
        internal_tokens: InternalTokens,
        metrics: GatewayMetrics,
    ) -> None:
        self._table = table
        self._upstreams = upstreams
        self._authenticator = authenticator
        self._limiter = limiter
        self._internal_tokens = internal_tokens
        self._metrics = metrics
        self._retries = settings.upstream_connect_retries
        # Read, write and pool timeouts, per route prefix (longest first).
        self._default_timeout = settings.upstream_timeout_seconds
        self._route_timeouts = sorted(
            settings.route_timeouts.items(), key=lambda item: -len(item[0])
        )

    def _timeout_for(self, path: str) -> float:
        for prefix, timeout in self._route_timeouts:
            if path.startswith(prefix):
                return timeout
        return self._default_timeout

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        rule = self._table.resolve(path)
        if rule is None:
            raise NotFound(f"no service answers {path}")
        if has_dot_segments(path):
            raise BadRequest("paths with '.' or '..' segments are not forwarded")
        headers, dropped = filter_client_headers(scope["headers"])
        authorization = dropped.get(b"authorization")
        api_key = dropped.get(b"x-api-key")
        principal = await self._authenticator.authenticate(
            authorization.decode("latin-1") if authorization else None,
            api_key.decode("latin-1") if api_key else None,
        )
        caller = rate_limit_subject(principal)
        decision = await self._limiter.check(rule.route_class(method), caller)
        try:
            await self._forward(
                scope, receive, send, rule, headers, dropped, principal, caller, decision
            )
        except AlgoTradeError as exc:
            # Every answer of a limited route says where its caller stands, errors included.
            exc.headers.update(decision.headers())
            raise

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rule: RouteRule,
        headers: list[tuple[bytes, bytes]],
        dropped: dict[bytes, bytes],
        principal: Principal,
        caller: str,
        decision: Decision,
    ) -> None:
        """Check the scope and the breaker, send the request, stream the answer back."""
        path: str = scope["path"]
        method: str = scope["method"]
        scope_needed = rule.required_scope(method)
        if not allows(principal.scopes, scope_needed):
            raise Forbidden(f"this credential lacks the {scope_needed!r} scope")
        upstream = self._upstreams[rule.upstream]
        try:
            upstream.breaker.before_request()
        except CircuitOpen as exc:
            raise UpstreamUnavailable(str(exc), retry_after=exc.retry_after) from None

        self._add_gateway_headers(headers, scope, dropped, principal)
        body = _RequestBody(receive) if _has_body(dropped, headers) else None
        try:
            response = await self._send(
                upstream, request_target(scope), headers, body, method, path, caller
            )
        except ClientDisconnect:
            return
        response_headers, length = filter_upstream_headers(response.headers)
        response_headers.extend(decision.raw_headers())
        await self._stream_back(upstream, response, response_headers, length, send, caller)

    def _add_gateway_headers(
        self,
        headers: list[tuple[bytes, bytes]],
        scope: Scope,
        dropped: dict[bytes, bytes],
        principal: Principal,
    ) -> None:
        token = self._internal_tokens.for_principal(principal)
        headers.append((b"authorization", b"Bearer " + token.encode()))
        if (request_id := request_id_var.get()) is not None:
            headers.append((b"x-request-id", request_id.encode()))
        if (correlation_id := correlation_id_var.get()) is not None:
            headers.append((b"x-correlation-id", correlation_id.encode()))
        if (client := scope.get("client")) is not None:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode()))
        if (host := dropped.get(b"host")) is not None:
            headers.append((b"x-forwarded-host", host))

    async def _send(
        self,
        upstream: Upstream,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: _RequestBody | None,
        method: str,
        path: str,
        caller: str,
    ) -> UpstreamResponse:
        idempotent = method in IDEMPOTENT_METHODS
        attempts = 1 + (self._retries if idempotent else 0)
        timeout = self._timeout_for(path)
        started = time.perf_counter()
        for attempt in range(attempts):
            try:
                response = await upstream.pool.request(
                    method, target, headers, body, wait_seconds=timeout, retry_stale=idempotent
                )
            except UpstreamConnectError as exc:
                # Nothing reached the service, so a retry cannot repeat an effect; a body that
                # started streaming cannot be replayed, though.
                if attempt + 1 < attempts and (body is None or not body.started):
                    await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
                    continue
                self._failed(upstream, "connect_error", caller)
                raise BadGateway(f"{upstream.name} refused the connection") from exc
            except UpstreamTimeout as exc:
                self._failed(upstream, "timeout", caller)
                raise GatewayTimeout(f"{upstream.name} did not answer in time") from exc
            except UpstreamError as exc:
                self._failed(upstream, "transport_error", caller)
                raise BadGateway(f"{upstream.name} failed: {exc}") from exc
            break
        status = response.status
        self._metrics.upstream.observe((upstream.name,), str(status), time.perf_counter() - started)
        if status >= 500:
            upstream.breaker.record_failure(caller)
        else:  # a 4xx is the caller's error, not the service's: it never counts against it
            upstream.breaker.record_success()
        return response

    def _failed(self, upstream: Upstream, outcome: str, caller: str) -> None:
        upstream.breaker.record_failure(caller)
        self._metrics.upstream.count((upstream.name,), outcome)

    async def _stream_back(
        self,
        upstream: Upstream,
        response: UpstreamResponse,
        headers: list[tuple[bytes, bytes]],
        length: int | None,
        send: Send,
        caller: str,
    ) -> None:
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        if (whole := response.rest_if_complete()) is not None:  # all of it is here already
            response.close()
            await send(start)
            await send({"type": "http.response.body", "body": whole, "more_body": False})
            return
        await send(start)
        # With a Content-Length, the chunk that completes the body goes out as the last message
        # (one send fewer per response); the stream then ends without waiting on the network.
        remaining = length
        last = b""
        try:
            async for chunk in response.chunks():
                if remaining is not None:
                    remaining -= len(chunk)
                    if remaining <= 0:
                        last = chunk
                        continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            # The status line is out; all that is left is to cut the connection short, which
            # tells the client the body is incomplete.
            upstream.breaker.record_failure(caller)
            logger.warning("%s broke off its response: %s", upstream.name, exc)
            return
        finally:
            response.close()
        await send({"type": "http.response.body", "body": last, "more_body": False})


def _has_body(dropped: dict[bytes, bytes], kept: list[tuple[bytes, bytes]]) -> bool:
    if b"transfer-encoding" in dropped:
        return True
    for name, value in kept:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


class _RequestBody:
    """The client's request body as an async stream for the upstream, read as it arrives."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.started = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
