"""Execution agents and their ended commands.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "forward"


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("heartbeat_seconds", sa.Float, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("platform IN ('mt5', 'ninjatrader', 'other')", name="ck_agents_platform"),
        schema=SCHEMA,
    )
    op.create_index("ix_agents_user_id_id", "agents", ["user_id", "id"], schema=SCHEMA)
    op.create_table(
        "agent_commands",
        sa.Column(
            "agent_id",
            sa.String(26),
            sa.ForeignKey(f"{SCHEMA}.agents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("command_id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(26)),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('executed', 'rejected', 'failed', 'expired')",
            name="ck_agent_commands_outcome",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("agent_commands", schema=SCHEMA)
    op.drop_index("ix_agents_user_id_id", "agents", schema=SCHEMA)
    op.drop_table("agents", schema=SCHEMA)
