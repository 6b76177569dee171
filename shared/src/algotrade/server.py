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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from algotrade.config import ServiceSettings
from algotrade.problems import problem_response

LINGER_SECONDS = 2.0


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


def serve(
    app: Any,
    settings: ServiceSettings,
    *,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Run ``app`` as every service runs: uvicorn, uvloop, httptools, capped request heads."""
    import uvicorn

    uvicorn.run(app, **uvicorn_options(settings, host=host, port=port))


def uvicorn_options(
    settings: ServiceSettings, *, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for a service."""
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "loop": "uvloop",
        "http": HeadLimitedHttpToolsProtocol,
        "h11_max_incomplete_event_size": settings.max_request_head_bytes,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "ws_ping_interval": settings.ws_ping_seconds,
        "ws_ping_timeout": settings.ws_ping_seconds,
        "ws_max_size": settings.ws_max_message_bytes,
    }
