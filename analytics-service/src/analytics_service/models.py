"""Tables the analytics service owns, all in the ``analytics`` schema.

``runs`` holds one row per forward-test session or finished backtest the service has heard of,
with what it needs to analyse it (owner, strategy version, market, capital, calendar). A
session's equity curve and closed trades come from ``session.events.v1`` and live here, keyed
by bar time and trade number, so an event applied twice writes nothing twice. A backtest's
curve and trades stay in S3 where the backtesting service wrote them (``results_prefix``).
``portfolios`` are users' definitions: members and weighting, analysed when read.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from algotrade.db import service_schema

SCHEMA = service_schema("analytics")
Base = SCHEMA.base
metadata = Base.metadata

SESSION: Final = "session"
BACKTEST: Final = "backtest"
KINDS: Final = (SESSION, BACKTEST)

runs = Table(
    "runs",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("user_id", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("strategy_id", String(100)),
    Column("strategy_version", Integer),
    Column("plan_id", String(64)),
    Column("symbol", String(32)),
    Column("timeframe", String(8)),
    Column("calendar", String(16)),
    Column("capital", Float),
    Column("warmup_bars", Integer),
    # The latest session.equity: bars the session applied (warm-up history included).
    Column("bars_applied", BigInteger),
    Column("results_prefix", String(300)),  # a backtest's S3 prefix
    Column("summary", JSONB),  # a backtest's summary as completed
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ix_runs_user_strategy", "user_id", "strategy_id", "strategy_version"),
)

run_points = Table(
    "run_points",
    metadata,
    Column("run_id", String(26), primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("equity", Float, nullable=False),
    Column("position", Float, nullable=False),
)

run_trades = Table(
    "run_trades",
    metadata,
    Column("run_id", String(26), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("side", String(5), nullable=False),
    Column("entry_ts", BigInteger, nullable=False),
    Column("exit_ts", BigInteger, nullable=False),
    Column("entry_price", Float, nullable=False),
    Column("exit_price", Float, nullable=False),
    Column("quantity", Float, nullable=False),
    Column("pnl", Float, nullable=False),
    Column("fees", Float, nullable=False),
    Column("exit_reason", String(32), nullable=False),
)

run_fills = Table(
    "run_fills",
    metadata,
    Column("run_id", String(26), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("notional", Float, nullable=False),
)

portfolios = Table(
    "portfolios",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("weighting", String(16), nullable=False),
    Column("members", JSONB, nullable=False),  # [{kind, id, weight?}]
    Column("benchmark", String(32)),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ix_portfolios_user", "user_id", "id"),
)
