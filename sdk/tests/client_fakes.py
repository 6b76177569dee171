"""A fake gateway for the client's unit tests: routes ``(method, path)`` to handlers behind
`httpx.MockTransport`, records every request, and speaks problem+json. It tests the client's own
logic (paging, refresh, errors, parsing); the end-to-end test (tests/e2e/test_sdk.py) runs the
client against the real stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]

SECRET_TOKEN = "eyJ-access-token-that-must-never-show"
SECRET_REFRESH = "atr_refresh-token-that-must-never-show"
SECRET_KEY = "atk_0123456789abcdef_key-that-must-never-show"


def problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    body = {
        "type": "https://algotrade.dev/problems/x",
        "title": {404: "Not found", 401: "Unauthorized", 422: "Validation failed"}.get(
            status, "Problem"
        ),
        "status": status,
        "detail": detail,
        "code": extra.pop("code", "x"),
        **extra,
    }
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/problem+json"}
    )


class FakeGateway:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, handler: Handler | dict[str, Any] | list[Any]) -> None:
        if callable(handler):
            self.routes[(method, path)] = handler
        else:
            body = handler
            self.routes[(method, path)] = lambda request: httpx.Response(200, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw_path = request.url.raw_path.split(b"?")[0].decode()  # as sent: still encoded
        handler = self.routes.get((request.method, raw_path))
        if handler is None:
            return problem(404, f"no route {request.method} {request.url.path}")
        return handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def params(self, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path == path]
