"""Route dependencies as ``Annotated`` aliases: the service's parts and scoped principals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from algotrade.auth import CurrentPrincipal, Principal
from backtesting_service.config import Settings
from backtesting_service.jobs import JobStore
from backtesting_service.results import ResultStore
from backtesting_service.submission import Submission


@dataclass(frozen=True)
class BacktestServices:
    """What the routes use, built once in the app's lifespan."""

    settings: Settings
    jobs: JobStore
    results: ResultStore
    submission: Submission


def get_services(request: Request) -> BacktestServices:
    services: BacktestServices = request.app.state.resources.extras["backtests"]
    return services


def backtest_reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("backtests:read")
    return principal


def backtest_writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("backtests:write")
    return principal


ServicesDep = Annotated[BacktestServices, Depends(get_services)]
ReaderDep = Annotated[Principal, Depends(backtest_reader)]
WriterDep = Annotated[Principal, Depends(backtest_writer)]
