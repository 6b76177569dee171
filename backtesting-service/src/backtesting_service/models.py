"""Tables the backtesting service owns, all in the ``backtest`` schema."""

from __future__ import annotations

from algotrade.db import service_schema

SCHEMA = service_schema("backtest")
Base = SCHEMA.base
