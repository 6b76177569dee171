"""Pure-ASGI middleware: request/correlation ids, body-size limit, request metrics.

Pure ASGI rather than ``BaseHTTPMiddleware`` because it adds no task or copy per request, and it
can stop an oversized body while it streams in, not after it was buffered.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from algotrade.latency_metrics import CountedLatencies
from algotrade.logs import correlation_id_var, request_id_var
from algotrade.outages import unreachable
from algotrade.problems import problem_response, unavailable_response, unexpected_error_response

logger = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_LOW_80_BITS = (1 << 80) - 1


class RequestMetrics:
    """Request counts (by route, method and status) and latencies (by route and method) in the
    app's own registry: ``http_requests_total`` and ``http_request_duration_seconds``."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self._counts = CountedLatencies(
            registry,
            counter="http_requests_total",
            counter_help="HTTP requests by route, method and status",
            histogram="http_request_duration_seconds",
            histogram_help="HTTP request latency by route",
            labels=("service", "route", "method"),
            outcome_label="status",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.service = service

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        """Count one request and its latency since ``started`` (`time.perf_counter`)."""
        seconds = time.perf_counter() - started
        self._counts.observe((self.service, route, method), str(status), seconds)


class RequestIds:
    """New request ids: 32 hex digits, the time in milliseconds (12), then a count (20) that
    starts at a random 80-bit number drawn once.

    Unique within a process by the count and across processes by the start; sortable by time.
    Cheap: every request of every service gets one, and a ULID (`new_event_id`) costs a system
    call and a chain of calls each time. Not unpredictable, which a request id need not be: it
    names a request in logs, never grants anything."""

    def __init__(self) -> None:
        self._count = itertools.count(int.from_bytes(os.urandom(10), "big"))

    def new(self) -> str:
        return f"{time.time_ns() // 1_000_000:012x}{next(self._count) & _LOW_80_BITS:020x}"

    def of(
        self, given_request_id: bytes | None, given_correlation_id: bytes | None
    ) -> tuple[str, str]:
        """A request's id and correlation id: the client's ``X-Request-ID`` and
        ``X-Correlation-ID`` when they are safe to log and pass on, else a new id (the
        correlation id defaults to the request id)."""
        request_id = _clean_id(given_request_id) or self.new()
        return request_id, _clean_id(given_correlation_id) or request_id


class PlatformMiddleware:
    """Sets request/correlation ids, enforces body limits and records metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: RequestMetrics,
        max_body_bytes: int,
        body_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.ids = RequestIds()
        self.max_body_bytes = max_body_bytes
        # Longest prefix first, so a specific route's limit wins over a general one.
        self.body_limits = sorted((body_limits or {}).items(), key=lambda kv: -len(kv[0]))

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The three headers read here, found in one pass (no dict of every header).
        given_request_id = given_correlation_id = declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value.decode("latin-1")
            elif name == b"x-request-id":
                given_request_id = value
            elif name == b"x-correlation-id":
                given_correlation_id = value
        request_id, correlation_id = self.ids.of(given_request_id, given_correlation_id)
        rid_token = request_id_var.set(request_id)
        cid_token = correlation_id_var.set(correlation_id)
        limit = self._limit_for(scope["path"])
        started = time.perf_counter()
        status_holder = [500]
        try:
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
                # PostgreSQL cannot store NUL in text; refuse it before any handler sees it.
                status_holder[0] = 400
                await problem_response(
                    400,
                    "Bad request",
                    "NUL characters are not accepted in URLs",
                    code="nul_in_url",
                )(scope, _empty_receive, send)
                return
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._send_too_large(send, limit, status_holder)
                return
            await self._call_limited(scope, receive, send, limit, request_id, status_holder)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe(label, scope["method"], status_holder[0], started)
            request_id_var.reset(rid_token)
            correlation_id_var.reset(cid_token)

    async def _call_limited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        request_id: str,
        status_holder: list[int],
    ) -> None:
        received = 0
        too_large = False
        swallowing = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal swallowing, response_started
            if swallowing:
                return
            if message["type"] == "http.response.start":
                response_started = True
                if too_large:
                    # The app saw its body cut short and answered; answer 413 instead.
                    swallowing = True
                    await self._send_too_large(send, limit, status_holder)
                    return
                status_holder[0] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except _BodyTooLarge:
            if not swallowing:
                await self._send_too_large(send, limit, status_holder)
        except Exception as exc:
            if response_started:
                log_unexpected(exc, scope)
                raise
            status_holder[0] = await answer_unexpected(exc, scope, tagged_send)

    @staticmethod
    async def _send_too_large(send: Send, limit: int, status: list[int]) -> None:
        status[0] = 413
        response = problem_response(
            413,
            "Payload too large",
            f"request body exceeds {limit} bytes",
            code="payload_too_large",
        )
        await response({"type": "http"}, _empty_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def log_unexpected(exc: Exception, scope: Scope) -> None:
    """Log an exception no handler answered: an error, or a warning when a dependency was
    unreachable."""
    what = unreachable(exc)
    if what is None:
        logger.exception("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
    else:
        logger.warning(
            "%s unavailable on %s %s", what, scope["method"], scope["path"], exc_info=exc
        )


async def answer_unexpected(exc: Exception, scope: Scope, send: Send) -> int:
    """Log ``exc`` and answer it before any response started: 503 naming the unreachable
    dependency, else a 500 problem with no detail. Returns the status sent."""
    log_unexpected(exc, scope)
    what = unreachable(exc)
    if what is None:
        status, answer = 500, unexpected_error_response()
    else:
        status, answer = 503, unavailable_response(what, exc)
    await answer(scope, _empty_receive, send)
    return status


def _clean_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return text if _SAFE_ID.match(text) else None
