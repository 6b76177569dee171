"""The heartbeat's own lane: ``POST /api/agents/{agent_id}/heartbeat`` past FastAPI's layers.

Every terminal beats every few seconds, which makes the heartbeat the service's most frequent
request, and its work is one pipelined Redis script (`Connections.beat`): FastAPI's layers,
router, dependency solving and response validation cost it more than that. `ForwardTestApp`
hands a heartbeat to `HeartbeatLane` when it is the plain case, decided before anything is done:
a small body (its length declared) of JSON that `Heartbeat` validates, a bearer token that
verifies and holds ``agents:write``, the app started. The lane runs it through the app's own
middleware (request ids, body limits, metrics) to `AgentDesk.heartbeat`, as the route does, and
answers a `HeartbeatAnswer`. Anything else takes the usual way with its body replayed, so that
every problem (400, 401, 403, 422) is the documented route's own (``api/routes/agents.py``,
which also describes the request in the OpenAPI document).

What the skipped layers would do on this path is done here or needs no doing: the desk's errors
are answered as the app's handler answers them (`error_response`), `PlatformMiddleware` answers
any unexpected one (an outage: 503), and the service sets no app-wide body limit and no
OpenTelemetry provider. (The gateway's `proxy_lane` is the same idea for its routed requests.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from algotrade.auth import Principal, TokenVerifier, bearer_token
from algotrade.errors import AlgoTradeError
from algotrade.events import ULID_PATTERN
from algotrade.problems import error_response
from forward_test_service.agents.schemas import Heartbeat, HeartbeatAnswer
from forward_test_service.services import SessionServices

ROUTE_PATH = "/api/agents/{agent_id}/heartbeat"
BODY_MAX_BYTES = 4096
"""A heartbeat is a few hundred bytes; a larger one (or one of undeclared length) takes the
usual way, where the body limits apply while it streams in."""

_PATH = re.compile("/api/agents/(" + ULID_PATTERN.strip("^$") + ")/heartbeat")
_BEAT = "algotrade.heartbeat"  # scope key: what the lane decided on, for its handler


@dataclass(frozen=True)
class _LaneRoute:
    """What the request metrics label a heartbeat with (the route it would match)."""

    path: str


@dataclass(frozen=True)
class _PlainBeat:
    principal: Principal
    agent_id: str
    beat: Heartbeat


class HeartbeatLane:
    """Plain heartbeats of ``app``, through ``middleware``, to its agent desk."""

    def __init__(self, app: FastAPI, *, middleware: list[Middleware]) -> None:
        self._app = app
        self._route = _LaneRoute(ROUTE_PATH)
        lane: ASGIApp = self._answer
        for cls, args, kwargs in reversed(middleware):
            lane = cls(lane, *args, **kwargs)
        self._lane = lane

    @staticmethod
    def claims(scope: Scope) -> bool:
        """Whether the request may be a heartbeat for the lane (its body decides)."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return False
        if _PATH.fullmatch(scope["path"]) is None:
            return False
        for name, value in scope["headers"]:
            if name == b"content-length":
                return value.isdigit() and int(value) <= BODY_MAX_BYTES
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send, usual: ASGIApp) -> None:
        """Answer the heartbeat in the lane, or hand it to ``usual`` (the app's own way)."""
        messages, body = await _read_body(receive)
        replay = _replaying(messages, receive)
        plain = None if body is None else self._plain(scope, body)
        if plain is None:
            await usual(scope, replay, send)
            return
        scope["app"] = self._app  # as Starlette sets it, for anything that reads it
        scope[_BEAT] = plain
        await self._lane(scope, replay, send)

    def _plain(self, scope: Scope, body: bytes) -> _PlainBeat | None:
        """The heartbeat, when nothing about it needs the route's answer; else None."""
        services = getattr(self._app.state, "services", None)
        verifier = getattr(self._app.state, "verifier", None)
        if not isinstance(services, SessionServices) or not isinstance(verifier, TokenVerifier):
            return None
        request = Request(scope)
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media != "application/json" or b"\x00" in body or b"\\u0000" in body:
            return None  # the route's strict JSON parsing refuses NUL characters
        match = _PATH.fullmatch(scope["path"])
        try:
            beat = Heartbeat.model_validate(orjson.loads(body))
            principal = verifier.verify(bearer_token(request))
            principal.require_scope("agents:write")
        except (orjson.JSONDecodeError, ValidationError, AlgoTradeError):
            return None
        if match is None:
            return None
        return _PlainBeat(principal, match.group(1), beat)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route
        plain: _PlainBeat = scope.pop(_BEAT)
        services: SessionServices = self._app.state.services
        response: Response
        try:
            beat = await services.agents.heartbeat(plain.principal, plain.agent_id, plain.beat)
        except AlgoTradeError as exc:  # before any answer: as the app's handler answers it
            response = error_response(exc)
        else:
            answer = HeartbeatAnswer(
                server_time_ms=beat.server_time_ms,
                pending_commands=beat.pending_commands,
                state=beat.state,
                heartbeat_seconds=beat.heartbeat_seconds,
            )
            response = Response(answer.model_dump_json(), media_type="application/json")
        await response(scope, receive, send)


class ForwardTestApp(FastAPI):
    """The service's FastAPI app, which gives the heartbeats its `heartbeat_lane` claims to
    it."""

    heartbeat_lane: HeartbeatLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.heartbeat_lane
        if lane is not None and lane.claims(scope):
            await lane(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages of the request body as received, and the body (None if the client left
    before sending all of it)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that hands out ``messages`` again first."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
