"""Backtests and sweeps: submit, follow, read results (``/api/backtests``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Call, Flow, Rows, json_object, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.frames import trades_frame
from algotrade_client.paging import cursor_pages, offset_pages
from algotrade_client.waiting import Progress, wait_for

if TYPE_CHECKING:
    import pandas as pd

R = TypeVar("R")

JOB_DONE = ("completed", "failed", "cancelled")
TRADES_PAGE = 1000  # the service's largest page


class Backtests(Resource[R]):
    @endpoint
    def submit(self, body: Mapping[str, Any]) -> Flow[JSON]:
        """Queue a backtest: ``{strategy_id, version}`` or ``{graph}``, ``symbol``,
        ``timeframe``, ``start``, ``end`` (exclusive), optional ``params`` and ``config``. The
        answer is the queued job; everything is validated first (a 4xx names what is wrong)."""
        return (yield from self._call(calls.post("/api/backtests", dict(body))))

    @endpoint
    def sweep(self, body: Mapping[str, Any]) -> Flow[JSON]:
        """Queue a parameter sweep: a backtest's body plus ``search`` (``method``,
        ``parameters``), ``metric`` and optional ``walk_forward``. Follow it with `wait`."""
        return (yield from self._call(calls.post("/api/backtests/sweeps", dict(body))))

    @endpoint
    def get(self, job_id: str) -> Flow[JSON]:
        """A backtest or sweep job: ``status``, ``progress``, ``summary`` (metrics), ``error``."""
        return (yield from self._call(calls.get(f"/api/backtests/{segment(job_id)}")))

    @endpoint
    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        strategy_id: str | None = None,
    ) -> Flow[Rows]:
        """Your jobs (every page), newest first, optionally only those of one ``status``,
        ``kind`` (``backtest``, ``sweep``) or strategy."""

        def page(cursor: str | None) -> Flow[JSON]:
            params = {
                "status": status,
                "kind": kind,
                "strategy_id": strategy_id,
                "limit": 100,
                "cursor": cursor,
            }
            return self._call(calls.get("/api/backtests", params))

        return (yield from cursor_pages(page))

    @endpoint
    def wait(
        self,
        job_id: str,
        *,
        progress: Progress | None = None,
        poll: float = 0.5,
        timeout: float = 600.0,
    ) -> Flow[JSON]:
        """Poll the job until it is ``completed``, ``failed`` or ``cancelled``, calling
        ``progress`` with each status; that last status. `TimeoutError` after ``timeout`` s."""
        return (
            yield from wait_for(
                lambda: Backtests.get.flow(self, job_id),
                lambda job: job["status"] in JOB_DONE,
                what=f"job {job_id}",
                progress=progress,
                poll=poll,
                timeout=timeout,
            )
        )

    @endpoint
    def run(
        self,
        body: Mapping[str, Any],
        *,
        progress: Progress | None = None,
        poll: float = 0.5,
        timeout: float = 600.0,
    ) -> Flow[JSON]:
        """`submit` and `wait`: the finished job."""
        job = yield from Backtests.submit.flow(self, body)
        return (
            yield from wait_for(
                lambda: Backtests.get.flow(self, job["id"]),
                lambda status: status["status"] in JOB_DONE,
                what=f"job {job['id']}",
                first=job,
                progress=progress,
                poll=poll,
                timeout=timeout,
            )
        )

    @endpoint
    def trades(self, job_id: str) -> Flow[Rows]:
        """Every trade of a completed backtest, in entry order (409 Conflict before)."""
        path = f"/api/backtests/{segment(job_id)}/trades"

        def page(offset: int) -> Flow[JSON]:
            return self._call(calls.get(path, {"offset": offset, "limit": TRADES_PAGE}))

        return (yield from offset_pages(page, "trades"))

    @endpoint
    def trades_frame(self, job_id: str) -> Flow[pd.DataFrame]:
        """`trades` as a pandas frame (the ``frames`` extra)."""
        return trades_frame((yield from Backtests.trades.flow(self, job_id)))

    @endpoint
    def equity(self, job_id: str, points: int = 1000) -> Flow[JSON]:
        """The equity curve (with drawdown and position), down-sampled to at most ``points``
        points that keep its peaks and troughs."""
        path = f"/api/backtests/{segment(job_id)}/equity"
        return (yield from self._call(calls.get(path, {"points": points})))

    @endpoint
    def sweep_results(self, job_id: str, *, limit: int = 100, sort: str = "sharpe") -> Flow[JSON]:
        """A sweep's best ``limit`` combinations by ``sort`` (higher is better, except for
        drawdowns and volatility): ``{total, results: [{rank, params, metrics}]}``."""
        path = f"/api/backtests/sweeps/{segment(job_id)}/results"
        return (yield from self._call(calls.get(path, {"limit": limit, "sort": sort})))

    @endpoint
    def cancel(self, job_id: str) -> Flow[JSON]:
        """Cancel a queued or running job (409 Conflict once it has ended); the job."""
        call = Call("DELETE", f"/api/backtests/{segment(job_id)}", json_object)
        return (yield from self._call(call))
