"""Helpers for the fuzz tests (imported by the tests and by conftest).

The OpenAPI documents are built when the test module is imported, because schemathesis makes
one test per operation at collection time: each service's document from its own app, and the
gateway's merged document by the gateway's own `MergedOpenAPI` over those apps. A test checks
that the running services and gateway serve these same documents.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from algotrade_testkit.services import key_settings

# The services with HTTP operations, by the name the gateway's route table uses.
SERVICES = (
    "strategy-service",
    "market-data-service",
    "backtesting-service",
    "forward-test-service",
    "notification-service",
    "analytics-service",
)
PACKAGES = {
    "api-gateway": "api_gateway",
    "strategy-service": "strategy_service",
    "market-data-service": "market_data_service",
    "backtesting-service": "backtesting_service",
    "forward-test-service": "forward_test_service",
    "notification-service": "notification_service",
    "analytics-service": "analytics_service",
}


@dataclass(frozen=True)
class Target:
    """Where one API answers and the credentials that get a request past its authentication."""

    name: str
    url: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Platform:
    services: Mapping[str, Target]
    gateway: Target


def build_app(service: str, **settings: Any) -> Any:
    """``service``'s app from its own factory and Settings (keys generated for this run)."""
    package = PACKAGES[service]
    main = importlib.import_module(f"{package}.main")
    config = importlib.import_module(f"{package}.config")
    values = {"environment": "test", **key_settings(), **settings}
    return main.create_app(config.Settings(**values))


@functools.cache
def documents() -> dict[str, dict[str, Any]]:
    """The OpenAPI document of each service in `SERVICES` and the gateway's merged one."""
    from api_gateway.openapi import merge_in_process

    apps = {name: build_app(name) for name in PACKAGES if name != "api-gateway"}
    gateway = build_app("api-gateway")
    docs = {name: apps[name].openapi() for name in SERVICES}
    docs["api-gateway"] = asyncio.run(merge_in_process(gateway.openapi, apps))
    return docs


def same_operations(served: dict[str, Any], fuzzed: dict[str, Any]) -> bool:
    """Whether two documents describe the same operations and models (the merged document's
    ``x-upstreams`` and description say which services answered, which may differ)."""
    return all(served.get(k) == fuzzed.get(k) for k in ("paths", "components"))


START_SECONDS = 180  # seven apps in one event loop, on a loaded two-core machine


class ServersThread:
    """uvicorn servers for ``apps`` (name -> (app, port)), all in one event loop on a thread
    of their own: schemathesis drives synchronous test functions, which would block the test's
    own loop."""

    def __init__(self, apps: Mapping[str, tuple[ASGIApp, int]]) -> None:
        self._apps = apps
        self._servers: list[uvicorn.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-servers", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the thread that waits for readiness
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        tasks = []
        for name, (app, port) in self._apps.items():
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
            )
            server = uvicorn.Server(config)
            self._servers.append(server)
            tasks.append(asyncio.create_task(server.serve(), name=name))
        while not all(server.started for server in self._servers):
            for task in tasks:
                if task.done():
                    task.result()  # raises what stopped it, if anything did
                    raise RuntimeError(f"{task.get_name()} stopped while starting")
            await asyncio.sleep(0.02)
        self._ready.set()
        await asyncio.gather(*tasks)

    def __enter__(self) -> ServersThread:
        self._thread.start()
        started = self._ready.wait(timeout=START_SECONDS)
        if not started or self._error is not None:
            self.__exit__()
            # The cause in the message itself: a report's one-line summary of each error is
            # often all a CI log keeps.
            why = repr(self._error) if started else f"not ready within {START_SECONDS} s"
            raise RuntimeError(f"the fuzzed services did not start: {why}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.should_exit = True
        self._thread.join(timeout=30)
