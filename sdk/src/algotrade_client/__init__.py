"""``algotrade_client``: the Python client of the AlgoTrade Beta2 platform, for strategy authors
and batch jobs (and the ``algotrade`` command line).

```python
from algotrade_client import Client

with Client("http://127.0.0.1:8000") as client:
    client.auth.login("ada@example.com", "analytical engine 1843")
    job = client.backtests.run({"strategy_id": ..., "version": 1, "symbol": "SPY", ...})
```

`Client` blocks; `AsyncClient` has the same resources and methods as coroutines. Every non-2xx
answer raises the `ApiError` subclass of its status (`NotFound`, `Unprocessable`...), built from
the problem+json body; no answer at all raises `TransportError`. Like `algotrade_sdk`, it runs
on a user's machine: it imports httpx and the standard library, never the platform's packages;
pandas/pyarrow (``frames`` extra) and websockets (``live`` extra) are imported only by the
methods that need them.

**Design: each endpoint is written once.** A resource (``resources/``) describes each
endpoint as a *flow* (`calls`): a generator that yields the requests to send (and the pauses
of a poll) and receives the answers, doing no I/O itself; paging, polling, refresh-on-401 and
error mapping live in flows too (`paging`, `waiting`, `exchange`). Two runners (`transport`)
execute flows: one with `httpx.Client` and `time.sleep`, one with `httpx.AsyncClient` and
`asyncio.sleep`. The typing is honest without a second copy of the methods: resources are
generic over their runner, and the `endpoints.endpoint` descriptor's ``__get__`` is overloaded
on it, so ``Client().strategies.get`` is typed ``(strategy_id: str) -> dict`` and
``AsyncClient().strategies.get`` ``(strategy_id: str) -> Coroutine[..., dict]`` from the same
definition (ParamSpec keeps the parameters). The alternatives were two facades generated from
an endpoint table (a generator and a freshness test to keep), or unasync-style rewriting (two
copies on disk); the descriptor needs neither. Only the WebSocket (`subscribe`) has two small
loops, around one I/O-free protocol state.

Modules: `errors` (ApiError and its subclasses, TransportError), `calls` (Call, Flow, steps),
`credentials`, `exchange` (one call: credentials, refresh, problems), `transport` (the
runners), `endpoints` (Resource, endpoint), `paging`, `waiting`, `frames`, `subscribe`,
`client` (Client, AsyncClient), and one module per resource.
"""

from algotrade_client.client import AsyncClient, Client
from algotrade_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    Unprocessable,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "Unprocessable",
]
