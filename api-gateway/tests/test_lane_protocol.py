"""The gateway's own HTTP protocol, behind a real uvicorn: plain routed requests in a
`LaneCycle`, everything else in uvicorn's cycle, on the same connections.

Each test counts the cycles of both kinds, so that a test of the lane's way cannot pass by
having taken uvicorn's. Framing (lengths, chunks, HEAD), keep-alive, pipelining,
``Connection: close``, HTTP/1.0, a client gone before the answer, a large answer under flow
control and an unexpected error are each checked on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http import httptools_impl

from api_gateway import lane_protocol as lane_protocol_module
from api_gateway.lane_protocol import LaneCycle, lane_protocol
from api_gateway.main import create_app

pytestmark = pytest.mark.timeout(60)


class Cycles:
    """The cycles made, lane's and uvicorn's, by the port of the server that made them (the
    echo service behind the gateway runs in this process too)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []

    def at(self, url: str) -> tuple[int, int]:
        """How many cycles the server at ``url`` made: the lane's, uvicorn's."""
        port = int(url.rsplit(":", 1)[1])
        mine = [kind for kind, at in self.made if at == port]
        return mine.count("lane"), mine.count("uvicorn")


@pytest.fixture
def cycles(monkeypatch: pytest.MonkeyPatch) -> Cycles:
    counted = Cycles()

    class CountedLaneCycle(LaneCycle):
        def __init__(self, protocol: Any, scope: Any, **kwargs: Any) -> None:
            counted.made.append(("lane", scope["server"][1]))
            super().__init__(protocol, scope, **kwargs)

    class CountedUvicornCycle(httptools_impl.RequestResponseCycle):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            counted.made.append(("uvicorn", kwargs["scope"]["server"][1]))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(lane_protocol_module, "LaneCycle", CountedLaneCycle)
    monkeypatch.setattr(httptools_impl, "RequestResponseCycle", CountedUvicornCycle)
    return counted


@pytest.fixture
def served(
    settings_factory: Callable[..., Any], serve_app: Callable[..., Any]
) -> Callable[..., Any]:
    """``async with served() as (app, url)``: the gateway behind uvicorn with its protocol."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[Any, str]]:
        settings = settings_factory(**overrides)
        app = create_app(settings)
        async with serve_app(
            app,
            http=lane_protocol(app),
            h11_max_incomplete_event_size=settings.max_request_head_bytes,
        ) as url:
            yield app, url

    return start


@pytest.fixture
def auth(issue_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user_id='alice')}"}


async def _exchange(url: str, raw: bytes, *, until_closed: bool = False) -> bytes:
    """Write ``raw`` on a new connection; what comes back (until it closes, or for 1 s)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    received = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 5 if until_closed else 1)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        if until_closed:
            raise
    finally:
        writer.close()
    return received


async def test_plain_requests_on_a_kept_alive_connection_take_the_lane(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    async with served() as (_, url), httpx.AsyncClient(base_url=url) as client:
        for n in range(5):
            response = await client.get(f"/api/market/x?n={n}", headers=auth)
            assert response.status_code == 200
            assert response.json()["query"] == f"n={n}"
            assert response.json()["principal"]["user_id"] == "alice"
            assert response.headers["vary"] == "Origin"
            assert response.headers["x-request-id"]
            assert response.headers["date"] and response.headers["server"] == "uvicorn"
            assert int(response.headers["content-length"]) == len(response.content)
        assert cycles.at(url) == (5, 0)
        # Not plain: a body, an Origin, a forwarded header, the gateway's own routes.
        assert (await client.post("/api/market/x", headers=auth, json={})).status_code == 200
        assert (
            await client.get("/api/market/x", headers={**auth, "Origin": "https://elsewhere"})
        ).status_code == 200
        assert (
            await client.get("/api/market/x", headers={**auth, "X-Forwarded-For": "10.0.0.9"})
        ).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert cycles.at(url) == (5, 4)


async def test_either_way_the_answer_is_the_same(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    """The same requests, plain and with ``X-Forwarded-Proto: http`` (uvicorn's way, and
    nothing else changes: the gateway forwards ``http`` either way)."""
    requests = [
        ("GET", "/api/market/x", auth),
        ("GET", "/api/backtests/status/404", auth),
        ("GET", "/api/backtests/status/503", auth),
        ("GET", "/api/market/x", {}),
        ("HEAD", "/api/market/x", auth),
        ("DELETE", "/api/strategies/s-1", auth),
        ("GET", "/api/strategies/headers-out", auth),
    ]
    async with served() as (_, url), httpx.AsyncClient(base_url=url) as client:
        for method, path, headers in requests:
            given = {**headers, "X-Request-ID": "same-id"}
            plain = await client.request(method, path, headers=given)
            other = await client.request(
                method, path, headers={**given, "X-Forwarded-Proto": "http"}
            )

            def comparable(response: httpx.Response) -> tuple[Any, ...]:
                headers = [
                    (k, v)
                    for k, v in response.headers.multi_items()
                    if k not in ("date", "x-ratelimit-remaining", "x-ratelimit-reset")
                ]
                return response.status_code, headers, response.content

            assert comparable(plain) == comparable(other), (method, path)
        assert cycles.at(url) == (len(requests), len(requests))


async def test_a_head_answer_has_the_length_and_no_body(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    async with served() as (_, url):
        token = auth["Authorization"]
        raw = (
            f"HEAD /api/market/big?size=1234 HTTP/1.1\r\nhost: t\r\nauthorization: {token}\r\n\r\n"
            f"GET /api/market/big?size=3 HTTP/1.1\r\nhost: t\r\nauthorization: {token}\r\n\r\n"
        ).encode()
        answer = await _exchange(url, raw)
        head, rest = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"\r\ncontent-length: 1234\r\n" in head
        # Right after the HEAD answer's head comes the next answer: no body in between.
        assert rest.startswith(b"HTTP/1.1 200 OK")
        assert rest.endswith(b"\r\n\r\nxxx")
        assert cycles.at(url) == (1, 1)  # the second came while the first was in flight


async def test_a_streamed_answer_is_chunked_and_passed_on_as_it_comes(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str], echo: Any
) -> None:
    async with (
        served() as (_, url),
        httpx.AsyncClient(base_url=url) as client,
        client.stream("GET", "/api/market/stream", headers=auth) as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = response.aiter_raw()
        assert await anext(chunks) == b"first-chunk;"  # before the rest was even produced
        echo.release_response.set()
        assert b"".join([chunk async for chunk in chunks]) == b"second-chunk"
        assert cycles.at(url) == (1, 0)


async def test_a_large_answer_arrives_whole(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    async with served() as (_, url), httpx.AsyncClient(base_url=url, timeout=30) as client:
        size = 8 << 20
        async with client.stream("GET", f"/api/market/big?size={size}", headers=auth) as big:
            received = 0
            async for chunk in big.aiter_bytes():
                received += len(chunk)
                if received < (1 << 20):
                    await asyncio.sleep(0.05)  # a slow reader: the server's writes back up
        assert big.status_code == 200
        assert received == size == int(big.headers["content-length"])
        assert (await client.get("/api/market/x", headers=auth)).status_code == 200
        assert cycles.at(url) == (2, 0)


async def test_pipelined_requests_are_answered_in_order(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    async with served() as (_, url):
        token = auth["Authorization"]
        raw = b"".join(
            f"GET /api/market/slow?seconds={s} HTTP/1.1\r\nhost: t\r\n"
            f"authorization: {token}\r\nx-request-id: r{n}\r\n\r\n".encode()
            for n, s in enumerate((0.2, 0, 0))
        )
        answer = await _exchange(url, raw)
        assert answer.count(b"HTTP/1.1 200 OK") == 3
        order = [answer.index(f"x-request-id: r{n}\r\n".encode()) for n in range(3)]
        assert order == sorted(order)
        # The first went the lane's way; the others waited their turn in uvicorn's queue.
        lane, uvicorn_way = cycles.at(url)
        assert lane >= 1 and lane + uvicorn_way == 3


@pytest.mark.parametrize(
    ("version", "extra", "lane"),
    [("1.1", "connection: close\r\n", 1), ("1.0", "", 0)],
)
async def test_a_connection_the_client_does_not_keep_is_closed_after_the_answer(
    served: Callable[..., Any],
    cycles: Cycles,
    auth: dict[str, str],
    version: str,
    extra: str,
    lane: int,
) -> None:
    async with served() as (_, url):
        raw = (
            f"GET /api/market/x HTTP/{version}\r\nhost: t\r\n"
            f"authorization: {auth['Authorization']}\r\n{extra}\r\n"
        ).encode()
        answer = await _exchange(url, raw, until_closed=True)  # the server closes
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert b"\r\nconnection: close\r\n" in answer
        assert cycles.at(url) == (lane, 1 - lane)


async def test_a_client_gone_before_the_answer_costs_nothing_else(
    served: Callable[..., Any], cycles: Cycles, auth: dict[str, str]
) -> None:
    async with served() as (_, url):
        host, port = url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /api/market/slow?seconds=0.3 HTTP/1.1\r\nhost: t\r\n"
            f"authorization: {auth['Authorization']}\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # gone while the service is still answering
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/api/market/x", headers=auth)).status_code == 200
        assert cycles.at(url) == (2, 0)


async def test_an_unexpected_error_is_a_problem_not_a_stack_trace(
    served: Callable[..., Any],
    cycles: Cycles,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with served() as (app, url), httpx.AsyncClient(base_url=url) as client:

        async def broken(*_: Any) -> None:
            raise RuntimeError("a bug with a secret in it")

        monkeypatch.setattr(app.state.services.proxy, "handle", broken)
        response = await client.get("/api/market/x", headers=auth)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret" not in response.text
        assert (await client.get("/healthz")).status_code == 200  # the connection still serves
        assert cycles.at(url) == (1, 1)
