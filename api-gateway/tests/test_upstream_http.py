"""The forwarding client against real sockets: framing, keep-alive, streaming, failures.

Each test runs a small asyncio TCP server that answers with exactly the bytes the test wants
(framings a FastAPI service would not produce on demand), and counts connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from algotrade_devstack.infra import free_port
from api_gateway.upstream_http import (
    UpstreamConnectError,
    UpstreamPool,
    UpstreamProtocolError,
    UpstreamTimeout,
)

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []


@contextlib.asynccontextmanager
async def server(
    answer: Callable[[bytes, asyncio.StreamReader], Awaitable[bytes | None]],
    *,
    drop_second: bool = False,
) -> AsyncIterator[tuple[Server, str]]:
    """A server reading request heads and writing ``answer(head, reader)``; None closes, and
    so does, with ``drop_second``, the second request on a connection (unanswered)."""
    state = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                state.requests.append(head)
                served += 1
                out = None if drop_second and served == 2 else await answer(head, reader)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if b"connection: close" in out:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    srv = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


def pool(url: str, **overrides: float) -> UpstreamPool:
    values: dict[str, float] = {
        "max_connections": 4,
        "max_keepalive": 4,
        "keepalive_seconds": 5,
        "connect_timeout": 2,
        **overrides,
    }
    return UpstreamPool(url, **values)  # type: ignore[arg-type]


async def body_of(p: UpstreamPool, method: str = "GET") -> tuple[int, bytes]:
    response = await p.request(method, b"/x?y=1", [(b"x-a", b"1")], None, wait_seconds=2)
    try:
        return response.status, b"".join([c async for c in response.chunks()])
    finally:
        response.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (
        len(body),
        b"".join(e + b"\r\n" for e in extra),
        body,
    )


async def test_keep_alive_connections_are_reused_and_the_head_is_sent_as_given() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        return ok(b"hello")

    async with server(answer) as (state, url):
        p = pool(url)
        for _ in range(3):
            assert await body_of(p) == (200, b"hello")
        assert state.connections == 1
        host = url.removeprefix("http://").encode()
        assert state.requests[0] == b"GET /x?y=1 HTTP/1.1\r\nhost: " + host + b"\r\nx-a: 1\r\n\r\n"
        await p.aclose()


async def test_a_body_that_arrived_whole_is_taken_at_once_and_a_partial_one_is_streamed() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        if b"/partial" not in head:
            return ok(b"all here")
        return b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nhalf"

    async with server(answer) as (state, url):
        p = pool(url)
        for _ in range(2):  # the connection is reused after a body taken at once
            response = await p.request("GET", b"/", [], None, wait_seconds=2)
            for _ in range(50):  # the head and the body come in one write: give it a moment
                if (whole := response.rest_if_complete()) is not None:
                    break
                await asyncio.sleep(0.01)
            assert whole == b"all here"
            assert response.rest_if_complete() == b""  # nothing is left
            response.close()
        assert state.connections == 1
        response = await p.request("GET", b"/partial", [], None, wait_seconds=2)
        assert response.rest_if_complete() is None  # four of its eight bytes are missing
        chunks = response.chunks()
        assert await anext(chunks) == b"half"
        response.close()
        await p.aclose()


async def test_chunked_and_close_delimited_bodies_are_read_to_their_end() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-the-end",
        ]
    )

    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes | None:
        return next(answers)

    async with server(answer) as (_, url):
        p = pool(url)
        assert await body_of(p) == (200, b"abcde")
        response = await p.request("GET", b"/", [], None, wait_seconds=2)
        assert b"".join([c async for c in response.chunks()]) == b"until-the-end"
        response.close()
        await p.aclose()


async def test_a_head_answer_has_no_body_whatever_its_length_says() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"

    async with server(answer) as (_, url):
        p = pool(url)
        assert await body_of(p, "HEAD") == (200, b"")
        await p.aclose()


async def test_a_body_without_length_is_sent_chunked_and_one_with_length_as_is() -> None:
    received: list[bytes] = []

    async def answer(head: bytes, reader: asyncio.StreamReader) -> bytes:
        if b"transfer-encoding: chunked" in head:
            data = await reader.readuntil(b"0\r\n\r\n")
        else:
            data = await reader.readexactly(6)
        received.append(data)
        return ok(b"")

    async def stream() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b""
        yield b"def"

    async with server(answer) as (_, url):
        p = pool(url)
        response = await p.request("POST", b"/", [], stream(), wait_seconds=2)
        response.close()
        response = await p.request(
            "POST", b"/", [(b"content-length", b"6")], stream(), wait_seconds=2
        )
        response.close()
        assert received == [b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", b"abcdef"]
        await p.aclose()


async def test_an_idle_connection_the_upstream_closed_is_not_reused() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        return ok(b"once", b"connection: close")

    async with server(answer) as (state, url):
        p = pool(url)
        assert await body_of(p) == (200, b"once")
        assert await body_of(p) == (200, b"once")
        assert state.connections == 2
        await p.aclose()


async def test_a_connection_closed_as_it_is_reused_is_retried_when_allowed() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        return ok(b"fine")  # keep-alive, but each connection is dropped at its 2nd request

    async with server(answer, drop_second=True) as (state, url):
        p = pool(url)
        assert await body_of(p) == (200, b"fine")
        response = await p.request("GET", b"/", [], None, wait_seconds=2, retry_stale=True)
        response.close()
        assert response.status == 200
        assert state.connections == 2
        # Not allowed (a POST): the error is the caller's to handle.
        with pytest.raises(UpstreamProtocolError):
            await p.request("POST", b"/", [], None, wait_seconds=2)
        await p.aclose()


async def test_failures_are_told_apart() -> None:
    with pytest.raises(UpstreamConnectError):
        await body_of(pool(f"http://127.0.0.1:{free_port()}"))

    async def silent(head: bytes, reader: asyncio.StreamReader) -> bytes:
        await asyncio.sleep(10)
        return b""

    async with server(silent) as (_, url):
        p = pool(url)
        with pytest.raises(UpstreamTimeout):
            await p.request("GET", b"/", [], None, wait_seconds=0.2)
        await p.aclose()

    async def garbage(head: bytes, _: asyncio.StreamReader) -> bytes:
        return b"SMTP ready\r\n\r\n"

    async with server(garbage) as (_, url):
        p = pool(url)
        with pytest.raises(UpstreamProtocolError):
            await body_of(p)
        await p.aclose()


async def test_requests_over_the_connection_limit_wait_for_a_free_one() -> None:
    async def answer(head: bytes, _: asyncio.StreamReader) -> bytes:
        await asyncio.sleep(0.05)
        return ok(b"done")

    async with server(answer) as (state, url):
        p = pool(url, max_connections=2)
        results = await asyncio.gather(*(body_of(p) for _ in range(6)))
        assert results == [(200, b"done")] * 6
        assert state.connections == 2
        await p.aclose()


async def test_an_answer_sent_before_the_body_was_read_is_passed_on() -> None:
    async def answer(head: bytes, reader: asyncio.StreamReader) -> bytes:
        await reader.read(1024)  # a little of the body, then refuse the rest
        return b"HTTP/1.1 413 Too Large\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbig"

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(400):
            yield b"x" * 65_536
            await asyncio.sleep(0)

    async with server(answer) as (_, url):
        p = pool(url)
        response = await p.request(
            "POST", b"/", [(b"content-length", b"26214400")], stream(), wait_seconds=5
        )
        assert response.status == 413
        assert b"".join([c async for c in response.chunks()]) == b"big"
        response.close()
        await p.aclose()
