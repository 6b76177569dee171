"""``/api/analytics``: reports of your sessions, backtests and portfolios as JSON (for the web
app) or as a self-contained HTML tear sheet, and portfolio definitions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response

from algotrade.errors import ValidationFailed
from algotrade.events import ULID_PATTERN
from algotrade.strict_json import api_router
from analytics_service import reports
from analytics_service.api.deps import OptionsDep, ReaderDep, ServicesDep, WriterDep
from analytics_service.models import BACKTEST, SESSION
from analytics_service.schemas import SYMBOL_PATTERN, PortfolioCreate
from analytics_service.tearsheet import render_tearsheet

router = api_router(prefix="/api/analytics", tags=["analytics"])

RunId = Annotated[str, Path(pattern=ULID_PATTERN)]
Points = Annotated[
    int, Query(ge=10, le=200_000, description="chart points per series (figures use every bar)")
]
BenchmarkQuery = Annotated[
    str | None,
    Query(
        pattern=SYMBOL_PATTERN,
        description="benchmark symbol; default: the symbol traded; 'none' for no benchmark",
    ),
]
StrategyId = Annotated[str, Path(min_length=1, max_length=100)]
Version = Annotated[int, Path(ge=1, le=2_147_483_647)]
Confidence = Annotated[
    float, Query(ge=0.5, le=0.999, description="two-sided confidence of the expected range")
]
BacktestQuery = Annotated[
    str | None, Query(pattern=ULID_PATTERN, description="the backtest (default: the latest)")
]
# Reports are rendered from data only: no script may run in one, whatever it contains.
HTML_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "x-content-type-options": "nosniff",
}


def _run_analytics(kind: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The report route of one kind of run (sessions and backtests answer alike)."""

    async def run_analytics(
        run_id: RunId,
        principal: ReaderDep,
        services: ServicesDep,
        options: OptionsDep,
        benchmark: BenchmarkQuery = None,
        points: Points = 2_000,
    ) -> dict[str, Any]:
        report = await reports.run_report(
            services, principal.user_id, kind, run_id, options, benchmark
        )
        return reports.thin(report, points)

    return run_analytics


router.get("/sessions/{run_id}", summary="Performance and risk of one of your sessions")(
    _run_analytics(SESSION)
)
router.get("/backtests/{run_id}", summary="Performance and risk of one of your backtests")(
    _run_analytics(BACKTEST)
)


@router.post("/portfolios", status_code=201, summary="Define a portfolio of your runs")
async def create_portfolio(
    body: PortfolioCreate, principal: WriterDep, services: ServicesDep
) -> dict[str, Any]:
    row = await services.portfolios.create(
        principal.user_id, body, max_members=services.settings.portfolio_max_members
    )
    return _portfolio_public(row)


@router.get("/portfolios", summary="Your portfolios, newest first")
async def list_portfolios(principal: ReaderDep, services: ServicesDep) -> dict[str, Any]:
    rows = await services.portfolios.list(principal.user_id)
    return {"portfolios": [_portfolio_public(r) for r in rows]}


@router.get("/portfolios/{portfolio_id}", summary="A portfolio's performance, risk, correlation")
async def portfolio_analytics(
    portfolio_id: RunId,
    principal: ReaderDep,
    services: ServicesDep,
    options: OptionsDep,
    benchmark: BenchmarkQuery = None,
    points: Points = 2_000,
) -> dict[str, Any]:
    report = await reports.portfolio_report(
        services, principal.user_id, portfolio_id, options, benchmark
    )
    return reports.thin(report, points)


@router.delete("/portfolios/{portfolio_id}", status_code=204, summary="Delete a portfolio")
async def delete_portfolio(
    portfolio_id: RunId, principal: WriterDep, services: ServicesDep
) -> Response:
    await services.portfolios.delete(principal.user_id, portfolio_id)
    return Response(status_code=204)


@router.get(
    "/strategies/{strategy_id}/versions/{version}/comparison",
    summary="Backtest vs live: a strategy version's backtest and its sessions, and their drift",
)
async def comparison(
    strategy_id: StrategyId,
    version: Version,
    principal: ReaderDep,
    services: ServicesDep,
    options: OptionsDep,
    backtest: BacktestQuery = None,
    confidence: Confidence = 0.95,
    points: Points = 2_000,
) -> dict[str, Any]:
    report = await reports.comparison_report(
        services, principal.user_id, strategy_id, version, backtest, options, confidence
    )
    return reports.thin(report, points)


@router.get(
    "/reports/{kind}/{report_id}.html",
    summary="A self-contained HTML tear sheet (comparison: the id is a strategy id)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def html_report(
    kind: Literal["session", "backtest", "portfolio", "comparison"],
    report_id: Annotated[str, Path(min_length=1, max_length=100)],
    principal: ReaderDep,
    services: ServicesDep,
    options: OptionsDep,
    benchmark: BenchmarkQuery = None,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    backtest: BacktestQuery = None,
    confidence: Confidence = 0.95,
) -> Response:
    user = principal.user_id
    if kind == "comparison":
        if version is None:
            raise ValidationFailed(
                "a comparison report needs the strategy version",
                errors=[{"loc": ["query", "version"], "code": "missing", "message": "required"}],
            )
        report = await reports.comparison_report(
            services, user, report_id, version, backtest, options, confidence
        )
    else:
        _check_id(report_id)
        if kind == "portfolio":
            report = await reports.portfolio_report(services, user, report_id, options, benchmark)
        else:
            report = await reports.run_report(services, user, kind, report_id, options, benchmark)
    html = render_tearsheet(report)
    return Response(html, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)


def _check_id(value: str) -> None:
    if not re.fullmatch(ULID_PATTERN, value):
        raise ValidationFailed(
            f"{value!r} is not an id",
            errors=[{"loc": ["path", "report_id"], "code": "pattern", "message": ULID_PATTERN}],
        )


def _portfolio_public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "weighting": row["weighting"],
        "members": row["members"],
        "benchmark": row["benchmark"],
        "created_at": row["created_at"],
    }
