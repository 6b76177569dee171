"""The hand-written migration and the ORM mappings describe the same tables."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from algotrade.db import build_engine
from strategy_service.models import Base


def _ours(name: str | None, type_: str, parent: Any) -> bool:
    if type_ == "schema":
        return name == "strategy"
    return not (type_ == "table" and name == "alembic_version")


async def test_migrated_schema_matches_the_models(migrated: str) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": _ours,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, Base.metadata))

    engine = build_engine(migrated, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
            indexes = {
                row.indexname: row.indexdef
                for row in await conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='strategy'")
                )
            }
    finally:
        await engine.dispose()
    assert differences == []
    assert "WHERE (deleted_at IS NULL)" in indexes["ix_strategies_owner_updated"]
    assert "lower(name)" in indexes["ix_strategies_owner_name"]
