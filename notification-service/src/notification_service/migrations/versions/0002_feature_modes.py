"""Message families' modes and the audit trail of every change.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "notify"
MODES = "mode IN ('rest', 'shadow', 'live')"


def upgrade() -> None:
    op.create_table(
        "feature_modes",
        sa.Column("family", sa.String(32), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(MODES, name="ck_feature_modes_mode_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "feature_changes",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("previous", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(MODES, name="ck_feature_changes_change_mode_known"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_feature_changes_changed_at", "feature_changes", ["changed_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("feature_changes", schema=SCHEMA)
    op.drop_table("feature_modes", schema=SCHEMA)
