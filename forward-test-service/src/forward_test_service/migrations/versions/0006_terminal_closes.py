"""Agent mode: a position the terminal closed by itself (its stop, its target, the trader's
hand), as the agent's trade sync reported it, recorded on the entry order that opened it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "forward"
COLUMNS = (
    ("terminal_close_price", sa.Float),
    ("terminal_closed_ts", sa.BigInteger),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("session_orders", sa.Column(name, kind), schema=SCHEMA)
    # Carried by a session.terminal already (`forward_test_service.terminal.settled`).
    op.add_column(
        "session_orders",
        sa.Column("terminal_close_reported", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_session_orders_ticket",
        "session_orders",
        ["agent_ticket"],
        schema=SCHEMA,
        postgresql_where=sa.text("agent_ticket IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_session_orders_ticket", "session_orders", schema=SCHEMA)
    op.drop_column("session_orders", "terminal_close_reported", schema=SCHEMA)
    for name, _ in reversed(COLUMNS):
        op.drop_column("session_orders", name, schema=SCHEMA)
