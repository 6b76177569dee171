"""Forward-test sessions: start, follow, control (``/api/sessions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Flow, Rows, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.paging import cursor_pages, offset_pages

R = TypeVar("R")

PAGE = 1000


class Sessions(Resource[R]):
    @endpoint
    def start(self, body: Mapping[str, Any]) -> Flow[JSON]:
        """Start a session: ``{strategy_id, version?, symbol, timeframe, capital, config?,
        params?, owner?, mode?, agent_id?, agent_symbol?}`` (``mode: "agent"`` sends its
        orders to one of your agents). It is warmed up from history before this answers."""
        return (yield from self._call(calls.post("/api/sessions", dict(body))))

    @endpoint
    def list(
        self,
        *,
        status: str | None = None,
        strategy_id: str | None = None,
        symbol: str | None = None,
    ) -> Flow[Rows]:
        """Your sessions (every page), newest first; ``status`` is ``running``, ``paused``,
        ``stopped`` or ``failed``."""

        def page(cursor: str | None) -> Flow[JSON]:
            params = {
                "status": status,
                "strategy_id": strategy_id,
                "symbol": symbol,
                "limit": 100,
                "cursor": cursor,
            }
            return self._call(calls.get("/api/sessions", params))

        return (yield from cursor_pages(page))

    @endpoint
    def get(self, session_id: str) -> Flow[JSON]:
        """Status, position, cash, equity, live ``metrics``, last bar time and lag."""
        return (yield from self._call(calls.get(f"/api/sessions/{segment(session_id)}")))

    @endpoint
    def trades(self, session_id: str) -> Flow[Rows]:
        """Every closed trade of the session, in order."""
        path = f"/api/sessions/{segment(session_id)}/trades"

        def page(offset: int) -> Flow[JSON]:
            return self._call(calls.get(path, {"offset": offset, "limit": PAGE}))

        return (yield from offset_pages(page, "trades"))

    @endpoint
    def orders(self, session_id: str) -> Flow[Rows]:
        """Every filled order (entries, exits, stops) of the session, in order."""
        path = f"/api/sessions/{segment(session_id)}/orders"

        def page(offset: int) -> Flow[JSON]:
            return self._call(calls.get(path, {"offset": offset, "limit": PAGE}))

        return (yield from offset_pages(page, "orders"))

    @endpoint
    def equity(self, session_id: str, points: int = 1000) -> Flow[JSON]:
        """The equity at each applied bar's close, down-sampled to at most ``points``."""
        path = f"/api/sessions/{segment(session_id)}/equity"
        return (yield from self._call(calls.get(path, {"points": points})))

    @endpoint
    def terminal(self, session_id: str) -> Flow[JSON]:
        """Agent mode: the account as the terminal executed the orders (its open tickets and
        closed trades) beside the fill model's; 409 for a paper session."""
        path = f"/api/sessions/{segment(session_id)}/terminal"
        return (yield from self._call(calls.get(path)))

    @endpoint
    def pause(self, session_id: str) -> Flow[JSON]:
        return (yield from self._call(calls.post(f"/api/sessions/{segment(session_id)}/pause")))

    @endpoint
    def resume(self, session_id: str) -> Flow[JSON]:
        return (yield from self._call(calls.post(f"/api/sessions/{segment(session_id)}/resume")))

    @endpoint
    def stop(self, session_id: str) -> Flow[JSON]:
        """Stop the session for good (its history stays); 409 when it is already stopped."""
        return (yield from self._call(calls.post(f"/api/sessions/{segment(session_id)}/stop")))

    @endpoint
    def restart(self, session_id: str) -> Flow[JSON]:
        """A new session with a stopped (or migrated) session's strategy, symbol, timeframe,
        capital and config; 409 when it is still active or has no runnable strategy."""
        return (yield from self._call(calls.post(f"/api/sessions/{segment(session_id)}/restart")))

    @endpoint
    def delete(self, session_id: str) -> Flow[None]:
        """Stop and delete the session: it answers 404 from then on."""
        yield from self._call(calls.delete(f"/api/sessions/{segment(session_id)}"))
