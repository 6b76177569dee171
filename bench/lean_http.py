"""A lean HTTP/1.1 client for the benchmarks: the gateway's own `UpstreamPool` on one
keep-alive connection (one write per request, httptools parsing).

httpx's own cost per request (its pure-Python HTTP/1.1 and stream layers, about half a
millisecond on the 2-core machine, and a few microseconds per response header) would sit in
every figure: with this client, what is left is the server's part, and the loopback's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from api_gateway.upstream_http import UpstreamPool


class LeanClient:
    """One connection to ``url``, sending ``headers`` with every request."""

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self._pool = UpstreamPool(
            url, max_connections=1, max_keepalive=1, keepalive_seconds=60, connect_timeout=5
        )
        self._headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, wait_seconds: float = 60
    ) -> tuple[int, bytes]:
        """``(status, body)``; a ``body`` is sent as JSON."""
        headers = self._headers
        if body is not None:
            headers = [
                *headers,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        response = await self._pool.request(
            method,
            path.encode(),
            headers,
            None if body is None else _once(body),
            wait_seconds=wait_seconds,
        )
        try:
            data = b"".join([chunk async for chunk in response.chunks()])
        finally:
            response.close()
        return response.status, data

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
