"""Beta1 import: draft versions (no plan, with their problems) and the legacy id map.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from algotrade.migrations import create_legacy_ids_table, drop_legacy_ids_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "strategy"


def upgrade() -> None:
    op.alter_column("strategy_versions", "plan_id", nullable=True, schema=S)
    op.add_column("strategy_versions", sa.Column("problems", JSONB), schema=S)
    create_legacy_ids_table(S)


def downgrade() -> None:
    drop_legacy_ids_table(S)
    op.drop_column("strategy_versions", "problems", schema=S)
    op.alter_column("strategy_versions", "plan_id", nullable=False, schema=S)
