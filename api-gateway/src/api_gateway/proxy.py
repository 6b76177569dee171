"""Forwarding HTTP requests to services: authenticate, limit, swap credentials, stream.

The hot path is plain ASGI (no request/response objects): it reads the client's headers once,
authenticates, checks the route's scope and rate limit, then streams the request body to the
upstream and the upstream's body back, chunk by chunk, never holding a whole body in memory.

Requests go straight to each upstream's pooled httpx transport. Going through
``AsyncClient.send`` would add redirect and auth machinery the gateway does not want and, worse,
a shared cookie jar: one user's ``Set-Cookie`` would ride along on the next user's request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

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
_URL_CACHE_MAX = 4096


class ShardedTransport(httpx.AsyncBaseTransport):
    """httpx's pooled transport, split into small pools; each request takes the least busy.

    httpcore 1.0's pool does work proportional to its connections times its queued requests on
    every request (and polls every idle socket); at 32 concurrent requests on one pool that
    costs more CPU than the rest of the gateway together. Pools of a few connections keep it
    small, and choosing the pool with the fewest requests in flight keeps them evenly used.
    """

    def __init__(
        self, *, limits: httpx.Limits, connections_per_shard: int, ssl_context: ssl.SSLContext
    ) -> None:
        total = limits.max_connections or connections_per_shard
        count = max(1, -(-total // connections_per_shard))
        keepalive = limits.max_keepalive_connections or total
        shard_limits = httpx.Limits(
            max_connections=-(-total // count),
            max_keepalive_connections=max(1, -(-keepalive // count)),
            keepalive_expiry=limits.keepalive_expiry,
        )
        self._shards = [
            httpx.AsyncHTTPTransport(limits=shard_limits, retries=0, verify=ssl_context)
            for _ in range(count)
        ]
        self._in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._in_flight.index(min(self._in_flight))
        self._in_flight[index] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[index] -= 1

        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        response.stream = _ReleasingStream(response.stream, release)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


@dataclass
class Upstream:
    """One service behind the gateway: its pooled connections and its circuit breaker."""

    name: str
    base_url: httpx.URL
    transport: httpx.AsyncBaseTransport
    client: httpx.AsyncClient  # for the gateway's own calls (OpenAPI documents)
    breaker: CircuitBreaker
    _urls: dict[bytes, httpx.URL] = field(default_factory=dict)

    def url_for(self, scope: Scope) -> httpx.URL:
        """The upstream URL of a request: same path (as sent, still encoded) and query.

        Parsed URLs are remembered: clients poll the same few URLs over and over, and parsing
        one is a noticeable share of the gateway's own work per request.
        """
        target = scope.get("raw_path") or scope["path"].encode()
        if query := scope.get("query_string"):
            target += b"?" + query
        url = self._urls.get(target)
        if url is None:
            url = self.base_url.copy_with(raw_path=target)
            if len(self._urls) >= _URL_CACHE_MAX:
                self._urls.clear()
            self._urls[target] = url
        return url

    async def aclose(self) -> None:
        await self.client.aclose()


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_keepalive,
        keepalive_expiry=settings.upstream_keepalive_seconds,
    )
    # One TLS context for all pools: building one loads the CA bundle, which takes a while.
    ssl_context = httpx.create_ssl_context()
    upstreams = {}
    for name, url in settings.upstream_urls().items():
        transport = ShardedTransport(
            limits=limits,
            connections_per_shard=settings.upstream_connections_per_shard,
            ssl_context=ssl_context,
        )
        upstreams[name] = Upstream(
            name=name,
            base_url=httpx.URL(url.rstrip("/")),
            transport=transport,
            client=httpx.AsyncClient(transport=transport, base_url=url),
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


def filter_upstream_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named_in_connection: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named_in_connection.update(t.strip().lower() for t in value.split(b","))
    out = []
    for name, value in raw:
        lowered = name.lower()
        if lowered not in _DROP_FROM_UPSTREAM and lowered not in named_in_connection:
            out.append((lowered, value))
    return out


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
        self._connect_timeout = settings.upstream_connect_timeout_seconds
        self._default_timeout = self._timeout(settings.upstream_timeout_seconds)
        self._route_timeouts = sorted(
            (
                (prefix, self._timeout(seconds))
                for prefix, seconds in settings.route_timeouts.items()
            ),
            key=lambda item: -len(item[0]),
        )

    def _timeout(self, seconds: float) -> dict[str, float]:
        return {
            "connect": self._connect_timeout,
            "read": seconds,
            "write": seconds,
            "pool": seconds,
        }

    def _timeout_for(self, path: str) -> dict[str, float]:
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
        decision = await self._limiter.check(
            rule.route_class(method), rate_limit_subject(principal)
        )
        try:
            await self._forward(scope, receive, send, rule, headers, dropped, principal, decision)
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
        request = httpx.Request(
            method,
            upstream.url_for(scope),
            headers=headers,
            content=body,
            extensions={"timeout": self._timeout_for(path)},
        )
        caller = rate_limit_subject(principal)
        try:
            response = await self._send(upstream, request, body, method, caller)
        except ClientDisconnect:
            return
        response_headers = filter_upstream_headers(response.headers.raw)
        response_headers.extend(decision.raw_headers())
        await self._stream_back(upstream, response, response_headers, send, caller)

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
        request: httpx.Request,
        body: _RequestBody | None,
        method: str,
        caller: str,
    ) -> httpx.Response:
        attempts = 1 + (self._retries if method in IDEMPOTENT_METHODS else 0)
        started = time.perf_counter()
        for attempt in range(attempts):
            try:
                response = await upstream.transport.handle_async_request(request)
            except httpx.ConnectError as exc:
                # Nothing reached the service, so a retry cannot repeat an effect; a body that
                # started streaming cannot be replayed, though.
                if attempt + 1 < attempts and (body is None or not body.started):
                    await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
                    continue
                self._failed(upstream, "connect_error", caller)
                raise BadGateway(f"{upstream.name} refused the connection") from exc
            except httpx.TimeoutException as exc:
                self._failed(upstream, "timeout", caller)
                raise GatewayTimeout(f"{upstream.name} did not answer in time") from exc
            except httpx.TransportError as exc:
                self._failed(upstream, "transport_error", caller)
                raise BadGateway(f"{upstream.name} failed: {type(exc).__name__}") from exc
            break
        self._metrics.upstream_latency.labels(upstream.name).observe(time.perf_counter() - started)
        status = response.status_code
        self._metrics.upstream_requests.labels(upstream.name, str(status)).inc()
        if status >= 500:
            upstream.breaker.record_failure(caller)
        else:  # a 4xx is the caller's error, not the service's: it never counts against it
            upstream.breaker.record_success()
        return response

    def _failed(self, upstream: Upstream, outcome: str, caller: str) -> None:
        upstream.breaker.record_failure(caller)
        self._metrics.upstream_requests.labels(upstream.name, outcome).inc()

    async def _stream_back(
        self,
        upstream: Upstream,
        response: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        caller: str,
    ) -> None:
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        # With a Content-Length, the chunk that completes the body goes out as the last message
        # (one send fewer per response); the stream then ends without waiting on the network.
        length = response.headers.get("content-length")
        remaining = int(length) if length is not None and length.isdigit() else None
        last = b""
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                if not chunk:
                    continue
                if remaining is not None:
                    remaining -= len(chunk)
                    if remaining <= 0:
                        last = chunk
                        continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as exc:
            # The status line is out; all that is left is to cut the connection short, which
            # tells the client the body is incomplete.
            upstream.breaker.record_failure(caller)
            logger.warning("%s broke off its response: %s", upstream.name, exc)
            return
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": last, "more_body": False})


def _has_body(dropped: dict[bytes, bytes], kept: list[tuple[bytes, bytes]]) -> bool:
    if b"transfer-encoding" in dropped:
        return True
    for name, value in kept:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


class _RequestBody:
    """The client's request body as an async stream for httpx, read as it arrives."""

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
