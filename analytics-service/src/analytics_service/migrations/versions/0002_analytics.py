"""Runs (sessions and backtests), session equity points, trades and fills, portfolios.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "analytics"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strategy_id", sa.String(100)),
        sa.Column("strategy_version", sa.Integer),
        sa.Column("plan_id", sa.String(64)),
        sa.Column("symbol", sa.String(32)),
        sa.Column("timeframe", sa.String(8)),
        sa.Column("calendar", sa.String(16)),
        sa.Column("capital", sa.Float),
        sa.Column("warmup_bars", sa.Integer),
        sa.Column("bars_applied", sa.BigInteger),
        sa.Column("results_prefix", sa.String(300)),
        sa.Column("summary", JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_runs_user_strategy",
        "runs",
        ["user_id", "strategy_id", "strategy_version"],
        schema=SCHEMA,
    )
    op.create_table(
        "run_points",
        sa.Column("run_id", sa.String(26), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("position", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "run_trades",
        sa.Column("run_id", sa.String(26), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("side", sa.String(5), nullable=False),
        sa.Column("entry_ts", sa.BigInteger, nullable=False),
        sa.Column("exit_ts", sa.BigInteger, nullable=False),
        sa.Column("entry_price", sa.Float, nullable=False),
        sa.Column("exit_price", sa.Float, nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("pnl", sa.Float, nullable=False),
        sa.Column("fees", sa.Float, nullable=False),
        sa.Column("exit_reason", sa.String(32), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "run_fills",
        sa.Column("run_id", sa.String(26), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("notional", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "portfolios",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("weighting", sa.String(16), nullable=False),
        sa.Column("members", JSONB, nullable=False),
        sa.Column("benchmark", sa.String(32)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_portfolios_user", "portfolios", ["user_id", "id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("portfolios", "run_fills", "run_trades", "run_points", "runs"):
        op.drop_table(table, schema=SCHEMA)
