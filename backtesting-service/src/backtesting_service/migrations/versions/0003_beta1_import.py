"""Beta1 import: jobs without a plan (results migrated from Beta1) and the legacy id map.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from algotrade.migrations import create_legacy_ids_table, drop_legacy_ids_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "backtest"


def upgrade() -> None:
    op.alter_column("jobs", "plan_id", nullable=True, schema=SCHEMA)
    create_legacy_ids_table(SCHEMA)


def downgrade() -> None:
    drop_legacy_ids_table(SCHEMA)
    op.alter_column("jobs", "plan_id", nullable=False, schema=SCHEMA)
