"""The two runners of flows: `SyncRunner` over `httpx.Client` and `AsyncRunner` over
`httpx.AsyncClient`. They are the only code that does I/O for the REST calls: each sends the
`Outgoing` steps a flow yields and sleeps its `Sleep` steps, and hands a dropped connection or a
timeout back to the flow as `TransportError` at the step that failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from algotrade_client.calls import Flow, Outgoing, Sleep
from algotrade_client.errors import TransportError

P = ParamSpec("P")
T = TypeVar("T")


def _request(http: httpx.Client | httpx.AsyncClient, step: Outgoing) -> httpx.Request:
    return http.build_request(
        step.method,
        step.path,
        params=step.params,
        json=step.json,
        files=step.files,
        data=step.data,
        headers=dict(step.headers),
        timeout=step.timeout if step.timeout is not None else httpx.USE_CLIENT_DEFAULT,
    )


def _failed(step: Outgoing, exc: httpx.TransportError) -> TransportError:
    return TransportError(f"{step.method} {step.path}: {type(exc).__name__}: {exc}")


def _advance(flow: Flow[T], reply: Any, error: BaseException | None) -> Any:
    """The flow's next step; raises StopIteration with its result when it is done."""
    return flow.throw(error) if error is not None else flow.send(reply)


class SyncRunner:
    """Runs flows with blocking I/O."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def run(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = _advance(flow, reply, error)
                except StopIteration as done:
                    result: T = done.value
                    return result
                reply, error = None, None
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    continue
                try:
                    reply = self.http.send(_request(self.http, step))
                except httpx.TransportError as exc:
                    error = _failed(step, exc)
        finally:
            flow.close()  # an interrupted flow still runs its finally blocks (locks, files)

    def bind(self, flow: Callable[Concatenate[Any, P], Flow[T]], resource: Any) -> Callable[P, T]:
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.run(flow(resource, *args, **kwargs))

        return call


class AsyncRunner:
    """Runs flows on the event loop."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def run(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = _advance(flow, reply, error)
                except StopIteration as done:
                    result: T = done.value
                    return result
                reply, error = None, None
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    continue
                try:
                    reply = await self.http.send(_request(self.http, step))
                except httpx.TransportError as exc:
                    error = _failed(step, exc)
        finally:
            flow.close()  # an interrupted flow still runs its finally blocks (locks, files)

    def bind(
        self, flow: Callable[Concatenate[Any, P], Flow[T]], resource: Any
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.run(flow(resource, *args, **kwargs))

        return call
