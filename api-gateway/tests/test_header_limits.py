"""Oversized credential headers are refused with 431 before any authentication runs.

Real HTTP: the gateway behind uvicorn with httptools (as ``serve`` runs it), which itself sets
no header size limit and hands a 1 MB or 5 MB header to the app whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

LIMIT = 8192


@pytest.mark.parametrize("size", [1 << 20, 5 << 20], ids=["1MB", "5MB"])
@pytest.mark.parametrize(
    ("header", "prefix", "shown"),
    [("Authorization", "Bearer ", "Authorization"), ("X-API-Key", "atk_", "X-API-Key")],
)
async def test_an_oversized_credential_header_is_refused_with_431(
    serve_gateway: Callable[..., Any], header: str, prefix: str, shown: str, size: int
) -> None:
    async with serve_gateway() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        value = prefix + "x" * (size - len(prefix))
        for path in ("/api/strategies", "/api/auth/me"):  # proxied and the gateway's own
            response = await client.get(path, headers={header: value})
            assert response.status_code == 431, response.text[:200]
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == 431
            assert problem["code"] == "credential_header_too_large"
            assert shown in problem["detail"] and str(LIMIT) in problem["detail"]
        # The connection and the server are fine afterwards.
        assert (await client.get("/healthz")).status_code == 200


async def test_a_credential_header_at_the_limit_reaches_authentication(
    serve_gateway: Callable[..., Any],
) -> None:
    async with serve_gateway() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        at_limit = "Bearer " + "x" * (LIMIT - len("Bearer "))
        response = await client.get("/api/strategies", headers={"Authorization": at_limit})
        assert response.status_code == 401
        over = at_limit + "x"
        response = await client.get("/api/strategies", headers={"Authorization": over})
        assert response.status_code == 431


async def test_other_large_headers_are_not_the_credential_limit(
    serve_gateway: Callable[..., Any],
) -> None:
    async with serve_gateway() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get("/api/strategies", headers={"X-Note": "x" * 20_000})
        assert response.status_code == 401  # no credential: refused by authentication


async def test_the_limit_is_a_setting(serve_gateway: Callable[..., Any]) -> None:
    async with (
        serve_gateway(max_credential_header_bytes=2048) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        response = await client.get("/api/strategies", headers={"X-API-Key": "atk_" + "x" * 3000})
        assert response.status_code == 431
        assert "2048" in response.json()["detail"]
