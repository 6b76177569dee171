"""One WebSocket client's conversation (the protocol is in ``docs/notifications.md``).

The gateway authenticates the client and connects with an internal token for it; this module
verifies that token, then serves the client's messages:

- ``{"type": "subscribe", "channel": ..., "resume_from": N?}`` answers ``subscribed`` and then,
  for a resource or market channel, a ``snapshot`` (its current state, ``snapshot: true``),
  or, with ``resume_from``, the buffered messages numbered after N (a ``gap`` first if some are
  gone); then the channel's events follow live, each with its number. A refusal is an
  ``error`` naming the channel (``invalid_channel``, ``forbidden``, ``not_found``,
  ``unavailable``, ``too_many_subscriptions``, ``rate_limited``); the socket stays open.
- ``{"type": "unsubscribe", "channel": ...}`` answers ``unsubscribed``.
- ``{"type": "ping"}`` answers ``pong`` with the server time.

Close codes: 1008 (no valid credential), 1013 (too many sockets here), 4000 (idle: nothing
subscribed and nothing sent for ``idle_seconds``), 4008 (too slow; see `SocketOutbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from algotrade import ws_close
from algotrade.auth import Principal
from algotrade.errors import AlgoTradeError
from notification_service.channels import Channel, parse_channel
from notification_service.families import Family, Mode
from notification_service.hub import Socket, Subscription, gap_frame
from notification_service.outbox import SlowSocket, SocketOutbox
from notification_service.sequencer import Replay
from notification_service.services import Notifications

logger = logging.getLogger(__name__)

MAX_RESUME = 2**53
CLOSE_WAIT = 10.0  # seconds a close may take to reach the peer before the socket is dropped


def frame(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def features_frame(modes: dict[Family, Mode]) -> str:
    return frame(type="features", features=modes)


def _error(code: str, detail: str, channel: object = None) -> str:
    return frame(type="error", code=code, detail=detail, channel=channel)


class Conversation:
    def __init__(self, websocket: WebSocket, services: Notifications, principal: Principal) -> None:
        self._ws = websocket
        self._services = services
        settings = services.settings
        self._settings = settings
        self.socket = Socket(
            principal,
            SocketOutbox(
                websocket.send_text,
                limit=settings.socket_queue,
                grace_seconds=settings.slow_grace_seconds,
            ),
        )
        self._last_heard = time.monotonic()
        self._tokens = float(settings.subscribe_burst)
        self._refilled = time.monotonic()

    async def run(self) -> None:
        """Serve the client until it leaves or fails; the socket is connected to the hub
        already (see `serve`) and is disconnected here."""
        hub = self._services.hub
        outbox = self.socket.outbox
        outbox.put(
            frame(
                type="welcome",
                user_id=self.socket.principal.user_id,
                features=self._services.features.modes,
                limits={
                    "max_subscriptions": self._settings.max_subscriptions,
                    "max_message_bytes": self._settings.max_message_bytes,
                    "idle_seconds": self._settings.idle_seconds,
                },
            )
        )
        sender = asyncio.create_task(outbox.run(), name="ws-sender")
        receiver = asyncio.create_task(self._receive(), name="ws-receiver")
        failed = asyncio.create_task(outbox.gone.wait(), name="ws-failed")
        tasks = (sender, receiver, failed)
        code, reason = 1000, ""
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if outbox.failed is not None:
                code, reason = ws_close.TOO_SLOW, outbox.failed
            for task in done - {failed}:
                exc = task.exception()
                if isinstance(exc, _Idle):
                    code, reason = ws_close.IDLE, str(exc)
                elif exc is not None and not isinstance(exc, (WebSocketDisconnect, SlowSocket)):
                    logger.info("socket ended: %r", exc)
        finally:
            hub.disconnect(self.socket)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            if self._ws.application_state == WebSocketState.CONNECTED:
                # A peer that reads nothing may never take the close frame: bounded wait.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._ws.close(code=code, reason=reason[:120]), timeout=CLOSE_WAIT
                    )

    async def _receive(self) -> None:
        idle = self._settings.idle_seconds
        while True:
            try:
                message = await asyncio.wait_for(self._ws.receive(), timeout=min(idle, 30.0))
            except TimeoutError:
                if not self.socket.subscriptions and time.monotonic() - self._last_heard >= idle:
                    raise _Idle(f"idle: nothing subscribed for {idle:.0f}s") from None
                continue
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            self._last_heard = time.monotonic()
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await self._handle(data)

    async def _handle(self, data: str | bytes) -> None:
        outbox = self.socket.outbox
        if len(data) > self._settings.max_message_bytes:
            outbox.put(
                _error(
                    "message_too_large",
                    f"messages are at most {self._settings.max_message_bytes} bytes",
                )
            )
            return
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            outbox.put(_error("invalid_message", "send JSON objects with a 'type'"))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe":
            await self._subscribe(message.get("channel"), message.get("resume_from"))
        elif kind == "unsubscribe":
            self._unsubscribe(message.get("channel"))
        elif kind == "ping":
            outbox.put(frame(type="pong", server_time_ms=int(time.time() * 1000)))
        else:
            outbox.put(
                _error("invalid_message", "type must be 'subscribe', 'unsubscribe' or 'ping'")
            )

    def _unsubscribe(self, raw: object) -> None:
        try:
            channel = parse_channel(raw)
        except AlgoTradeError as exc:
            self.socket.outbox.put(_error("invalid_channel", exc.detail, raw))
            return
        subscription = self.socket.subscriptions.get(channel.name)
        if subscription is not None:
            self._services.hub.unsubscribe(subscription)
        self.socket.outbox.put(frame(type="unsubscribed", channel=channel.name))

    async def _subscribe(self, raw: object, resume_from: object) -> None:
        outbox = self.socket.outbox
        try:
            channel = parse_channel(raw)
        except AlgoTradeError as exc:
            outbox.put(_error("invalid_channel", exc.detail, raw))
            return
        if resume_from is not None and (
            type(resume_from) is not int or not 0 <= resume_from < MAX_RESUME
        ):
            outbox.put(_error("invalid_message", "resume_from must be a non-negative integer", raw))
            return
        if not self._may_subscribe():
            rate = self._settings.subscribes_per_second
            outbox.put(
                _error("rate_limited", f"at most {rate:g} subscribes a second", channel.name)
            )
            return
        hub = self._services.hub
        if (old := self.socket.subscriptions.get(channel.name)) is not None:
            hub.unsubscribe(old)
        if len(self.socket.subscriptions) >= self._settings.max_subscriptions:
            outbox.put(
                _error(
                    "too_many_subscriptions",
                    f"at most {self._settings.max_subscriptions} channels per socket",
                    channel.name,
                )
            )
            return
        try:
            await self._open(channel, resume_from)
        except AlgoTradeError as exc:  # `_open` left nothing subscribed
            outbox.put(_error(_REFUSALS.get(exc.status, "unavailable"), exc.detail, channel.name))
        except Exception as exc:  # Redis away, an unreadable answer: this channel only
            logger.warning("subscribing to %s failed: %r", channel.name, exc)
            outbox.put(_error("unavailable", "cannot subscribe now; retry", channel.name))

    def _may_subscribe(self) -> bool:
        """One token of the socket's subscribe bucket (refilled at the configured rate)."""
        now = time.monotonic()
        settings = self._settings
        self._tokens = min(
            float(settings.subscribe_burst),
            self._tokens + (now - self._refilled) * settings.subscribes_per_second,
        )
        self._refilled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _open(self, channel: Channel, resume_from: int | None) -> Subscription:
        """Subscribe, held, then send ``subscribed`` and the snapshot or the replay, then go
        live: the live messages that came meanwhile follow in order, none twice."""
        services, hub, outbox = self._services, self._services.hub, self.socket.outbox
        principal = self.socket.principal
        snapshot = None
        if channel.kind == "market":
            # The stream depends on whose series the reads resolve to: read first.
            snapshot = await services.reader.read(principal, channel)
        stream = channel.stream(principal.user_id, snapshot.owner if snapshot else None)
        subscription = Subscription(self.socket, channel, stream)
        hub.subscribe(subscription)  # held: live messages wait until the snapshot is out
        try:
            last = await services.sequencer.last(stream)
            if snapshot is None:  # read after `last`: it reflects at least the events up to it
                snapshot = await services.reader.read(principal, channel)
            elif last:
                # Read before `last`: label it one earlier and send the newest bar after it.
                last -= 1
            outbox.put(frame(type="subscribed", channel=channel.name, seq=last))
            if resume_from is None and snapshot.data is not None:
                outbox.put(_snapshot(channel, last, snapshot.data))
            after = resume_from if resume_from is not None else last
            found = None
            if resume_from is not None or channel.kind == "market":
                found = await services.sequencer.replay(stream, after)
        except BaseException:
            hub.unsubscribe(subscription)
            raise
        self._go_live(subscription, after, found)
        return subscription

    def _go_live(self, subscription: Subscription, after: int, found: Replay | None) -> None:
        """Deliver from number ``after`` on: the buffered messages (``found``; a ``gap``
        first for those gone), then the live ones held meanwhile."""
        if found is None or after <= found.last:
            subscription.go_live(after)
        else:  # numbers this stream never gave (or gave before it expired): start over
            subscription.go_live(found.last)
            if found.last:
                self.socket.outbox.put(gap_frame(subscription.channel.name, 1, found.last))
        if found is not None:
            self._services.hub.apply(subscription, found)


_REFUSALS = {403: "forbidden", 404: "not_found", 401: "forbidden", 422: "invalid_channel"}


def _snapshot(channel: Channel, seq: int, data: dict[str, Any] | None) -> str:
    return frame(type="snapshot", snapshot=True, channel=channel.name, seq=seq, data=data)


class _Idle(Exception):
    pass


async def serve(websocket: WebSocket, services: Notifications) -> None:
    """The ``/ws`` endpoint: authenticate the gateway's internal token, then converse."""
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused("connect through the gateway's /ws with your credentials")
        principal = websocket.app.state.verifier.verify(token.strip())
        principal.require_scope("notifications:read")
    except (AlgoTradeError, _Refused) as exc:
        await websocket.close(
            code=ws_close.POLICY_VIOLATION, reason=str(getattr(exc, "detail", exc))[:120]
        )
        return
    if len(services.hub.sockets) >= services.settings.max_sockets:
        await websocket.close(
            code=ws_close.TRY_AGAIN_LATER, reason="too many connections here; retry"
        )
        return
    if services.hub.sockets_of(principal.user_id) >= services.settings.max_sockets_per_user:
        limit = services.settings.max_sockets_per_user
        await websocket.close(
            code=ws_close.POLICY_VIOLATION, reason=f"at most {limit} sockets per user"
        )
        return
    conversation = Conversation(websocket, services, principal)
    services.hub.connect(conversation.socket)  # counted from here: no await since the checks
    try:
        subprotocols = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=subprotocols[0] if subprotocols else None)
    except BaseException:
        services.hub.disconnect(conversation.socket)
        raise
    await conversation.run()


class _Refused(Exception):
    pass
