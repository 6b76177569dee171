"""Beta1 import: sessions without a plan (history only, never loaded by a worker), without a
strategy when Beta1's was not migrated, and the legacy id map.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from algotrade.migrations import create_legacy_ids_table, drop_legacy_ids_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "forward"
NULLABLE = (
    ("strategy_id", sa.String(100)),
    ("strategy_version", sa.Integer()),
    ("plan_id", sa.String(64)),
    ("plan", sa.Text()),
)


def upgrade() -> None:
    for name, kind in NULLABLE:
        op.alter_column("sessions", name, existing_type=kind, nullable=True, schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_sessions_runnable"),
        "sessions",
        "status IN ('stopped', 'failed') OR plan IS NOT NULL",
        schema=SCHEMA,
    )
    create_legacy_ids_table(SCHEMA)


def downgrade() -> None:
    # Migrated sessions keep their history under the older schema, with empty stand-ins.
    drop_legacy_ids_table(SCHEMA)
    op.execute(
        sa.text(
            "UPDATE forward.sessions SET strategy_id = coalesce(strategy_id, ''), "
            "strategy_version = coalesce(strategy_version, 0), plan_id = coalesce(plan_id, ''), "
            "plan = coalesce(plan, '') "
            "WHERE strategy_id IS NULL OR strategy_version IS NULL OR plan_id IS NULL "
            "OR plan IS NULL"
        )
    )
    op.drop_constraint(op.f("ck_sessions_runnable"), "sessions", type_="check", schema=SCHEMA)
    for name, kind in NULLABLE:
        op.alter_column("sessions", name, existing_type=kind, nullable=False, schema=SCHEMA)
