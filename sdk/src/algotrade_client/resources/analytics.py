"""Performance and risk reports, portfolios, backtest vs live, tear sheets
(``/api/analytics``). Reports are built from the platform's events, so a run just finished
answers 404 until the analytics service has consumed them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Call, Flow, Rows, segment, text
from algotrade_client.endpoints import Resource, endpoint

R = TypeVar("R")

Option = str | int | float
"""Report options: ``confidence``, ``horizon``, ``window``, ``top``, ``benchmark``, ``points``."""


class Analytics(Resource[R]):
    @endpoint
    def session(self, /, session_id: str, **options: Option) -> Flow[JSON]:
        """A session's report: metrics, risk, drawdowns, ``coverage``..."""
        path = f"/api/analytics/sessions/{segment(session_id)}"
        return (yield from self._call(calls.get(path, options)))

    @endpoint
    def backtest(self, /, job_id: str, **options: Option) -> Flow[JSON]:
        """A backtest's report."""
        path = f"/api/analytics/backtests/{segment(job_id)}"
        return (yield from self._call(calls.get(path, options)))

    @endpoint
    def create_portfolio(
        self,
        name: str,
        members: Sequence[Mapping[str, Any]],
        *,
        weighting: str = "capital",
        benchmark: str | None = None,
    ) -> Flow[JSON]:
        """Define a portfolio of your runs: ``members`` are ``{"kind": "session" |
        "backtest", "id": ..., "weight"?}``; ``weighting`` is ``capital``, ``equal`` or
        ``weights``."""
        body: JSON = {"name": name, "members": [dict(m) for m in members], "weighting": weighting}
        if benchmark is not None:
            body["benchmark"] = benchmark
        return (yield from self._call(calls.post("/api/analytics/portfolios", body)))

    @endpoint
    def portfolios(self) -> Flow[Rows]:
        answer = yield from self._call(calls.get("/api/analytics/portfolios"))
        return list(answer["portfolios"])

    @endpoint
    def portfolio(self, /, portfolio_id: str, **options: Option) -> Flow[JSON]:
        """A portfolio's report, analysed now from its members."""
        path = f"/api/analytics/portfolios/{segment(portfolio_id)}"
        return (yield from self._call(calls.get(path, options)))

    @endpoint
    def comparison(
        self, strategy_id: str, version: int, *, backtest: str | None = None
    ) -> Flow[JSON]:
        """Backtest vs live for a strategy version: its backtest (the latest, unless named)
        beside its sessions, their drift, and a ``verdict``."""
        path = f"/api/analytics/strategies/{segment(strategy_id)}/versions/{version}/comparison"
        return (yield from self._call(calls.get(path, {"backtest": backtest})))

    @endpoint
    def report_html(self, /, kind: str, report_id: str, **params: Option) -> Flow[str]:
        """A self-contained HTML tear sheet: ``kind`` is ``session``, ``backtest``,
        ``portfolio`` or ``comparison`` (then ``report_id`` is the strategy id and ``version``
        a required parameter)."""
        path = f"/api/analytics/reports/{segment(kind)}/{segment(report_id)}.html"
        return (yield from self._call(Call("GET", path, text, params=params)))
