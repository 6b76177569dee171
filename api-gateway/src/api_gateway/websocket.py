"""WebSocket pass-through to the notification service.

A client authenticates with a subprotocol ``bearer.<access token or API key>`` offered next to
the real one (``new WebSocket(url, ["algotrade.v1", "bearer." + token])``: browsers cannot set
headers on a WebSocket, and a subprotocol, unlike ``?token=``, stays out of access logs), an
``Authorization``/``X-API-Key`` header, ``?token=``, or, failing those, a first message
``{"type": "auth", "token": "..."}`` sent within ``websocket_auth_timeout_seconds``. The
credential subprotocol is never echoed back nor passed on. The gateway
then opens its own connection to the notification service with the internal token, and relays
messages both ways until either side closes; the close code travels across.

Refusals before the handshake completes are HTTP answers (problem+json where the server supports
WebSocket denial responses, else a plain 403); after it, close codes: 1008 (not authenticated or
not allowed), 1013 (upstream unavailable, try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlencode

import orjson
import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from algotrade import ws_close
from algotrade.auth import Principal
from algotrade.errors import AlgoTradeError, DependencyUnavailable, Forbidden, Unauthorized
from algotrade.logs import request_id_var
from algotrade.problems import problem_response
from api_gateway.breaker import CircuitOpen
from api_gateway.credentials import Authenticator
from api_gateway.errors import retry_after_header
from api_gateway.metrics import GatewayMetrics
from api_gateway.proxy import Upstream, rate_limit_subject
from api_gateway.ratelimit import RateLimiter
from api_gateway.routing import WEBSOCKET_RULE
from api_gateway.scopes import allows
from api_gateway.tokens import InternalTokens

logger = logging.getLogger(__name__)

_CREDENTIAL_PARAMS = ("token", "access_token", "api_key")
CREDENTIAL_SUBPROTOCOL = "bearer."


class WebSocketProxy:
    def __init__(
        self,
        *,
        upstream: Upstream,
        authenticator: Authenticator,
        limiter: RateLimiter,
        internal_tokens: InternalTokens,
        metrics: GatewayMetrics,
        auth_timeout: float,
        connect_timeout: float,
        send_timeout: float = 10.0,
    ) -> None:
        self._upstream = upstream
        self._authenticator = authenticator
        self._limiter = limiter
        self._internal_tokens = internal_tokens
        self._metrics = metrics
        self._auth_timeout = auth_timeout
        self._connect_timeout = connect_timeout
        self._send_timeout = send_timeout

    async def serve(self, client: WebSocket) -> None:
        credential = _credential_from_handshake(client)
        accepted = False
        try:
            if credential is not None:
                principal = await self._authorize(credential)
            else:
                await client.accept(subprotocol=_first(_offered(client)))
                accepted = True
                principal = await self._authorize(await self._first_message_credential(client))
            upstream = await self._connect(client, principal)
        except AlgoTradeError as exc:
            self._metrics.websocket_sessions.labels(exc.code).inc()
            await _refuse(client, exc, accepted=accepted)
            return
        except WebSocketDisconnect:
            return
        async with upstream:
            if not accepted:
                await client.accept(subprotocol=upstream.subprotocol)
            self._metrics.websocket_sessions.labels("relayed").inc()
            await _relay(client, upstream, self._send_timeout)

    async def _first_message_credential(self, client: WebSocket) -> str:
        try:
            message = await asyncio.wait_for(client.receive(), timeout=self._auth_timeout)
        except TimeoutError:
            raise Unauthorized(
                "no credentials: send {'type': 'auth', 'token': ...} first"
            ) from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            payload = orjson.loads(message.get("text") or message.get("bytes") or b"")
        except orjson.JSONDecodeError:
            payload = None
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or payload.get("type") != "auth" or not token:
            raise Unauthorized("the first message must be {'type': 'auth', 'token': ...}")
        return str(token)

    async def _authorize(self, credential: str) -> Principal:
        principal = await self._authenticator.authenticate_credential(credential)
        needed = WEBSOCKET_RULE.required_scope("GET")
        if not allows(principal.scopes, needed):
            raise Forbidden(f"this credential lacks the {needed!r} scope")
        await self._limiter.check("read", rate_limit_subject(principal))
        return principal

    async def _connect(self, client: WebSocket, principal: Principal) -> ClientConnection:
        breaker = self._upstream.breaker
        try:
            breaker.before_request()
        except CircuitOpen as exc:
            raise DependencyUnavailable(str(exc)) from None
        headers = [("Authorization", f"Bearer {self._internal_tokens.for_principal(principal)}")]
        if (request_id := request_id_var.get()) is not None:
            headers.append(("X-Request-ID", request_id))
        try:
            connection = await websockets.connect(
                _upstream_url(self._upstream, client),
                additional_headers=headers,
                subprotocols=_offered(client) or None,
                open_timeout=self._connect_timeout,
                proxy=None,
                max_size=None,  # the client side is bounded by the gateway's own server
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status >= 500:
                breaker.record_failure(rate_limit_subject(principal))
            else:
                breaker.record_success()
            raise DependencyUnavailable(
                f"{self._upstream.name} refused the WebSocket ({status})"
            ) from None
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            breaker.record_failure(rate_limit_subject(principal))
            raise DependencyUnavailable(
                f"{self._upstream.name} is unreachable: {type(exc).__name__}"
            ) from None
        breaker.record_success()
        return connection


def _offered(client: WebSocket) -> list[Any]:
    """The subprotocols the client offered, without the credential one."""
    offered = client.scope.get("subprotocols") or []
    return [p for p in offered if not str(p).startswith(CREDENTIAL_SUBPROTOCOL)]


def _credential_from_handshake(client: WebSocket) -> str | None:
    for offered in client.scope.get("subprotocols") or []:
        if str(offered).startswith(CREDENTIAL_SUBPROTOCOL) and len(offered) > len(
            CREDENTIAL_SUBPROTOCOL
        ):
            return str(offered)[len(CREDENTIAL_SUBPROTOCOL) :]
    for name in _CREDENTIAL_PARAMS:
        if value := client.query_params.get(name):
            return value
    authorization = client.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return client.headers.get("x-api-key") or None


def _upstream_url(upstream: Upstream, client: WebSocket) -> str:
    base = upstream.base_url
    scheme = "wss" if base.scheme == "https" else "ws"
    query = [(k, v) for k, v in client.query_params.multi_items() if k not in _CREDENTIAL_PARAMS]
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{scheme}://{base.netloc.decode()}{client.url.path}{suffix}"


def _first(values: Any) -> str | None:
    return values[0] if values else None


async def _refuse(client: WebSocket, exc: AlgoTradeError, *, accepted: bool) -> None:
    code = (
        ws_close.TRY_AGAIN_LATER
        if exc.status >= 500 or exc.status == 429
        else ws_close.POLICY_VIOLATION
    )
    if accepted:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await client.close(code=code, reason=exc.detail[:120])
        return
    if "websocket.http.response" in client.scope.get("extensions", {}):
        headers = None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers = {"Retry-After": retry_after_header(retry_after)}
        await client.send_denial_response(
            problem_response(exc.status, exc.title, exc.detail, code=exc.code, headers=headers)
        )
        return
    await client.close(code=code, reason=exc.detail[:120])


async def _relay(client: WebSocket, upstream: ClientConnection, send_timeout: float) -> None:
    """Copy messages both ways; when one side closes, close the other with the same code. A
    client that takes no message for ``send_timeout`` seconds is closed as too slow (a peer
    that stopped reading would otherwise hold this relay and its upstream socket)."""
    too_slow = False

    async def client_to_upstream() -> None:
        while True:
            message = await client.receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=_passable(message.get("code", 1000)))
                return
            if (text := message.get("text")) is not None:
                await upstream.send(text)
            elif (data := message.get("bytes")) is not None:
                await upstream.send(data)

    async def upstream_to_client() -> None:
        nonlocal too_slow
        try:
            async for message in upstream:
                send = client.send_text if isinstance(message, str) else client.send_bytes
                try:
                    async with asyncio.timeout(send_timeout):  # no task per message
                        await send(message)  # type: ignore[arg-type]
                except TimeoutError:
                    too_slow = True
                    return
        except ConnectionClosed:
            pass
        rcvd = upstream.close_code
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await client.close(
                code=_passable(rcvd or 1000), reason=(upstream.close_reason or "")[:120]
            )

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, ConnectionClosed, WebSocketDisconnect):
                pass
            except Exception as exc:  # one side broke; the session is over either way
                logger.info("websocket relay ended: %s: %s", type(exc).__name__, exc)
        if too_slow:
            with contextlib.suppress(Exception):
                await upstream.close(code=1001, reason="the client is too slow")
            # The close frame waits behind what the client has not read: bounded.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.close(code=ws_close.TOO_SLOW, reason="too slow: closed by the gateway"),
                    timeout=send_timeout,
                )


def _passable(code: int) -> int:
    """Close codes an endpoint may send (1005/1006/1015 are reserved for "none received")."""
    if code in (1005, 1006, 1015) or code < 1000:
        return 1000
    return code
