"""The fill model both backtests and forward tests trade through: costs, sizing, stops and the
per-bar simulation (`fills`), and the frozen config that decides its numbers (`config`).

Backtests (the backtesting service) and paper sessions (the forward-test service) share it so
that a replayed session and a backtest of the same bars give the same trades. See
docs/backtesting.md.
"""

from __future__ import annotations

from algotrade.simulation.config import BacktestConfig, ResolvedConfig
from algotrade.simulation.fills import EXIT_REASONS, FillModel

__all__ = ["EXIT_REASONS", "BacktestConfig", "FillModel", "ResolvedConfig"]
