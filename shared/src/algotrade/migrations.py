"""Alembic migrations per service schema, run programmatically (no alembic.ini per service).

A service keeps its revisions in ``<package>/migrations/versions`` with an ``env.py`` that calls
`run_env`. `upgrade` creates the schema if missing and keeps the version table inside it, so each
service's history is independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text

from algotrade.db import build_engine


def _config(package: str, connection: Connection, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files(package) / "migrations"))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


async def upgrade(database_url: str, package: str, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` to ``revision`` using the migrations shipped in ``package``."""
    await _migrate(database_url, package, schema, command.upgrade, revision)


async def downgrade(database_url: str, package: str, schema: str, revision: str) -> None:
    """Take ``schema`` back to ``revision`` (the migrations' own ``downgrade``s)."""
    await _migrate(database_url, package, schema, command.downgrade, revision)


async def _migrate(
    database_url: str,
    package: str,
    schema: str,
    step: Callable[[Config, str], None],
    revision: str,
) -> None:
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            # Two services migrating at once must not race on CREATE SCHEMA or the version table.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))

            def run(sync_conn: Connection) -> None:
                step(_config(package, sync_conn, schema), revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``."""
    cfg = context.config
    connection: Connection = cfg.attributes["connection"]
    schema: str = cfg.attributes["schema"]
    options: dict[str, Any] = {
        "connection": connection,
        "target_metadata": target_metadata,
        "version_table_schema": schema,
        "include_schemas": False,
    }
    context.configure(**options)
    with context.begin_transaction():
        context.run_migrations()


def create_platform_tables(schema: str) -> None:
    """Create the ``outbox`` and ``processed_events`` tables every service schema has.

    Called from each service's first revision so the DDL is written once.
    """
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("key", sa.String(300)),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(26), primary_key=True),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=schema,
    )


def drop_platform_tables(schema: str) -> None:
    from alembic import op

    op.drop_table("processed_events", schema=schema)
    op.drop_table("outbox", schema=schema)


def create_legacy_ids_table(schema: str) -> None:
    """Create the ``legacy_ids`` table of a service that imports Beta1 rows (`algotrade.beta1`),
    from the same definition the service maps, so the two cannot differ."""
    from alembic import op

    from algotrade.beta1 import legacy_ids_table
    from algotrade.db import NAMING_CONVENTION

    legacy_ids_table(MetaData(schema=schema, naming_convention=NAMING_CONVENTION)).create(
        op.get_bind()
    )


def drop_legacy_ids_table(schema: str) -> None:
    from alembic import op

    op.drop_table("legacy_ids", schema=schema)
