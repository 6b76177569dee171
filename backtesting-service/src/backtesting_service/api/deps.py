"""Route dependencies as ``Annotated`` aliases: the service's domain objects (one
``ServicesDep``) and scoped principals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from algotrade.auth import CurrentPrincipal, Principal
from algotrade.service import services_dependency
from backtesting_service.services import BacktestServices


def backtest_reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("backtests:read")
    return principal


def backtest_writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("backtests:write")
    return principal


ServicesDep = Annotated[BacktestServices, Depends(services_dependency(BacktestServices))]
ReaderDep = Annotated[Principal, Depends(backtest_reader)]
WriterDep = Annotated[Principal, Depends(backtest_writer)]
