"""Endpoints as data: a `Call` describes one request (method, path, query, body, and how its
answer is parsed) and a `Flow` is a generator of the steps an operation takes (`Outgoing`
requests to send, `Sleep` pauses), receiving each answer back.

A flow does no I/O itself, so one flow serves both clients: `algotrade_client.transport` runs it
with `httpx.Client` and `time.sleep`, or with `httpx.AsyncClient` and `asyncio.sleep`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

T = TypeVar("T")

JSON = dict[str, Any]
"""A JSON object as the platform answers it."""
Rows = list[dict[str, Any]]
"""A list of JSON objects (one page's items, or every page's)."""
Params = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class Sleep:
    """Pause the flow for ``seconds`` (a poll interval, a wait for a refresh in flight)."""

    seconds: float


@dataclass(frozen=True)
class Outgoing:
    """One HTTP request as the transport sends it, credentials included (kept out of repr)."""

    method: str
    path: str
    params: Params | None = None
    json: Any = None
    files: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float | None = None


Step = Outgoing | Sleep
Flow = Generator[Step, Any, T]
"""An operation: yields steps, receives an `httpx.Response` for each `Outgoing` (None after a
`Sleep`), and returns its result."""


def json_object(response: httpx.Response) -> JSON:
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


def nothing(response: httpx.Response) -> None:
    return None


def text(response: httpx.Response) -> str:
    return response.text


@dataclass(frozen=True)
class Call(Generic[T]):
    """One endpoint call: what to send, and ``parse``, how its 2xx answer becomes the result.

    ``authenticated`` is False for the calls made before there is a credential (register,
    login, refresh): they carry none and are never retried after a refresh.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params | None = None
    json: Any = None
    files: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = True
    timeout: float | None = None

    def outgoing(self, credentials: Mapping[str, str]) -> Outgoing:
        params = None
        if self.params is not None:
            params = {k: v for k, v in self.params.items() if v is not None}
        return Outgoing(
            method=self.method,
            path=self.path,
            params=params,
            json=self.json,
            files=self.files,
            data=self.data,
            headers={**self.headers, **credentials},
            timeout=self.timeout,
        )


def get(path: str, params: Params | None = None) -> Call[JSON]:
    return Call("GET", path, json_object, params=params)


def post(path: str, body: Any = None, params: Params | None = None) -> Call[JSON]:
    return Call("POST", path, json_object, params=params, json=body)


def delete(path: str) -> Call[None]:
    return Call("DELETE", path, nothing)


def segment(value: str | int) -> str:
    """A path segment from a caller's value: percent-encoded, so an id can never add a path
    level or a query."""
    return quote(str(value), safe="")
