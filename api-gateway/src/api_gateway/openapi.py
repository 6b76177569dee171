"""One OpenAPI document for everything reachable through the gateway.

The gateway's own paths (auth, API keys) come first; each service's ``/openapi.json`` adds the
paths the route table sends to it. Service documents are cached for ``cache_seconds``; a service
that is down keeps its last good document (or none yet) and is named in ``x-upstreams``, so
``/docs`` always loads. Component names that clash between services get the service's name as
a prefix (``strategy-service.Problem``), with every ``$ref`` rewritten to match.

Every operation also declares what the gateway itself may answer in front of it: a routed one
what `api_gateway.proxy` refuses with before and around the service's own answer, and each of
the gateway's own ``/api/...`` operations its rate limit (`api_gateway.api.deps`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx

from algotrade.openapi import PROBLEM_SCHEMA, declare_problems
from api_gateway.proxy import Upstream
from api_gateway.routing import RouteTable

logger = logging.getLogger(__name__)

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_SECURITY_SCHEMES = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from /api/auth/login, or an API key",
    },
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_GATEWAY_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
_RATE_LIMITED = {"429": "Too many requests: a rate limit said no (see Retry-After)"}
"""What the gateway's own ``/api/...`` operations add: each counts against a rate limit."""
_PROXY_PROBLEMS = {
    "401": "Unauthorized: no credential, or not a valid one",
    "403": "Forbidden: the credential lacks the scope this resource and method need",
    **_RATE_LIMITED,
    "502": "Bad gateway: the service refused the connection or failed to answer",
    "503": "The service is unavailable (its circuit breaker is open), or so is rate limiting",
    "504": "Gateway timeout: the service did not answer in time",
}
"""What the proxy may answer for any routed operation besides the service's own answers."""


@dataclass
class _Cached:
    document: dict[str, Any] | None = None
    fetched_at: float = float("-inf")
    error: str | None = None


class MergedOpenAPI:
    def __init__(
        self,
        *,
        own: Callable[[], dict[str, Any]],
        upstreams: dict[str, Upstream],
        table: RouteTable,
        cache_seconds: float,
        fetch_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own = own
        # Only services the route table reaches contribute paths.
        routed = {rule.upstream for rule in table.rules}
        self._upstreams = {name: u for name, u in upstreams.items() if name in routed}
        self._table = table
        self._cache_seconds = cache_seconds
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._cache = {name: _Cached() for name in self._upstreams}
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        await self._refresh()
        return self._merge()

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            stale = [
                name
                for name, cached in self._cache.items()
                if now - cached.fetched_at >= self._cache_seconds
            ]
            if stale:
                await asyncio.gather(*(self._fetch(name, now) for name in stale))

    async def _fetch(self, name: str, now: float) -> None:
        cached = self._cache[name]
        try:
            response = await self._upstreams[name].client.get(
                "/openapi.json", timeout=self._fetch_timeout
            )
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
        except (httpx.HTTPError, ValueError) as exc:
            cached.error = f"{type(exc).__name__}: {exc}"[:200]
            # Retry a failed service sooner than a healthy one is refreshed.
            cached.fetched_at = now - max(self._cache_seconds - 5.0, 0.0)
            logger.info("openapi of %s unavailable: %s", name, cached.error)
            return
        cached.document, cached.fetched_at, cached.error = document, now, None

    def _merge(self) -> dict[str, Any]:
        merged = copy.deepcopy(self._own())
        paths: dict[str, Any] = merged.setdefault("paths", {})
        components: dict[str, Any] = merged.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(_SECURITY_SCHEMES)
        # The gateway's own Problem: what the declarations below refer to.
        components.setdefault("schemas", {}).setdefault("Problem", PROBLEM_SCHEMA)
        for path, item in paths.items():
            if path.startswith("/api/"):  # all but the probes
                for operation in _operations(item):
                    declare_problems(operation, _RATE_LIMITED)
        status: dict[str, Any] = {}
        for name, cached in self._cache.items():
            status[name] = {"status": "ok" if cached.error is None else "unavailable"}
            if cached.error is not None:
                status[name]["error"] = cached.error
            if cached.document is None:
                status[name]["paths"] = 0
                continue
            document = cached.document
            renames = _component_renames(name, document.get("components", {}), components)
            added = 0
            for path, item in document.get("paths", {}).items():
                if path in paths or not self._table.owns(name, path):
                    continue
                item = _rewrite_refs(copy.deepcopy(item), renames)
                for operation in _operations(item):
                    operation.setdefault("tags", [name])
                    operation["security"] = _GATEWAY_SECURITY
                    if "operationId" in operation:
                        operation["operationId"] = f"{name}.{operation['operationId']}"
                    declare_problems(operation, _PROXY_PROBLEMS)
                paths[path] = item
                added += 1
            for section, entries in document.get("components", {}).items():
                if section == "securitySchemes" or not isinstance(entries, dict):
                    continue
                target = components.setdefault(section, {})
                for key, value in entries.items():
                    target[renames.get((section, key), key)] = _rewrite_refs(
                        copy.deepcopy(value), renames
                    )
            status[name]["paths"] = added
        merged["x-upstreams"] = status
        down = [name for name, s in status.items() if s["status"] != "ok"]
        if down:
            note = (
                f"\n\nNot currently described (service unreachable): {', '.join(down)}; "
                "their paths are shown from the last successful fetch, if any."
            )
            merged.setdefault("info", {})["description"] = (
                merged.get("info", {}).get("description") or ""
            ) + note
        return merged


def _operations(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for method, operation in item.items()
        if method in _HTTP_METHODS and isinstance(operation, dict)
    ]


def _component_renames(
    service: str, incoming: dict[str, Any], existing: dict[str, Any]
) -> dict[tuple[str, str], str]:
    """Clashing component names (same name, different content) get the service as prefix."""
    renames: dict[tuple[str, str], str] = {}
    for section, entries in incoming.items():
        if section == "securitySchemes" or not isinstance(entries, dict):
            continue
        present = existing.get(section, {})
        for key, value in entries.items():
            if key in present and present[key] != value:
                renames[(section, key)] = f"{service}.{key}"
    return renames


def _rewrite_refs(node: Any, renames: dict[tuple[str, str], str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            _, _, section, key = ref.split("/", 3)
            if (section, key) in renames:
                node["$ref"] = f"#/components/{section}/{renames[(section, key)]}"
        for value in node.values():
            _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renames)
    return node


async def merge_in_process(
    own: Callable[[], dict[str, Any]], apps: dict[str, Any]
) -> dict[str, Any]:
    """The merged document for service apps served in this process (no network): what tools
    (the web app's type generator) and the fuzz tests read instead of a running stack."""
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
        for name, app in apps.items()
    }
    try:
        # MergedOpenAPI only reads an upstream's `client` (the gateway's own calls).
        upstreams: Any = {name: SimpleNamespace(client=c) for name, c in clients.items()}
        merged = MergedOpenAPI(
            own=own, upstreams=upstreams, table=RouteTable(), cache_seconds=60, fetch_timeout=30
        )
        return await merged.document()
    finally:
        for client in clients.values():
            await client.aclose()
