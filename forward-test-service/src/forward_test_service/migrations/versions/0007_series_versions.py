"""The per-bar question "did any session of this series change?" answered from one row.

`SessionStore.series_version` was a count and a sum of revisions over the series' sessions,
read on every bar: an index scan of every session of the series (10,000 entries for 10,000
sessions). ``series_versions`` holds the same two numbers per series, kept by a trigger on
``sessions`` in the transaction that changes them, so the sum still moves whatever order
transactions commit in.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "forward"

FUNCTION = f"""
CREATE FUNCTION {SCHEMA}.count_series_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE {SCHEMA}.series_versions
           SET sessions = sessions - 1, revisions = revisions - OLD.revision
         WHERE series_key = OLD.series_key;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {SCHEMA}.series_versions AS v (series_key, sessions, revisions)
        VALUES (NEW.series_key, 1, NEW.revision)
        ON CONFLICT (series_key) DO UPDATE
           SET sessions = v.sessions + 1, revisions = v.revisions + NEW.revision;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "series_versions",
        sa.Column("series_key", sa.String(200), primary_key=True),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("revisions", sa.Numeric, nullable=False),
        schema=SCHEMA,
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.series_versions (series_key, sessions, revisions) "
        f"SELECT series_key, count(*), sum(revision) FROM {SCHEMA}.sessions GROUP BY series_key"
    )
    op.execute(FUNCTION)
    op.execute(
        f"CREATE TRIGGER tr_sessions_series_version "
        f"AFTER INSERT OR DELETE OR UPDATE OF revision, series_key ON {SCHEMA}.sessions "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.count_series_version()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER tr_sessions_series_version ON {SCHEMA}.sessions")
    op.execute(f"DROP FUNCTION {SCHEMA}.count_series_version()")
    op.drop_table("series_versions", schema=SCHEMA)
