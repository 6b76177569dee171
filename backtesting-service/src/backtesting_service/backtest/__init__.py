"""Backtests: the compiled simulation over history (`run`), its results (`result`) and
parameter sweeps (`sweep`), on the shared fill model (`algotrade.simulation`). See
docs/backtesting.md.
"""

from __future__ import annotations

from algotrade.simulation import EXIT_REASONS, BacktestConfig, FillModel, ResolvedConfig
from backtesting_service.backtest.errors import BacktestInvalid
from backtesting_service.backtest.result import BacktestResult, Trades
from backtesting_service.backtest.run import run_backtest

__all__ = [
    "EXIT_REASONS",
    "BacktestConfig",
    "BacktestInvalid",
    "BacktestResult",
    "FillModel",
    "ResolvedConfig",
    "Trades",
    "run_backtest",
]
