"""Backtest jobs, sweep chunks and sweep results.

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

SCHEMA = "backtest"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strategy_id", sa.String(100)),
        sa.Column("strategy_version", sa.Integer),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("config_id", sa.String(64), nullable=False),
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("combinations", sa.Integer, nullable=False, server_default="1"),
        sa.Column("chunks_total", sa.Integer, nullable=False, server_default="1"),
        sa.Column("chunks_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("bars", sa.BigInteger),
        sa.Column("summary", JSONB),
        sa.Column("error", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind IN ('backtest', 'sweep')", name="ck_jobs_kind"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name="ck_jobs_status",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_jobs_user_id_id", "jobs", ["user_id", "id"], schema=SCHEMA)
    op.create_index(
        "ix_jobs_user_id_strategy_id", "jobs", ["user_id", "strategy_id", "id"], schema=SCHEMA
    )
    op.create_table(
        "sweep_chunks",
        sa.Column(
            "job_id",
            sa.String(26),
            sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("first", sa.Integer, nullable=False),
        sa.Column("last", sa.Integer, nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "sweep_results",
        sa.Column(
            "job_id",
            sa.String(26),
            sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("combination", sa.Integer, primary_key=True),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("metrics", JSONB, nullable=False),
        sa.Column("folds", JSONB, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("sweep_results", schema=SCHEMA)
    op.drop_table("sweep_chunks", schema=SCHEMA)
    op.drop_index("ix_jobs_user_id_strategy_id", "jobs", schema=SCHEMA)
    op.drop_index("ix_jobs_user_id_id", "jobs", schema=SCHEMA)
    op.drop_table("jobs", schema=SCHEMA)
