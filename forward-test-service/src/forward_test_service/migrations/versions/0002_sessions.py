"""Forward-test sessions, their fills, trades, equity points and recorded gaps/corrections.

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

SCHEMA = "forward"


def _session_fk() -> sa.Column[str]:
    return sa.Column(
        "session_id",
        sa.String(26),
        sa.ForeignKey(f"{SCHEMA}.sessions.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("session_revision", schema=SCHEMA)))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strategy_id", sa.String(100), nullable=False),
        sa.Column("strategy_version", sa.Integer, nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("series_key", sa.String(200), nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("config_id", sa.String(64), nullable=False),
        sa.Column("capital", sa.Float, nullable=False),
        sa.Column("warmup", sa.Integer, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("snapshot", sa.LargeBinary),
        sa.Column("bars_applied", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_bar_ts", sa.BigInteger),
        sa.Column("summary", JSONB),
        sa.Column("error", sa.Text),
        sa.Column("warmed_up_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('running', 'paused', 'stopped', 'failed')", name="ck_sessions_status"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_sessions_user_id_id", "sessions", ["user_id", "id"], schema=SCHEMA)
    op.create_index(
        "ix_sessions_series_key_revision", "sessions", ["series_key", "revision"], schema=SCHEMA
    )
    op.create_table(
        "session_orders",
        _session_fk(),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("fee", sa.Float, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "session_trades",
        _session_fk(),
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
        "session_equity",
        _session_fk(),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("position", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "session_anomalies",
        _session_fk(),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True, server_default="0"),
        sa.Column("bars", sa.Integer, nullable=False, server_default="1"),
        sa.Column("detail", JSONB),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind IN ('gap', 'correction')", name="ck_session_anomalies_kind"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("session_anomalies", schema=SCHEMA)
    op.drop_table("session_equity", schema=SCHEMA)
    op.drop_table("session_trades", schema=SCHEMA)
    op.drop_table("session_orders", schema=SCHEMA)
    op.drop_index("ix_sessions_series_key_revision", "sessions", schema=SCHEMA)
    op.drop_index("ix_sessions_user_id_id", "sessions", schema=SCHEMA)
    op.drop_table("sessions", schema=SCHEMA)
    op.execute(sa.schema.DropSequence(sa.Sequence("session_revision", schema=SCHEMA)))
