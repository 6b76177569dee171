"""Refuse oversized credential headers before anything parses them (431, problem+json).

uvicorn with httptools (how every service is served) sets no limit on header size, so a 1 MB or
5 MB ``Authorization`` or ``X-API-Key`` arrives whole; without this check the gateway would
split, strip and base64-decode it as a token, or hash it as an API key. No credential the
gateway issues is anywhere near the limit (an access token is well under 1 KiB).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from algotrade.problems import problem_response

CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
"""Headers the gateway reads as credentials (``Authorization``, ``X-API-Key``)."""


class CredentialHeaderLimit:
    """Answers 431 to a request whose credential header exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if len(value) > self.max_bytes and name in CREDENTIAL_HEADERS:
                    await self._refuse(scope, receive, send, name.decode(), len(value))
                    return
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, header: str, size: int
    ) -> None:
        display = "-".join(part.capitalize() for part in header.split("-")).replace("Api", "API")
        response = problem_response(
            431,
            "Request header fields too large",
            f"the {display} header is {size} bytes; at most {self.max_bytes} are accepted",
            code="credential_header_too_large",
        )
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        # A WebSocket handshake: answer with the same problem where the server can send an
        # HTTP response, else refuse the handshake (uvicorn answers 403).
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 431,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1008})
