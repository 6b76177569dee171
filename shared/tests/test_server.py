"""The server every service runs: a real uvicorn with the capped httptools protocol.

A request head (request line and headers) over ``max_request_head_bytes`` is refused by the
server with 431 problem+json before it has read the whole head, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from algotrade.config import ServiceSettings
from algotrade.problems import PROBLEM_JSON
from algotrade.server import (
    COALESCE_MAX_BYTES,
    CoalescedWrites,
    HeadLimitedHttpToolsProtocol,
    uvicorn_options,
)

pytestmark = pytest.mark.timeout(60)


async def echo_size(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app: answers 200 with the size of the request body and of its headers."""
    if scope["type"] == "lifespan":
        return  # no lifespan: uvicorn carries on without one
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
    body = f"{size} {header_bytes}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def served(**overrides: Any) -> AsyncIterator[str]:
    settings = ServiceSettings(environment="test", **overrides)
    options = uvicorn_options(settings, host="127.0.0.1", port=free_port())
    options.pop("loop")  # the test's own event loop serves it
    server = uvicorn.Server(uvicorn.Config(echo_size, **options, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{options['port']}"
    finally:
        server.should_exit = True
        await task


def test_services_are_served_by_the_capped_protocol() -> None:
    options = uvicorn_options(ServiceSettings(environment="test"))
    assert options["http"] is HeadLimitedHttpToolsProtocol
    assert options["loop"] == "uvloop"
    assert options["h11_max_incomplete_event_size"] == 65_536


@pytest.mark.parametrize("header", ["Authorization", "X-Anything"])
async def test_a_1mb_header_is_refused_with_431_and_the_server_keeps_serving(header: str) -> None:
    async with served() as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        started = time.perf_counter()
        response = await client.get("/x", headers={header: "x" * (1 << 20)})
        took = time.perf_counter() - started
        assert response.status_code == 431
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["connection"] == "close"
        problem = response.json()
        assert problem["status"] == 431
        assert problem["code"] == "request_head_too_large"
        assert "65536" in problem["detail"]
        assert took < 2.0
        for _ in range(3):  # new connections are served as before
            assert (await client.get("/x")).status_code == 200


async def test_the_refusal_comes_before_the_whole_head_was_sent() -> None:
    async with served() as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # 200 KiB of a header that never ends: the server must not wait for the rest.
        writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\nx-flood: " + b"x" * (200 * 1024))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)  # the server closes
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b"request_head_too_large" in answer


async def test_heads_under_the_cap_and_large_bodies_pass() -> None:
    async with served() as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = {f"x-h{i}": "v" * 1000 for i in range(60)}  # ~61 KB of headers
        response = await client.get("/x", headers=headers)
        assert response.status_code == 200
        # Bodies are not head bytes, even arriving in the same reads as the head, and a
        # keep-alive connection's next request starts counting afresh.
        for _ in range(3):
            response = await client.post("/x", content=b"b" * (3 << 20), headers=headers)
            assert response.status_code == 200
            assert response.text.split()[0] == str(3 << 20)


async def test_the_cap_is_a_setting() -> None:
    async with (
        served(max_request_head_bytes=16_384) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        assert (await client.get("/x", headers={"x-a": "a" * 12_000})).status_code == 200
        response = await client.get("/x", headers={"x-a": "a" * 20_000})
        assert response.status_code == 431
        assert "16384" in response.json()["detail"]


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[tuple[asyncio.Transport, asyncio.StreamReader, list[bytes]]]:
    """A real TCP connection: the client side's transport, a reader of what the server side
    receives, and the data of each write the client transport was given."""
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(reader)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_connection(
        asyncio.Protocol, "127.0.0.1", port
    )
    assert isinstance(transport, asyncio.Transport)
    writes: list[bytes] = []
    write = transport.write

    def counted(data: Any) -> None:
        writes.append(bytes(data))
        write(data)

    transport.write = counted  # type: ignore[method-assign]
    try:
        yield transport, await accepted.get(), writes
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


async def test_writes_of_one_turn_of_the_loop_leave_in_one_write() -> None:
    async with connected() as (transport, received, writes):
        coalesced = CoalescedWrites(transport)
        coalesced.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        coalesced.write(bytearray(b"o"))
        coalesced.writelines([b"k"])
        assert writes == []  # nothing left before the end of this turn
        assert coalesced.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
        assert await received.readexactly(40) == writes[0]
        coalesced.write(b"next")  # a later turn: a write of its own
        await asyncio.sleep(0)
        assert writes[1:] == [b"next"]
        assert await received.readexactly(4) == b"next"


async def test_a_large_answer_is_not_held_back_until_the_turn_ends() -> None:
    async with connected() as (transport, _, writes):
        coalesced = CoalescedWrites(transport)
        chunk = b"x" * (COALESCE_MAX_BYTES // 4)
        for _ in range(3):
            coalesced.write(chunk)
        assert writes == []  # under the limit: still gathered
        coalesced.write(chunk)
        assert writes == [chunk * 4]  # at the limit: gone on within the same turn
        assert coalesced.get_write_buffer_size() == transport.get_write_buffer_size()
        coalesced.write(b"tail")
        await asyncio.sleep(0)
        assert writes[1:] == [b"tail"]


async def test_closing_sends_what_is_pending_first_and_aborting_drops_it() -> None:
    async with connected() as (transport, received, writes):
        coalesced = CoalescedWrites(transport)
        coalesced.write(b"last words")
        coalesced.close()
        assert coalesced.is_closing()
        assert await asyncio.wait_for(received.read(), 5) == b"last words"  # then EOF
    async with connected() as (transport, received, writes):
        coalesced = CoalescedWrites(transport)
        coalesced.write(b"never")
        coalesced.write_eof()  # as the 431 refusal ends its answer
        assert await asyncio.wait_for(received.read(), 5) == b"never"
    async with connected() as (transport, received, writes):
        coalesced = CoalescedWrites(transport)
        coalesced.write(b"dropped")
        coalesced.abort()
        await asyncio.sleep(0)
        assert writes == []
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(received.read(), 5) == b""


async def test_a_served_answer_in_two_messages_is_whole_on_a_kept_alive_connection() -> None:
    async with served() as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        for size in (0, 1, 70_000, 3 << 20):  # bodies smaller and larger than a socket buffer
            response = await client.post("/x", content=b"b" * size)
            assert response.status_code == 200
            assert response.text.split()[0] == str(size)
