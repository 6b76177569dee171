"""Agent mode: the terminal's own closes as deals, partial ones included, with their costs.

0006 recorded one close per entry (what was left of the position, at one price), and only once
the terminal no longer held the ticket: a partial close by the terminal (half of it taken by
hand, a partial target) went unrecorded until the rest was closed, and then at the rest's price.
``terminal_deals`` holds each deal the trade sync reports, once per agent (by the terminal's
deal id, or its time, volume and price), with its commission and swap; acks may report their
commission (``session_orders.agent_commission``). The closes recorded by 0006 move to deals that
close all that was left (``volume`` null).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "forward"
OLD_COLUMNS = ("terminal_close_price", "terminal_closed_ts", "terminal_close_reported")


def upgrade() -> None:
    op.add_column("session_orders", sa.Column("agent_commission", sa.Float), schema=SCHEMA)
    op.create_table(
        "terminal_deals",
        sa.Column("agent_id", sa.String(26), primary_key=True),
        sa.Column("ticket", sa.String(64), primary_key=True),
        sa.Column("deal", sa.Text, primary_key=True),
        sa.Column("session_id", sa.String(26), nullable=False),
        sa.Column("entry_seq", sa.Integer, nullable=False),
        sa.Column("volume", sa.Float),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("commission", sa.Float, nullable=False, server_default="0"),
        sa.Column("swap", sa.Float, nullable=False, server_default="0"),
        sa.Column("reported", sa.Boolean, nullable=False, server_default="false"),
        sa.ForeignKeyConstraint(
            ["session_id", "entry_seq"],
            [f"{SCHEMA}.session_orders.session_id", f"{SCHEMA}.session_orders.seq"],
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_terminal_deals_session",
        "terminal_deals",
        ["session_id", "entry_seq"],
        schema=SCHEMA,
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.terminal_deals "
        "(agent_id, ticket, deal, session_id, entry_seq, volume, price, ts, reported) "
        "SELECT s.agent_id, o.agent_ticket, 'close', o.session_id, o.seq, NULL, "
        "o.terminal_close_price, coalesce(o.terminal_closed_ts, o.ts), o.terminal_close_reported "
        f"FROM {SCHEMA}.session_orders AS o JOIN {SCHEMA}.sessions AS s ON s.id = o.session_id "
        "WHERE o.terminal_close_price IS NOT NULL AND s.agent_id IS NOT NULL "
        "AND o.agent_ticket IS NOT NULL ON CONFLICT DO NOTHING"
    )
    for name in OLD_COLUMNS:
        op.drop_column("session_orders", name, schema=SCHEMA)


def downgrade() -> None:
    """Back to one close per entry: the last deal's price and time (partial closes are lost)."""
    op.add_column("session_orders", sa.Column("terminal_close_price", sa.Float), schema=SCHEMA)
    op.add_column("session_orders", sa.Column("terminal_closed_ts", sa.BigInteger), schema=SCHEMA)
    op.add_column(
        "session_orders",
        sa.Column("terminal_close_reported", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )
    op.execute(
        f"UPDATE {SCHEMA}.session_orders AS o SET terminal_close_price = d.price, "
        "terminal_closed_ts = d.ts, terminal_close_reported = d.reported "
        "FROM (SELECT DISTINCT ON (session_id, entry_seq) * "
        f"FROM {SCHEMA}.terminal_deals ORDER BY session_id, entry_seq, ts DESC) AS d "
        "WHERE o.session_id = d.session_id AND o.seq = d.entry_seq"
    )
    op.drop_index("ix_terminal_deals_session", "terminal_deals", schema=SCHEMA)
    op.drop_table("terminal_deals", schema=SCHEMA)
    op.drop_column("session_orders", "agent_commission", schema=SCHEMA)
