"""The proxy lane at the connection: plain routed requests answered without uvicorn's cycle.

For every request uvicorn builds a `RequestResponseCycle` (with an ``asyncio.Event``), wraps
the app in its exception guard and in ``ProxyHeadersMiddleware``, and checks every response
header against two regular expressions. For the gateway's plain routed requests (see
`api_gateway.proxy_lane`) that was about a third of the gateway's own time per request. The
gateway's protocol, `LaneProtocol` (uvicorn's httptools protocol with the services' head cap),
answers those requests with a `LaneCycle` that stands where uvicorn's cycle stands: the
protocol's own code (keep-alive, pipelining, disconnects, flow control, graceful shutdown)
reads and sets the same attributes on it, and it frames responses as uvicorn's cycle does.

Taken only by a request uvicorn would send straight to the app unchanged: HTTP/1.1, no upgrade,
no ``Expect``, no request in flight on the connection (pipelined requests queue the uvicorn
way), no concurrency limit, no root path, and no ``X-Forwarded-For``/``X-Forwarded-Proto``
(``ProxyHeadersMiddleware`` would read them); and one the lane claims and finds plain. Any
other request takes uvicorn's way, unchanged. `tests/test_lane_protocol.py` serves the gateway
with this protocol and checks both ways, framing and connection handling included.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any, ClassVar

import httptools
from starlette.types import Message
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE

from algotrade.server import CoalescedWrites, HeadLimitedHttpToolsProtocol
from api_gateway.proxy_lane import NOT_PLAIN, GatewayApp, ProxyLane

logger = logging.getLogger("uvicorn.error")  # where uvicorn logs an app's exceptions

# Headers uvicorn's ProxyHeadersMiddleware acts on: a request with one goes through it.
_NOT_PLAIN_HERE = NOT_PLAIN | {b"x-forwarded-for", b"x-forwarded-proto"}

_SERVER_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


class _Wakeup:
    """Stands for the cycle's ``asyncio.Event``: the protocol sets it when the client goes
    away or the request's body is complete. Only a receive after the (empty) body waits."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter


class LaneCycle:
    """One plain request on a connection, answered by the lane."""

    def __init__(self, protocol: LaneProtocol, scope: Any, *, keep_alive: bool) -> None:
        self._protocol = protocol
        self._transport = transport = protocol.transport
        # A whole answer leaves as soon as it is written, not at the end of the loop's turn.
        self._send_now = transport.flush if isinstance(transport, CoalescedWrites) else _nothing
        self.scope = scope
        # What uvicorn's protocol reads and sets on its cycle.
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False
        self.message_event = _Wakeup()
        self.body = bytearray()
        self.more_body = True
        self.on_response = protocol.on_response_complete
        # The response.
        self.response_started = False
        self._chunked = False
        self._remaining = 0  # of the declared Content-Length
        self._asked = False

    async def run(self, lane: ProxyLane, ids: tuple[bytes | None, bytes | None]) -> None:
        """Answer through ``lane``, as uvicorn's ``run_asgi`` guards an app."""
        try:
            await lane.answer_plain(self.scope, self.receive, self.send, *ids)
        except BaseException as exc:  # as uvicorn's guard: logged, answered, not raised
            logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                self._answer_500()
            else:
                self._transport.close()
        else:
            if not self.response_started and not self.disconnected:
                logger.error("ASGI callable returned without starting response.")
                self._answer_500()
            elif not self.response_complete and not self.disconnected:
                logger.error("ASGI callable returned without completing response.")
                self._transport.close()
        finally:
            self.on_response = _nothing

    def _answer_500(self) -> None:
        if not self.disconnected:
            self._transport.write(_SERVER_ERROR)
            self._transport.close()

    async def receive(self) -> Message:
        """The (empty) body once; then, when the client goes away or the answer is complete,
        a disconnect."""
        if not self._asked and not self.disconnected:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if not self.disconnected and not self.response_complete:
            await self.message_event.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        flow = self._protocol.flow
        if flow.write_paused and not self.disconnected:
            await flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got '{message['type']}'")
            self.response_started = True
            self._start(message["status"], message.get("headers", ()))
            return
        if self.response_complete:
            raise RuntimeError(f"'{message['type']}' sent after the response was complete")
        if message["type"] != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got '{message['type']}'")
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self._remaining = 0
        elif self._chunked:
            framed = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            self._transport.write(framed if more_body else framed + b"0\r\n\r\n")
        else:
            if len(body) > self._remaining:
                raise RuntimeError("Response content longer than Content-Length")
            self._remaining -= len(body)
            self._transport.write(body)
        if not more_body:
            if self._remaining != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self._send_now()
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self._transport.close()
            self.on_response()

    def _start(self, status: int, headers: Any) -> None:
        """Write the status line and headers, framed as uvicorn frames them."""
        content = [STATUS_LINE[status]]
        for name, value in self._protocol.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        framing: bool | None = None  # chunked, or not; None: not said
        closing = False
        # uvicorn's checks, each over all names or all values at once ("-" and tab are allowed
        # in names and values: neither separator can hide a character that is not).
        if HEADER_RE.search(b"-".join([name for name, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"\t".join([value for _, value in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and framing is None:
                self._remaining = int(value.decode())
                framing = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self._remaining = 0
                framing = True
            elif name == b"connection" and b"close" in [
                token.lower().strip() for token in value.split(b",")
            ]:
                self.keep_alive = False
                closing = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closing:
            content.append(b"connection: close\r\n")
        if framing is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            framing = True
            content.append(b"transfer-encoding: chunked\r\n")
        self._chunked = bool(framing)
        content.append(b"\r\n")
        self._transport.write(b"".join(content))


def _nothing() -> None:
    return None


class LaneProtocol(HeadLimitedHttpToolsProtocol):
    """The gateway's HTTP protocol: plain routed requests go to `lane` in a `LaneCycle`."""

    lane: ClassVar[ProxyLane]

    def head_accepted(self) -> None:
        ids = self._plain_ids()
        if ids is None:
            super().head_accepted()
            return
        self.scope["app"] = self.lane.app  # type: ignore[typeddict-unknown-key]
        cycle = LaneCycle(self, self.scope, keep_alive=self.parser.should_keep_alive())
        self.cycle = cycle  # type: ignore[assignment]
        task = self.loop.create_task(cycle.run(self.lane, ids))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _plain_ids(self) -> tuple[bytes | None, bytes | None] | None:
        """What `ProxyLane.plain_ids` says of a request this protocol may answer itself (with
        the scope completed as uvicorn completes it); None for any other."""
        parser = self.parser
        if (
            self.limit_concurrency is not None
            or self.root_path
            or self.expect_100_continue
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return None
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        url = httptools.parse_url(self.url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        scope["path"] = urllib.parse.unquote(path) if "%" in path else path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        if not self.lane.claims(scope):  # type: ignore[arg-type]
            return None
        return self.lane.plain_ids(scope, _NOT_PLAIN_HERE)  # type: ignore[arg-type]


def lane_protocol(app: GatewayApp) -> type[LaneProtocol]:
    """The protocol to serve ``app`` with (its lane bound to it)."""
    if app.proxy_lane is None:
        raise ValueError("the app has no proxy lane")
    return type("GatewayLaneProtocol", (LaneProtocol,), {"lane": app.proxy_lane})
