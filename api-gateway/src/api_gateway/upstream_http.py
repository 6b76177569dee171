"""A lean HTTP/1.1 client for forwarding: pooled keep-alive connections, streamed both ways.

The gateway forwards every routed request to one of a few services it knows, over HTTP/1.1
with keep-alive. A general client (httpx over httpcore, anyio and h11) does work per request
that this needs none of: building and validating ``Request``/``Headers`` objects, a pure-Python
parser, anyio stream wrappers, pool bookkeeping proportional to its size. Profiled, that was
half of the gateway's CPU per request. Here a request is one ``transport.write`` of a head
built from already-validated header pairs, and the answer is parsed by httptools (llhttp, the
parser uvicorn itself uses) in an asyncio protocol; bodies stream chunk by chunk with flow
control in both directions.

Errors are three kinds, which the proxy maps to 502/504: `UpstreamConnectError` (nothing was
sent; safe to retry), `UpstreamTimeout`, and `UpstreamProtocolError` (anything else).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlsplit

import httptools

# Pause reading an upstream's response while this much of its body waits for the client.
_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """A request to an upstream failed."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing was sent."""


class UpstreamTimeout(UpstreamError):
    """Connecting, sending, or waiting for the answer took longer than allowed."""


class UpstreamProtocolError(UpstreamError):
    """The connection broke or the upstream answered something that is not HTTP/1.1."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # has carried a request before (a reused keep-alive connection)
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # body data or end, or writable
        self._writable = True
        self._paused_reading = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.head_only = False
        self._error: BaseException | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.status and not self.complete and exc is None and self._delimited_by_close():
            self.complete = True  # a body without length or chunks ends where the stream does
        if not self.complete:
            self._error = UpstreamProtocolError(
                f"the connection closed before the response was complete ({exc or 'EOF'})"
            )
        self._wake(self._head)
        self._wake(self._waiter)

    def _delimited_by_close(self) -> bool:
        if self.status in (204, 304):
            return False
        framing = (b"content-length", b"transfer-encoding")
        return not any(name.lower() in framing for name, _ in self.headers)

    def eof_received(self) -> bool | None:
        self.closed = True  # the upstream closed its side: never reuse this connection
        return None

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake(self._waiter)

    def data_received(self, data: bytes) -> None:
        if self._head is None or (self.complete and not self.head_only):
            # Bytes no request asked for (before the first one, or after a complete answer):
            # this connection cannot be trusted with the next request.
            self.close()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._error = UpstreamProtocolError(f"invalid HTTP response: {exc}")
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self._wake(self._head)
            self._wake(self._waiter)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real one follows
            self.headers = []
            return
        self.status = status
        if self.head_only:  # HEAD: no body follows, whatever Content-Length says
            self.complete = True
            self.keep_alive = False
        self._wake(self._head)

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake(self._waiter)

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of an interim answer
            return
        self.complete = True
        self.keep_alive = not self.head_only and self._parser.should_keep_alive()
        self._wake(self._waiter)

    # request side
    def start(self, head_only: bool) -> None:
        """Reset for a new request on this connection."""
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._loop.create_future()
        self.status = 0
        self.headers = []
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.head_only = head_only
        self._error = None

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise self._error or UpstreamProtocolError("the connection is closed")
        self.transport.write(data)

    async def drain(self, wait_seconds: float) -> None:
        while not self._writable and not self.closed:
            await self._wait(wait_seconds, "sending the request body")
        if self.closed and self._error is not None:
            raise self._error

    async def response_head(self, wait_seconds: float) -> None:
        head = self._head
        assert head is not None
        if not head.done():
            timer = self._loop.call_later(wait_seconds, self._time_out, head)
            try:
                await head
            finally:
                timer.cancel()
        if self.status == 0:
            raise self._error or UpstreamProtocolError("no response")

    def rest_if_complete(self) -> bytes | None:
        """The unread rest of a complete body (all of it arrived), else None."""
        if not self.complete:
            return None
        chunks = self._chunks
        rest = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused_reading and self.transport:
            self._paused_reading = False
            self.transport.resume_reading()
        return rest

    async def next_chunk(self, wait_seconds: float) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused_reading and self._buffered <= _HIGH_WATER // 4 and self.transport:
                    self._paused_reading = False
                    self.transport.resume_reading()
                return chunk
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait(wait_seconds, "reading the response")

    async def _wait(self, wait_seconds: float, doing: str) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(wait_seconds, self._time_out, waiter, doing)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _time_out(
        self, future: asyncio.Future[None], doing: str = "waiting for the answer"
    ) -> None:
        if not future.done():
            future.set_exception(UpstreamTimeout(f"timed out {doing}"))

    @staticmethod
    def _wake(future: asyncio.Future[None] | None) -> None:
        if future is not None and not future.done():
            future.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """The status and headers of an upstream's answer; its body is read with `chunks`."""

    def __init__(self, pool: UpstreamPool, connection: _Connection, read_timeout: float) -> None:
        self._pool = pool
        self._connection = connection
        self._read_timeout = read_timeout
        self.status = connection.status
        self.headers = connection.headers
        self._released = False

    def rest_if_complete(self) -> bytes | None:
        """What is left of the body to read, when all of it has arrived; else None (read it
        with `chunks`). Most answers are small and arrive with their head: this spares them
        the stream."""
        return self._connection.rest_if_complete()

    async def chunks(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while (chunk := await connection.next_chunk(self._read_timeout)) is not None:
            yield chunk

    def close(self) -> None:
        """Give the connection back (answer fully read, keep-alive) or close it."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        self._pool.release(connection, reuse=connection.complete and connection.keep_alive)


class UpstreamPool:
    """Keep-alive connections to one upstream (``http://host:port`` or ``https://...``)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        max_keepalive: int,
        keepalive_seconds: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        https = parts.scheme == "https"
        self._ssl = (ssl_context or ssl.create_default_context()) if https else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self._host_header = (parts.netloc if not default_port else self.host).encode("idna")
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive
        self._keepalive_seconds = keepalive_seconds
        self._connect_timeout = connect_timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0  # connections carrying a request or connecting
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes] | None,
        *,
        wait_seconds: float,
        retry_stale: bool = False,
    ) -> UpstreamResponse:
        """Send a request (``target``: the path and query as they go on the request line).

        ``headers`` must already be valid header pairs (as uvicorn's parser passed them); ``host``
        is added. ``wait_seconds`` bounds each wait: for a free connection, for the upstream
        to take more of the body, for the answer. A body without a
        ``content-length`` among ``headers`` is sent chunked. The answer's body is read through
        the returned response, which must be closed.
        """
        chunked = body is not None and not any(n == b"content-length" for n, _ in headers)
        lines = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", self._host_header, b"\r\n"]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        if chunked:
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        while True:
            connection = await self._acquire(wait_seconds)
            reused = connection.used
            connection.used = True
            try:
                connection.start(head_only=method == "HEAD")
                connection.write(head)
                if body is not None:
                    try:
                        await self._send_body(connection, body, chunked, wait_seconds)
                    except UpstreamProtocolError:
                        # An upstream may answer before it read the whole body (a 413, say)
                        # and close: that answer is the one to pass on.
                        if not connection.status:
                            raise
                await connection.response_head(wait_seconds)
            except UpstreamProtocolError:
                self.release(connection, reuse=False)
                # A kept-alive connection the upstream closed just as it was reused: nothing
                # was answered, so an idempotent request may go again on a new connection.
                if retry_stale and reused and body is None and not connection.got_bytes:
                    continue
                raise
            except BaseException:
                self.release(connection, reuse=False)
                raise
            return UpstreamResponse(self, connection, wait_seconds)

    async def _send_body(
        self,
        connection: _Connection,
        body: AsyncIterable[bytes],
        chunked: bool,
        wait_seconds: float,
    ) -> None:
        async for chunk in body:
            if not chunk:
                continue
            if chunked:
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                connection.write(chunk)
            await connection.drain(wait_seconds)
        if chunked:
            connection.write(b"0\r\n\r\n")

    async def _acquire(self, wait_seconds: float) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the likeliest still open
            if connection.closed or now - connection.idle_since > self._keepalive_seconds:
                connection.close()
                continue
            self._open += 1
            return connection
        if self._open >= self._max_connections:
            await self._wait_for_slot(wait_seconds)
            return await self._acquire(wait_seconds)
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake_next()
            raise

    async def _wait_for_slot(self, wait_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append(waiter)
        try:
            await asyncio.wait_for(waiter, wait_seconds)
        except TimeoutError:
            raise UpstreamTimeout("timed out waiting for a free connection") from None
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port, ssl=self._ssl
                )
        except TimeoutError:
            raise UpstreamTimeout(f"timed out connecting to {self.host}:{self.port}") from None
        except OSError as exc:
            raise UpstreamConnectError(f"{self.host}:{self.port}: {exc}") from exc
        return connection

    def release(self, connection: _Connection, *, reuse: bool) -> None:
        self._open -= 1
        if reuse and not connection.closed and len(self._idle) < self._max_keepalive:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
