"""Strategies and their immutable versions.

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

S = "strategy"


def upgrade() -> None:
    op.create_table(
        "strategies",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("template_key", sa.String(64)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_strategies"),
        sa.CheckConstraint(
            "current_version >= 1", name="ck_strategies_current_version_positive"
        ),
        schema=S,
    )
    # Live strategies of one owner, newest first (the list's default order); a user's list is
    # small, so the substring search (?q=) filters this index's rows instead of needing pg_trgm.
    op.create_index(
        "ix_strategies_owner_updated",
        "strategies",
        ["owner_id", sa.text("updated_at DESC"), sa.text("id DESC")],
        schema=S,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    # Live strategies of one owner by name, case-insensitively (?sort=name).
    op.create_index(
        "ix_strategies_owner_name",
        "strategies",
        ["owner_id", sa.text("lower(name)"), "id"],
        schema=S,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "strategy_versions",
        sa.Column("strategy_id", sa.String(26), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("graph", JSONB, nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("strategy_id", "n", name="pk_strategy_versions"),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            [f"{S}.strategies.id"],
            name="fk_strategy_versions_strategy_id_strategies",
        ),
        sa.CheckConstraint("n >= 1", name="ck_strategy_versions_n_positive"),
        schema=S,
    )
    op.create_index(
        "ix_strategy_versions_plan_id", "strategy_versions", ["plan_id"], schema=S
    )


def downgrade() -> None:
    op.drop_index("ix_strategy_versions_plan_id", table_name="strategy_versions", schema=S)
    op.drop_table("strategy_versions", schema=S)
    op.drop_index("ix_strategies_owner_name", table_name="strategies", schema=S)
    op.drop_index("ix_strategies_owner_updated", table_name="strategies", schema=S)
    op.drop_table("strategies", schema=S)
