"""Backtests: the fill model, the compiled simulation, results, and parameter sweeps.

Lives in ``shared`` so the backtesting service, forward tests (the paper broker reuses
`algotrade.backtest.fills`) and analytics share one set of semantics. See docs/backtesting.md.
"""

from __future__ import annotations

from algotrade.backtest.config import BacktestConfig, ResolvedConfig
from algotrade.backtest.engine import run_backtest
from algotrade.backtest.errors import BacktestInvalid
from algotrade.backtest.fills import EXIT_REASONS, FillModel
from algotrade.backtest.result import BacktestResult, Trades

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
