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
    """What Starlette answers without an Origin: ``Vary`` joined into one, ``Origin`` last."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", ()))
        values = [value for name, value in headers if name == b"vary"]
        vary = (b"vary", b", ".join([*values, b"Origin"]))
        if values:
            first = next(i for i, (name, _) in enumerate(headers) if name == b"vary")
            headers = [h for h in headers if h[0] != b"vary"]
            headers.insert(first, vary)
        else:
            headers.append(vary)
        message["headers"] = headers
    await send(message)
