"""Live events over the gateway's WebSocket ``/ws`` (the ``live`` extra: ``websockets``).

The protocol (docs/notifications.md): the credential travels in the ``bearer.<token>``
subprotocol next to ``algotrade.v1``; the server says ``welcome``; each
``{"type": "subscribe", "channel": ...}`` is answered by ``subscribed``, a ``snapshot`` and
then the channel's ``event`` messages, each numbered (``seq``) per channel.

`Subscription` is the protocol's state without I/O: the frames to send on each connection,
the last number seen per channel, and what a close means. A dropped connection (an abnormal
close, a restart, 4008 for a slow reader, 1013) is reopened after a backoff and every channel
resumed from the last number seen (``resume_from``), so nothing is missed; a channel whose
missed messages are no longer kept gets a ``gap`` message first; a reconnection the gateway
refuses with a 429 or a 5xx is tried again the same way. A normal close ends the iteration;
1008 (credentials refused) raises `Unauthorized`, and a refused handshake its `ApiError`.
`follow` and `afollow` are the blocking and the asyncio loops around it: every message is
yielded, ``welcome`` and ``subscribed`` included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from algotrade_client.calls import JSON
from algotrade_client.credentials import Credentials
from algotrade_client.errors import ApiError, TransportError, Unauthorized, build_error

PROTOCOL = "algotrade.v1"
CREDENTIAL_PREFIX = "bearer."
EXTRA = "pip install 'algotrade-sdk[live]'"
NORMAL_CLOSES = (1000, 4000)  # closed on purpose, or idle: the subscription is over
POLICY_VIOLATION = 1008
ABNORMAL = 1006
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
NUMBERED = ("snapshot", "event")


def websocket_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.copy_with(scheme=scheme, path=url.path.rstrip("/") + "/ws", query=None))


class _Redact(logging.Filter):
    """Hides the credential subprotocol in the websockets library's debug log of headers."""

    pattern = re.compile(r"bearer\.[^\s,]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.pattern.sub("bearer.***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def websocket_logger() -> logging.Logger:
    logger = logging.getLogger("algotrade_client.websocket")
    if not any(isinstance(f, _Redact) for f in logger.filters):
        logger.addFilter(_Redact())
    return logger


class Subscription:
    """The channels of one subscription, the last number seen on each, and the reconnect
    policy (``attempts`` failed connections in a row, backoff from 0.5 s doubling to 30 s)."""

    def __init__(
        self,
        channels: Sequence[str],
        resume: Mapping[str, int] | None = None,
        *,
        attempts: int = 8,
    ) -> None:
        if not channels:
            raise ValueError("subscribe to at least one channel")
        self.channels = list(dict.fromkeys(channels))
        self.last_seen: dict[str, int] = dict(resume or {})
        self.attempts = attempts
        self.failures = 0
        self.connected_once = False

    def subprotocols(self, credential: str | None) -> list[str]:
        return [PROTOCOL] + ([CREDENTIAL_PREFIX + credential] if credential else [])

    def opening(self) -> list[str]:
        """The frames to send on a new connection: one subscribe per channel, resumed after
        the last number seen where there is one."""
        frames = []
        for channel in self.channels:
            frame: JSON = {"type": "subscribe", "channel": channel}
            if channel in self.last_seen:
                frame["resume_from"] = self.last_seen[channel]
            frames.append(json.dumps(frame))
        return frames

    def connected(self) -> None:
        self.connected_once = True

    def receive(self, raw: str | bytes) -> JSON:
        message = json.loads(raw)
        if not isinstance(message, dict):
            raise TransportError(f"unexpected WebSocket message: {str(raw)[:200]}")
        self.failures = 0
        channel = message.get("channel")
        if isinstance(channel, str):
            if message.get("type") in NUMBERED and isinstance(message.get("seq"), int):
                self.last_seen[channel] = max(self.last_seen.get(channel, 0), message["seq"])
            elif message.get("type") == "gap" and isinstance(message.get("to"), int):
                self.last_seen[channel] = max(self.last_seen.get(channel, 0), message["to"])
        return message

    def closed(self, code: int, reason: str) -> float | None:
        """After the connection closed with ``code``: None to end, else the seconds to wait
        before reconnecting. 1008 raises `Unauthorized`."""
        if code in NORMAL_CLOSES:
            return None
        if code == POLICY_VIOLATION:
            raise Unauthorized(
                {"title": "WebSocket refused", "status": 401, "detail": reason, "code": "ws_1008"},
                path="/ws",
            )
        return self._backoff(f"closed with {code} {reason}".strip())

    def refused(self, error: ApiError) -> float:
        """After the gateway refused a connection: the seconds before the next try, when
        resuming through a 429 or a 5xx (a service restarting); else ``error`` is raised."""
        if self.connected_once and (error.status == 429 or error.status >= 500):
            return self._backoff(str(error))
        raise error

    def failed_to_connect(self, why: str) -> float:
        """After a connection attempt failed: the seconds before the next one, or
        `TransportError` (the first connection, or too many failures in a row)."""
        if not self.connected_once:
            raise TransportError(f"WebSocket /ws: {why}")
        return self._backoff(why)

    def _backoff(self, why: str) -> float:
        self.failures += 1
        if self.failures > self.attempts:
            raise TransportError(f"WebSocket /ws: gave up after {self.attempts} attempts: {why}")
        delay = min(30.0, 0.5 * 2.0 ** (self.failures - 1))
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


def _refused(exc: Any) -> ApiError:
    """The problem of a handshake the gateway refused (websockets' InvalidStatus)."""
    response = exc.response
    return build_error(
        response.status_code,
        bytes(response.body or b""),
        dict(response.headers.raw_items()),
        method="GET",
        path="/ws",
        reason=response.reason_phrase,
    )


def _close_code(exc: Any) -> tuple[int, str]:
    frame = exc.rcvd
    return (frame.code, frame.reason) if frame is not None else (ABNORMAL, "connection lost")


def follow(
    url: str,
    credentials: Credentials,
    refresh: Callable[[], object],
    state: Subscription,
    *,
    open_timeout: float,
) -> Iterator[JSON]:
    """The messages of ``state``'s channels, over blocking connections."""
    try:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect
        from websockets.typing import Subprotocol
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"subscribe needs websockets: {EXTRA}") from exc
    refreshed = False
    while True:
        offered = state.subprotocols(credentials.websocket_credential())
        try:
            ws = connect(
                url,
                subprotocols=[Subprotocol(p) for p in offered],
                open_timeout=open_timeout,
                max_size=MAX_MESSAGE_BYTES,
                logger=websocket_logger(),
                proxy=None,
            )
        except InvalidStatus as exc:
            error = _refused(exc)
            if error.status == 401 and credentials.refresh_token and not refreshed:
                refresh()
                refreshed = True
                continue
            time.sleep(state.refused(error))
            continue
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            time.sleep(state.failed_to_connect(f"{type(exc).__name__}: {exc}"))
            continue
        state.connected()
        refreshed = False
        with ws:
            try:
                for frame in state.opening():
                    ws.send(frame)
                for raw in ws:
                    try:
                        yield state.receive(raw)
                    except GeneratorExit:  # the caller is done: a normal close, not 1011
                        ws.close()
                        raise
                code, reason = ws.close_code or 1000, ws.close_reason or ""
            except ConnectionClosed as exc:
                code, reason = _close_code(exc)
        delay = state.closed(code, reason)
        if delay is None:
            return
        time.sleep(delay)


async def afollow(
    url: str,
    credentials: Credentials,
    refresh: Callable[[], Awaitable[object]],
    state: Subscription,
    *,
    open_timeout: float,
) -> AsyncIterator[JSON]:
    """The messages of ``state``'s channels, on the event loop."""
    try:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
        from websockets.typing import Subprotocol
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"subscribe needs websockets: {EXTRA}") from exc
    refreshed = False
    while True:
        offered = state.subprotocols(credentials.websocket_credential())
        try:
            ws = await connect(
                url,
                subprotocols=[Subprotocol(p) for p in offered],
                open_timeout=open_timeout,
                max_size=MAX_MESSAGE_BYTES,
                logger=websocket_logger(),
                proxy=None,
            )
        except InvalidStatus as exc:
            error = _refused(exc)
            if error.status == 401 and credentials.refresh_token and not refreshed:
                await refresh()
                refreshed = True
                continue
            await asyncio.sleep(state.refused(error))
            continue
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            await asyncio.sleep(state.failed_to_connect(f"{type(exc).__name__}: {exc}"))
            continue
        state.connected()
        refreshed = False
        async with ws:
            try:
                for frame in state.opening():
                    await ws.send(frame)
                async for raw in ws:
                    try:
                        yield state.receive(raw)
                    except GeneratorExit:  # the caller is done: a normal close, not 1011
                        await ws.close()
                        raise
                code, reason = ws.close_code or 1000, ws.close_reason or ""
            except ConnectionClosed as exc:
                code, reason = _close_code(exc)
        delay = state.closed(code, reason)
        if delay is None:
            return
        await asyncio.sleep(delay)
