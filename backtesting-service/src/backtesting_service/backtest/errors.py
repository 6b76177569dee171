"""Errors of backtests and sweeps, rooted at `algotrade.errors.AlgoTradeError`."""

from __future__ import annotations

from algotrade.errors import ValidationFailed


class BacktestInvalid(ValidationFailed):
    """A backtest or sweep that cannot run as asked; ``errors`` locate each problem."""

    title = "Invalid backtest"
    code = "backtest_invalid"
