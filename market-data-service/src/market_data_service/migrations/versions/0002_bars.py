"""Bar history, series summary, imports, replays and recorded gaps.

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

S = "market"


def upgrade() -> None:
    op.execute(sa.text(f"CREATE SEQUENCE {S}.bar_version_seq"))
    op.create_table(
        "bars",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(3), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Float(53), nullable=False),
        sa.Column("high", sa.Float(53), nullable=False),
        sa.Column("low", sa.Float(53), nullable=False),
        sa.Column("close", sa.Float(53), nullable=False),
        sa.Column("volume", sa.Float(53), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "version",
            sa.BigInteger,
            nullable=False,
            server_default=sa.text(f"nextval('{S}.bar_version_seq')"),
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name="pk_bars"),
        schema=S,
    )
    op.create_table(
        "series",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(3), nullable=False),
        sa.Column("first_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bar_count", sa.BigInteger, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("symbol", "timeframe", name="pk_series"),
        schema=S,
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("file_format", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(3), nullable=False),
        sa.Column("atomic", sa.Boolean, nullable=False),
        sa.Column("bytes_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("accepted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("duplicate", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("corrected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("message", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_imports_user_id", "imports", ["user_id", "id"], schema=S)
    op.create_table(
        "replays",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("target_symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(3), nullable=False),
        sa.Column("speed", sa.Float(53)),
        sa.Column("start_ts", sa.DateTime(timezone=True)),
        sa.Column("end_ts", sa.DateTime(timezone=True)),
        sa.Column("bars_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bars_emitted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_ts", sa.DateTime(timezone=True)),
        sa.Column("message", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_replays_user_id", "replays", ["user_id", "id"], schema=S)
    op.create_table(
        "gaps",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(3), nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    op.create_index("ix_gaps_series", "gaps", ["symbol", "timeframe", "start_ts"], schema=S)


def downgrade() -> None:
    op.drop_table("gaps", schema=S)
    op.drop_table("replays", schema=S)
    op.drop_table("imports", schema=S)
    op.drop_table("series", schema=S)
    op.drop_table("bars", schema=S)
    op.execute(sa.text(f"DROP SEQUENCE {S}.bar_version_seq"))
