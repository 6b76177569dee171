"""Beta1 import: the legacy id map of migrated users.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from algotrade.migrations import create_legacy_ids_table, drop_legacy_ids_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_legacy_ids_table("gateway")


def downgrade() -> None:
    drop_legacy_ids_table("gateway")
