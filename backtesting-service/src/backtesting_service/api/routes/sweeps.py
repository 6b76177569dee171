"""``/api/backtests/sweeps``: submit a parameter sweep, follow it, read its ranking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from algotrade.bounds import OFFSET_MAX as MAX_OFFSET
from algotrade.bounds import PAGE_MAX as MAX_PAGE
from algotrade.strict_json import api_router
from backtesting_service.api.deps import ReaderDep, ServicesDep, WriterDep
from backtesting_service.api.views import PROBLEMS, job_public
from backtesting_service.schemas import JobPublic, SweepCreate, SweepResultsPublic

router = api_router(prefix="/api/backtests/sweeps", tags=["sweeps"])


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Submit a sweep: a grid or random sample of parameters, optional walk-forward",
    responses={k: v for k, v in PROBLEMS.items() if k != 409},
)
async def submit_sweep(
    body: SweepCreate, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    """At most 10,000 combinations. The sweep is split into chunks of
    ``SWEEP_CHUNK_SIZE`` combinations, one Kafka message each, so several workers share it."""
    job = await services.submission.sweep(principal.user_id, body)
    return job_public(await services.jobs.submit(job))


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="Status, progress and the best combination so far",
    responses={404: PROBLEMS[404]},
)
async def get_sweep(job_id: str, principal: ReaderDep, services: ServicesDep) -> dict[str, Any]:
    return job_public(await services.jobs.get(principal.user_id, job_id, kind="sweep"))


@router.delete(
    "/{job_id}",
    response_model=JobPublic,
    summary="Cancel a queued or running sweep",
    responses={404: PROBLEMS[404], 409: PROBLEMS[409]},
)
async def cancel_sweep(job_id: str, principal: WriterDep, services: ServicesDep) -> dict[str, Any]:
    await services.jobs.get(principal.user_id, job_id, kind="sweep")
    return job_public(await services.jobs.cancel(principal.user_id, job_id))


@router.get(
    "/{job_id}/results",
    response_model=SweepResultsPublic,
    summary="Combinations ranked by a metric (best first; undefined values last)",
    responses={404: PROBLEMS[404], 422: PROBLEMS[422]},
)
async def sweep_results(
    job_id: str,
    principal: ReaderDep,
    services: ServicesDep,
    sort: str = "sharpe",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Higher is better, except for max_drawdown, max_drawdown_duration and volatility.
    Results of chunks already stored are listed while the sweep runs."""
    job = await services.jobs.get(principal.user_id, job_id, kind="sweep")
    limit = min(limit, services.settings.trades_page_max)
    total, rows = await services.jobs.ranked_results(job.id, sort, limit=limit, offset=offset)
    return {
        "job_id": job.id,
        "sort": sort,
        "total": total,
        "offset": offset,
        "limit": limit,
        "results": [
            {
                "rank": offset + k + 1,
                "index": r.combination,
                "params": r.params,
                "metrics": r.metrics,
                "folds": r.folds,
            }
            for k, r in enumerate(rows)
        ],
    }
