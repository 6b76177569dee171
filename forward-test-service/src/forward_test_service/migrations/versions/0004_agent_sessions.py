"""Sessions in agent mode: the agent a session trades through, and each order's command and
execution.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "forward"


def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column("mode", sa.String(8), nullable=False, server_default="paper"),
        schema=SCHEMA,
    )
    op.add_column("sessions", sa.Column("agent_id", sa.String(26)), schema=SCHEMA)
    op.add_column("sessions", sa.Column("agent_symbol", sa.String(64)), schema=SCHEMA)
    for name, kind in (
        ("command_id", sa.String(26)),
        ("agent_state", sa.String(16)),
        ("agent_ticket", sa.String(64)),
        ("agent_price", sa.Float),
        ("agent_volume", sa.Float),
        ("agent_error", sa.Text),
    ):
        op.add_column("session_orders", sa.Column(name, kind), schema=SCHEMA)
    op.create_index("ix_session_orders_command", "session_orders", ["command_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_session_orders_command", "session_orders", schema=SCHEMA)
    for name in (
        "agent_error",
        "agent_volume",
        "agent_price",
        "agent_ticket",
        "agent_state",
        "command_id",
    ):
        op.drop_column("session_orders", name, schema=SCHEMA)
    for name in ("agent_symbol", "agent_id", "mode"):
        op.drop_column("sessions", name, schema=SCHEMA)
