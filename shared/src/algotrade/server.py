"""How every service is served: uvicorn with uvloop and httptools, and a cap on request heads.

uvicorn's httptools protocol sets no limit on the size of a request line and headers: a client
can send a 1 MB or 100 MB header and the server buffers it whole before the app sees a byte.
uvicorn's own knob, ``h11_max_incomplete_event_size``, only applies to the h11 protocol (and
answers 400). `HeadLimitedHttpToolsProtocol` reads the same setting and applies it to httptools:
once a request head grows past the cap it answers ``431 Request Header Fields Too Large``
(problem+json) and closes the connection, having buffered at most the cap plus one read.

The close lingers: the rest of what the client is still sending is read and dropped for up to
`LINGER_SECONDS`. Closing a socket with unread data makes the kernel answer with a reset, and a
client still writing its headers would see "connection reset" instead of the 431.

uvicorn writes a response's head as soon as the app starts it, and each body message as it
comes: a small answer leaves in two writes, two system calls and two TCP segments (the sockets
are ``TCP_NODELAY``), and the client wakes for the head alone. `CoalescedWrites` gathers what one
turn of the event loop writes and sends it in one write at the end of that turn, so the head and
a body sent right after it leave together. Nothing waits longer than the loop's turn, and
from `COALESCE_MAX_BYTES` gathered a write goes on at once (flow control sees large answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from algotrade.config import ServiceSettings
from algotrade.problems import problem_response

LINGER_SECONDS = 2.0
COALESCE_MAX_BYTES = 64 * 1024  # gathered writes go on at once from this size


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head over ``max_head_bytes``.

    The cap is ``config.h11_max_incomplete_event_size`` (uvicorn's h11 limit of the same kind),
    so one option configures both protocols. It covers the request line and every header of one
    request; bodies are not counted (the apps' body limits handle those).
    """

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_head_bytes = config.h11_max_incomplete_event_size
        self._head_bytes = 0  # bytes received since the previous request was complete
        self._reading_head = False
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        coalesced = CoalescedWrites(cast(asyncio.Transport, transport))
        super().connection_made(coalesced)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the rest of the connection is dropped unparsed
            return
        self._head_bytes += len(data)
        super().data_received(data)
        if (
            not self._refused
            and self._reading_head
            and self.max_head_bytes is not None
            and self._head_bytes > self.max_head_bytes
        ):
            self._refused = True  # a head still incomplete past the cap: no need to wait more
        if self._refused and not self.transport.is_closing():
            self._refuse_head()

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._reading_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self.max_head_bytes is not None and self._head_bytes > self.max_head_bytes:
            # More than the cap came in since the last request: measure this head itself (it
            # may have arrived in one read, together with body bytes).
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.max_head_bytes:
                self._refused = True
                return
        self.head_accepted()

    def head_accepted(self) -> None:
        """A request head within the cap is complete: answer the request (uvicorn's way; a
        subclass may answer some requests its own way)."""
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._head_bytes = 0
        super().on_message_complete()

    def _refuse_head(self) -> None:
        self.logger.warning(
            "request head over %d bytes from %s refused with 431",
            self.max_head_bytes,
            self.client[0] if self.client else "?",
        )
        response = problem_response(
            431,
            "Request header fields too large",
            f"the request line and headers exceed {self.max_head_bytes} bytes",
            code="request_head_too_large",
        )
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", response.body]))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


class CoalescedWrites(asyncio.Transport):
    """``transport``, whose writes during one turn of the event loop go out as one write at its
    end (in order). Closing or ending the stream sends what is pending first; aborting drops it.
    Everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= COALESCE_MAX_BYTES:
            # A large answer goes on at once: the transport's flow control (which pauses the
            # app's sends while the client reads slowly) must see it, and memory stay bounded.
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is gathered now (a writer that knows it has written a whole answer need
        not wait for the end of the turn)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


def serve(
    app: Any,
    settings: ServiceSettings,
    *,
    host: str | None = None,
    port: int | None = None,
    http: type[HeadLimitedHttpToolsProtocol] = HeadLimitedHttpToolsProtocol,
) -> None:
    """Run ``app`` as every service runs: uvicorn, uvloop, httptools, capped request heads
    (``http``: the protocol, this one or a subclass of it)."""
    import uvicorn

    uvicorn.run(app, **uvicorn_options(settings, host=host, port=port, http=http))


def uvicorn_options(
    settings: ServiceSettings,
    *,
    host: str | None = None,
    port: int | None = None,
    http: type[HeadLimitedHttpToolsProtocol] = HeadLimitedHttpToolsProtocol,
) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for a service."""
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "loop": "uvloop",
        "http": http,
        "h11_max_incomplete_event_size": settings.max_request_head_bytes,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "ws_ping_interval": settings.ws_ping_seconds,
        "ws_ping_timeout": settings.ws_ping_seconds,
        "ws_max_size": settings.ws_max_message_bytes,
    }
