"""The agent protocol's own lane: its three most frequent requests past FastAPI's layers.

An agent beats every few seconds and waits on a long-poll for its commands, and a command's
way to it is the enqueue (``POST /api/agents/{agent_id}/commands``) and then the poll's answer
(``GET`` on the same path). The work of each is a Redis script or two; FastAPI's layers,
router, dependency solving and response validation cost them more than that, and the delivery
pays it twice. `ForwardTestApp` hands such a request to `AgentLane` when it is the plain case,
decided before anything is done:

- ``POST .../heartbeat`` and ``POST .../commands``: a small body (its length declared) of
  JSON that the route's model (`Heartbeat`, `CommandCreate`) validates;
- ``GET .../commands``: no body, and a query of at most ``wait`` and ``limit``, each once,
  written as plain decimals within the route's bounds;
- a bearer token that verifies and holds ``agents:write``, and the app started.

The lane runs it through the app's own middleware (request ids, body limits, metrics) to the
route's own answer function (``api/routes/agents.py``: `heartbeat_answer`, `enqueue_answer`,
`poll_answer`), so both ways do the same work and give the same answer. Anything else takes
the usual way with its body replayed, so that every problem (400, 401, 403, 422) is the
documented route's own, and the routes describe the requests in the OpenAPI document.

What the skipped layers would do on this path is done here or needs no doing: the desk's errors
are answered as the app's handler answers them (`error_response`), `PlatformMiddleware` answers
any unexpected one (an outage: 503), and the service sets no app-wide body limit and no
OpenTelemetry provider. (The gateway's `proxy_lane` is the same idea for its routed requests.)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from algotrade.auth import Principal, TokenVerifier, bearer_token
from algotrade.errors import AlgoTradeError
from algotrade.events import ULID_PATTERN
from algotrade.problems import error_response
from forward_test_service.agents.schemas import CommandCreate, Heartbeat
from forward_test_service.api.routes.agents import (
    POLL_LIMIT_DEFAULT,
    POLL_LIMIT_MAX,
    POLL_WAIT_MAX,
    enqueue_answer,
    heartbeat_answer,
    poll_answer,
)
from forward_test_service.services import SessionServices

BODY_MAX_BYTES = 4096
"""A heartbeat or a command is a few hundred bytes; a larger one (or one of undeclared length)
takes the usual way, where the body limits apply while it streams in."""

_AGENT = "/api/agents/(" + ULID_PATTERN.strip("^$") + ")/"
_CALL = "algotrade.agent_lane"  # scope key: what the lane decided on, for its handler
_WAIT = re.compile(r"[0-9]{1,2}(\.[0-9]{1,3})?")
_LIMIT = re.compile(r"[0-9]{1,3}")

Answer = Callable[[SessionServices], Awaitable[Response]]


@dataclass(frozen=True)
class _LaneRoute:
    """What the request metrics label a request with (the route it would match)."""

    path: str


@dataclass(frozen=True)
class _Call:
    route: _LaneRoute
    answer: Answer


@dataclass(frozen=True)
class _Kind:
    """One request the lane answers: its method and path, and how its plain case is read."""

    method: str
    path: re.Pattern[str]
    route: _LaneRoute
    model: type[BaseModel] | None  # the body's, or None for a request without one


_KINDS = (
    _Kind(
        "POST",
        re.compile(_AGENT + "heartbeat"),
        _LaneRoute("/api/agents/{agent_id}/heartbeat"),
        Heartbeat,
    ),
    _Kind(
        "POST",
        re.compile(_AGENT + "commands"),
        _LaneRoute("/api/agents/{agent_id}/commands"),
        CommandCreate,
    ),
    _Kind(
        "GET", re.compile(_AGENT + "commands"), _LaneRoute("/api/agents/{agent_id}/commands"), None
    ),
)


class AgentLane:
    """Plain heartbeats, commands and polls of ``app``, through ``middleware``, to the routes'
    answer functions."""

    def __init__(self, app: FastAPI, *, middleware: list[Middleware]) -> None:
        self._app = app
        lane: ASGIApp = self._answer
        for cls, args, kwargs in reversed(middleware):
            lane = cls(lane, *args, **kwargs)
        self._lane = lane

    @staticmethod
    def claims(scope: Scope) -> _Kind | None:
        """The kind of request it may be for the lane (its body and query decide), if any."""
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        for kind in _KINDS:
            if scope["method"] == kind.method and kind.path.fullmatch(scope["path"]):
                return kind if _body_fits(scope, kind) else None
        return None

    async def __call__(
        self, kind: _Kind, scope: Scope, receive: Receive, send: Send, usual: ASGIApp
    ) -> None:
        """Answer the request in the lane, or hand it to ``usual`` (the app's own way)."""
        messages, body = await _read_body(receive)
        replay = _replaying(messages, receive)
        call = None if body is None else self._plain(kind, scope, body)
        if call is None:
            await usual(scope, replay, send)
            return
        scope["app"] = self._app  # as Starlette sets it, for anything that reads it
        scope[_CALL] = call
        await self._lane(scope, replay, send)

    def _plain(self, kind: _Kind, scope: Scope, body: bytes) -> _Call | None:
        """The request's answer, when nothing about it needs the route's; else None."""
        services = getattr(self._app.state, "services", None)
        verifier = getattr(self._app.state, "verifier", None)
        if not isinstance(services, SessionServices) or not isinstance(verifier, TokenVerifier):
            return None
        match = kind.path.fullmatch(scope["path"])
        if match is None:
            return None
        agent_id = match.group(1)
        request = Request(scope)
        answer: Answer
        try:
            if kind.model is None:
                if body or (query := _poll_query(scope["query_string"])) is None:
                    return None
                wait, limit = query
                principal = _principal(verifier, request)
                answer = partial(
                    poll_answer, principal=principal, agent_id=agent_id, wait=wait, limit=limit
                )
            else:
                media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
                if media != "application/json" or b"\x00" in body or b"\\u0000" in body:
                    return None  # the route's strict JSON parsing refuses NUL characters
                if scope["query_string"]:
                    return None  # the route ignores a query; the lane leaves it to the route
                value = kind.model.model_validate(orjson.loads(body))
                principal = _principal(verifier, request)
                if isinstance(value, Heartbeat):
                    answer = partial(
                        heartbeat_answer, principal=principal, agent_id=agent_id, body=value
                    )
                elif isinstance(value, CommandCreate):
                    answer = partial(
                        enqueue_answer, principal=principal, agent_id=agent_id, body=value
                    )
                else:
                    return None
        except (orjson.JSONDecodeError, ValidationError, AlgoTradeError):
            return None
        return _Call(kind.route, answer)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        call: _Call = scope.pop(_CALL)
        scope["route"] = call.route
        services: SessionServices = self._app.state.services
        response: Response
        try:
            response = await call.answer(services)
        except AlgoTradeError as exc:  # before any answer: as the app's handler answers it
            response = error_response(exc)
        await response(scope, receive, send)


class ForwardTestApp(FastAPI):
    """The service's FastAPI app, which gives the requests its `agent_lane` claims to it."""

    agent_lane: AgentLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.agent_lane
        kind = None if lane is None else lane.claims(scope)
        if lane is not None and kind is not None:
            await lane(kind, scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


def _principal(verifier: TokenVerifier, request: Request) -> Principal:
    principal = verifier.verify(bearer_token(request))
    principal.require_scope("agents:write")
    return principal


def _body_fits(scope: Scope, kind: _Kind) -> bool:
    """A body's length declared and small (none at all for a request without one)."""
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"content-length":
            if kind.model is None:
                return value == b"0"
            return value.isdigit() and int(value) <= BODY_MAX_BYTES
        if name == b"transfer-encoding":
            return False
    return kind.model is None


def _poll_query(query_string: bytes) -> tuple[float, int] | None:
    """``(wait, limit)`` of a plain poll's query (each at most once, plain decimals within the
    route's bounds); None for anything the route should read."""
    wait, limit = 0.0, POLL_LIMIT_DEFAULT
    seen: set[str] = set()
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    for name, value in pairs:
        if name in seen:
            return None
        seen.add(name)
        if name == "wait" and _WAIT.fullmatch(value):
            wait = float(value)
            if wait > POLL_WAIT_MAX:
                return None
        elif name == "limit" and _LIMIT.fullmatch(value):
            limit = int(value)
            if not 1 <= limit <= POLL_LIMIT_MAX:
                return None
        else:
            return None
    return wait, limit


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
