"""Owners of market data: every series belongs to a user or to the platform.

``bars``, ``series`` and ``gaps`` gain an ``owner`` (a user id; empty for the platform's public
reference data, since a NULL cannot sit in a primary key) that leads their keys, so two users'
series of one symbol are distinct rows. ``symbols`` records who owns which symbol and its
visibility; ``symbol_shares`` lists the users an owner shared a symbol with (read-only).

Everything stored before this revision becomes platform data: nothing recorded who pushed it,
and it was readable by every user already, so calling it public leaks nothing new.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "market"


def _owner(name: str = "owner") -> sa.Column[str]:
    return sa.Column(name, sa.String(100), nullable=False, server_default="")


def upgrade() -> None:
    for table in ("bars", "series", "gaps", "imports"):
        op.add_column(table, _owner(), schema=S)
    # A replay writes into its user's own series and reads those of ``source_owner``.
    op.add_column("replays", _owner("source_owner"), schema=S)
    op.drop_constraint("pk_bars", "bars", schema=S, type_="primary")
    op.create_primary_key("pk_bars", "bars", ["owner", "symbol", "timeframe", "ts"], schema=S)
    op.drop_constraint("pk_series", "series", schema=S, type_="primary")
    op.create_primary_key("pk_series", "series", ["owner", "symbol", "timeframe"], schema=S)
    op.drop_index("ix_gaps_series", "gaps", schema=S)
    op.create_index(
        "ix_gaps_series", "gaps", ["owner", "symbol", "timeframe", "start_ts"], schema=S
    )
    op.create_table(
        "symbols",
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("visibility", sa.String(8), nullable=False, server_default="private"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("owner", "symbol", name="pk_symbols"),
        sa.CheckConstraint("visibility IN ('private', 'public')", name="ck_symbols_visibility"),
        # The platform's data is public; a user's is private unless shared user by user.
        sa.CheckConstraint(
            "(owner = '') = (visibility = 'public')", name="ck_symbols_platform_public"
        ),
        schema=S,
    )
    op.create_index("ix_symbols_symbol", "symbols", ["symbol"], schema=S)
    op.create_table(
        "symbol_shares",
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("grantee", sa.String(100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("owner", "symbol", "grantee", name="pk_symbol_shares"),
        sa.ForeignKeyConstraint(
            ["owner", "symbol"],
            [f"{S}.symbols.owner", f"{S}.symbols.symbol"],
            ondelete="CASCADE",
            name="fk_symbol_shares_symbol",
        ),
        schema=S,
    )
    op.create_index(
        "ix_symbol_shares_grantee", "symbol_shares", ["grantee", "symbol"], schema=S
    )
    op.execute(
        sa.text(
            f"INSERT INTO {S}.symbols (owner, symbol, visibility) "
            f"SELECT DISTINCT '', symbol, 'public' FROM {S}.series"
        )
    )


def downgrade() -> None:
    op.drop_table("symbol_shares", schema=S)
    op.drop_table("symbols", schema=S)
    # Users' series cannot fold back into one namespace without losing rows: keep the
    # platform's and drop the rest.
    for table in ("bars", "series", "gaps"):
        op.execute(sa.text(f"DELETE FROM {S}.{table} WHERE owner <> ''"))
    op.drop_index("ix_gaps_series", "gaps", schema=S)
    op.create_index("ix_gaps_series", "gaps", ["symbol", "timeframe", "start_ts"], schema=S)
    op.drop_constraint("pk_series", "series", schema=S, type_="primary")
    op.create_primary_key("pk_series", "series", ["symbol", "timeframe"], schema=S)
    op.drop_constraint("pk_bars", "bars", schema=S, type_="primary")
    op.create_primary_key("pk_bars", "bars", ["symbol", "timeframe", "ts"], schema=S)
    op.drop_column("replays", "source_owner", schema=S)
    for table in ("bars", "series", "gaps", "imports"):
        op.drop_column(table, "owner", schema=S)
