"""Outbox and processed-events tables of the notify schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from algotrade.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables("notify")


def downgrade() -> None:
    drop_platform_tables("notify")
