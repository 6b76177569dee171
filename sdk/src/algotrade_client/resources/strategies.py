"""Strategies, their versions, node types and templates (``/api/strategies``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Call, Flow, Rows, json_object, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.paging import offset_pages

R = TypeVar("R")

PAGE = 100  # the service's largest page


class Strategies(Resource[R]):
    @endpoint
    def list(self, *, q: str | None = None, sort: str | None = None) -> Flow[Rows]:
        """Your strategies (every page), most recently updated first; ``q`` searches name and
        description, ``sort`` is ``updated``, ``created`` or ``name``."""

        def page(offset: int) -> Flow[JSON]:
            params = {"limit": PAGE, "offset": offset, "q": q, "sort": sort}
            return self._call(calls.get("/api/strategies", params))

        return (yield from offset_pages(page, "data", "count"))

    @endpoint
    def get(self, strategy_id: str) -> Flow[JSON]:
        """A strategy with its current ``graph``, ``current_version`` and ``plan_id``."""
        return (yield from self._call(calls.get(f"/api/strategies/{segment(strategy_id)}")))

    @endpoint
    def create(
        self, name: str, graph: Mapping[str, Any], *, description: str | None = None
    ) -> Flow[JSON]:
        """Save a graph as a new strategy (its version 1). An invalid graph is a 422 whose
        ``errors`` carry every engine problem (``node_id``, ``port``, ``code``)."""
        body: JSON = {"name": name, "graph": dict(graph)}
        if description is not None:
            body["description"] = description
        return (yield from self._call(calls.post("/api/strategies", body)))

    @endpoint
    def new_version(
        self,
        strategy_id: str,
        graph: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Flow[JSON]:
        """Save ``graph`` as the strategy's next version. With ``expected_version`` it applies
        only if that is still the current version (else a 409 Conflict)."""
        body: JSON = {"graph": dict(graph)}
        if expected_version is not None:
            body["expected_version"] = expected_version
        call = Call("PATCH", f"/api/strategies/{segment(strategy_id)}", json_object, json=body)
        return (yield from self._call(call))

    @endpoint
    def versions(self, strategy_id: str) -> Flow[Rows]:
        """The strategy's version summaries (every page), newest first."""
        path = f"/api/strategies/{segment(strategy_id)}/versions"

        def page(offset: int) -> Flow[JSON]:
            return self._call(calls.get(path, {"limit": PAGE, "offset": offset}))

        return (yield from offset_pages(page, "data", "count"))

    @endpoint
    def validate(self, graph: Mapping[str, Any]) -> Flow[JSON]:
        """Check a graph without saving it: ``{valid, problems, summary}`` (200 either way)."""
        return (
            yield from self._call(calls.post("/api/strategies/validate", {"graph": dict(graph)}))
        )

    @endpoint
    def compile(
        self,
        strategy_id: str,
        *,
        version: int | None = None,
        parameters: Mapping[str, float] | None = None,
    ) -> Flow[JSON]:
        """The plan summary of a version (default: the current one): warm-up, parameters,
        signals, risk; with ``parameters``, of the plan re-resolved with those values."""
        path = f"/api/strategies/{segment(strategy_id)}/compile"
        body = {"parameters": dict(parameters)} if parameters else None
        return (yield from self._call(calls.post(path, body, {"version": version})))

    @endpoint
    def node_types(self) -> Flow[Rows]:
        """The node-type registry: ports, params, ranges, warm-up and docs of each type."""
        answer = yield from self._call(calls.get("/api/strategies/node-types"))
        return list(answer["data"])

    @endpoint
    def templates(self) -> Flow[Rows]:
        """The built-in templates, with their docs, parameters and graphs."""
        answer = yield from self._call(calls.get("/api/strategies/templates"))
        return list(answer["data"])

    @endpoint
    def instantiate(
        self,
        template: str,
        name: str | None = None,
        parameters: Mapping[str, float] | None = None,
        *,
        description: str | None = None,
    ) -> Flow[JSON]:
        """A new strategy from ``template`` with the given parameter values as its defaults
        (422 for an unknown parameter or a value out of its range)."""
        body: JSON = {"parameters": dict(parameters or {})}
        if name is not None:
            body["name"] = name
        if description is not None:
            body["description"] = description
        path = f"/api/strategies/templates/{segment(template)}/instantiate"
        return (yield from self._call(calls.post(path, body)))
