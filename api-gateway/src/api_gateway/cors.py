"""CORS for the gateway: Starlette's, with a short way for requests without an ``Origin``.

Most traffic (the SDK, agents, the CLI) is not from a browser and carries no ``Origin``. For
those Starlette's middleware still parses every request header into a ``Headers`` object and
every answer's into ``MutableHeaders``, only to add ``Vary: Origin``; this adds the same header
directly. Requests with an ``Origin`` (browsers, preflights) go through Starlette's code.
"""

from __future__ import annotations

from functools import partial

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send


class GatewayCORS(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(n == b"origin" for n, _ in scope["headers"]):
            await self.app(scope, receive, partial(_vary_on_origin, send))
            return
        await super().__call__(scope, receive, send)


async def _vary_on_origin(send: Send, message: Message) -> None:
    if message["type"] == "http.response.start":
        message["headers"] = vary_on_origin(list(message.get("headers", ())))
    await send(message)


def vary_on_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What Starlette answers without an Origin: ``Vary`` joined into one, ``Origin`` last
    (``headers`` is changed in place, or replaced)."""
    values = [value for name, value in headers if name == b"vary"]
    if not values:
        headers.append((b"vary", b"Origin"))
        return headers
    first = next(i for i, (name, _) in enumerate(headers) if name == b"vary")
    headers = [h for h in headers if h[0] != b"vary"]
    headers.insert(first, (b"vary", b", ".join([*values, b"Origin"])))
    return headers
