"""The gateway's CORS answers exactly as Starlette's, with and without an Origin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware

from api_gateway.cors import GatewayCORS

VARY_CASES = [[], [(b"vary", b"Accept-Encoding")], [(b"vary", b"a"), (b"x", b"1"), (b"vary", b"b")]]


def upstream(headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def answer(middleware: type[CORSMiddleware], headers: Any, request: dict[str, str]) -> Any:
    app = middleware(upstream(headers), allow_origins=["https://app.example"], allow_headers=["*"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/x", headers=request)
    return response.status_code, response.headers.multi_items()


@pytest.mark.parametrize("headers", VARY_CASES)
@pytest.mark.parametrize(
    "request_headers",
    [{}, {"Origin": "https://app.example"}, {"Origin": "https://evil.example"}],
    ids=["no-origin", "allowed", "other"],
)
async def test_same_answer_as_starlettes(headers: Any, request_headers: dict[str, str]) -> None:
    ours = await answer(GatewayCORS, headers, request_headers)
    theirs = await answer(CORSMiddleware, headers, request_headers)
    assert ours == theirs
