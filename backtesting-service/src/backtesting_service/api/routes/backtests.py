"""``/api/backtests``: submit, list, read, cancel backtests; their trades and equity curve."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import Query
from sqlalchemy import Row

from algotrade.bounds import OFFSET_MAX as MAX_OFFSET
from algotrade.bounds import PAGE_MAX as MAX_PAGE
from algotrade.errors import Conflict
from algotrade.events import ULID_PATTERN as JOB_ID_PATTERN
from algotrade.strict_json import api_router
from backtesting_service.api.deps import ReaderDep, ServicesDep, WriterDep
from backtesting_service.api.views import PROBLEMS, job_public
from backtesting_service.backtest.result import trade_rows
from backtesting_service.downsample import lttb_indices
from backtesting_service.results import EQUITY, TRADES
from backtesting_service.schemas import (
    BacktestCreate,
    EquityPublic,
    JobKind,
    JobPublic,
    JobsPublic,
    JobStatus,
    TradesPage,
)
from backtesting_service.services import BacktestServices

router = api_router(prefix="/api/backtests", tags=["backtests"])


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Submit a backtest (answers at once with the queued job)",
    responses={k: v for k, v in PROBLEMS.items() if k != 409},
)
async def submit_backtest(
    body: BacktestCreate, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    """Validates the strategy (compiled), parameters, config and that the range has bars;
    then stores the job and its work message together. Poll the job or follow
    ``backtest.events`` for progress."""
    job = await services.submission.backtest(principal.user_id, body)
    return job_public(await services.jobs.submit(job))


@router.get("", response_model=JobsPublic, summary="Your backtests and sweeps, newest first")
async def list_backtests(
    principal: ReaderDep,
    services: ServicesDep,
    status: JobStatus | None = None,
    strategy_id: str | None = None,
    kind: JobKind | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=JOB_ID_PATTERN, description="next_cursor of the previous page"),
    ] = None,
) -> dict[str, Any]:
    limit = min(limit, services.settings.jobs_page_max)
    rows = await services.jobs.page(
        principal.user_id,
        limit=limit + 1,
        before=cursor,
        status=status,
        strategy_id=strategy_id,
        kind=kind,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [job_public(r) for r in rows],
        "next_cursor": rows[-1].id if more else None,
    }


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="Status, progress and summary metrics",
    responses={404: PROBLEMS[404]},
)
async def get_backtest(job_id: str, principal: ReaderDep, services: ServicesDep) -> dict[str, Any]:
    return job_public(await services.jobs.get(principal.user_id, job_id))


@router.delete(
    "/{job_id}",
    response_model=JobPublic,
    summary="Cancel a queued or running backtest or sweep",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def cancel_backtest(
    job_id: str, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    """Workers check between chunks; a chunk in progress finishes but is not stored."""
    return job_public(await services.jobs.cancel(principal.user_id, job_id))


@router.get(
    "/{job_id}/trades",
    response_model=TradesPage,
    summary="Trades of a completed backtest, in entry order",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def get_trades(
    job_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    job = await _completed_backtest(services, principal.user_id, job_id)
    table = await services.results.table(job.user_id, job.id, TRADES)
    limit = min(limit, services.settings.trades_page_max)
    return {
        "job_id": job.id,
        "total": table.num_rows,
        "offset": offset,
        "limit": limit,
        "trades": trade_rows(table.slice(offset, limit)),
    }


@router.get(
    "/{job_id}/equity",
    response_model=EquityPublic,
    summary="The equity curve, down-sampled for charts (LTTB)",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def get_equity(
    job_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    points: Annotated[int, Query(ge=10, le=MAX_PAGE)] = 1000,
) -> dict[str, Any]:
    """At most ``points`` points chosen by Largest-Triangle-Three-Buckets on the equity, so
    peaks and troughs survive; drawdown and position are taken at the same bars."""
    job = await _completed_backtest(services, principal.user_id, job_id)
    table = await services.results.table(job.user_id, job.id, EQUITY)
    points = min(points, services.settings.equity_points_max)
    ts = table.column("ts").cast("int64").to_numpy()
    equity = table.column("equity").to_numpy()
    keep = lttb_indices(ts.astype(np.float64), equity, points)
    picked = table.take(keep)
    rows = picked.to_pylist()
    return {
        "job_id": job.id,
        "total_points": table.num_rows,
        "method": "all" if len(keep) == table.num_rows else "lttb",
        "points": rows,
    }


async def _completed_backtest(services: BacktestServices, user_id: str, job_id: str) -> Row[Any]:
    job = await services.jobs.get(user_id, job_id, kind="backtest")
    if job.status != "completed":
        raise Conflict(f"backtest {job_id} is {job.status}; results exist once it completes")
    return job
