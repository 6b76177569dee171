"""`Resource` and `endpoint`: how one description of each endpoint gives both clients their
typed methods.

A resource class (``Strategies``, ``Backtests``...) is generic over its runner. Each of its
methods decorated with `@endpoint` is written once, as a flow (`algotrade_client.calls`).
`endpoint` is a descriptor whose ``__get__`` is overloaded on the runner: read from a
``Strategies[SyncRunner]`` it is a function with the flow's parameters that returns the flow's
result; read from a ``Strategies[AsyncRunner]``, the same parameters returning a coroutine of
it. So ``client.strategies.get`` is ``(strategy_id: str) -> dict`` and
``async_client.strategies.get`` is ``(strategy_id: str) -> Coroutine[..., dict]``, both checked
by mypy, from one definition. A flow that builds on another endpoint calls its flow through
the class: ``yield from Backtests.submit.flow(self, body)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from algotrade_client.calls import Call, Flow
from algotrade_client.credentials import Credentials
from algotrade_client.exchange import exchange

if TYPE_CHECKING:
    from algotrade_client.transport import AsyncRunner, SyncRunner

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class Resource(Generic[R]):
    """One group of endpoints, run by ``runner`` with ``credentials``."""

    def __init__(self, runner: R, credentials: Credentials) -> None:
        self._runner = runner
        self._credentials = credentials

    def _call(self, call: Call[T]) -> Flow[T]:
        return exchange(call, self._credentials)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource>"


class endpoint(Generic[P, T]):
    """Marks a resource's flow as a public method of both clients (see the module doc)."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self.flow = flow
        signature = inspect.signature(flow)
        result = signature.return_annotation  # "Flow[JSON]" -> "JSON": what a call returns
        if isinstance(result, str) and result.startswith("Flow[") and result.endswith("]"):
            result = result[len("Flow[") : -1]
        self._signature = signature.replace(
            parameters=list(signature.parameters.values())[1:], return_annotation=result
        )
        self.__doc__ = flow.__doc__

    @overload
    def __get__(self, resource: None, owner: type[Any]) -> endpoint[P, T]: ...

    @overload
    def __get__(self, resource: Resource[SyncRunner], owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, resource: Resource[AsyncRunner], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, resource: Resource[Any] | None, owner: type[Any]) -> Any:
        if resource is None:
            return self
        bound = resource._runner.bind(self.flow, resource)
        bound.__name__ = self.flow.__name__
        bound.__qualname__ = self.flow.__qualname__
        bound.__doc__ = self.flow.__doc__
        bound.__signature__ = self._signature  # help() and IDEs: the parameters, no ``self``
        return bound
