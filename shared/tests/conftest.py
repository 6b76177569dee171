from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from algotrade.db import ServiceSchema, build_engine, service_schema

TEST_SCHEMA = "bus_test"


@pytest.fixture
def schema() -> ServiceSchema:
    """A throwaway service schema with one effect table, like a service would have."""
    s = service_schema(TEST_SCHEMA)
    Table(
        "applied",
        s.base.metadata,
        Column("event_id", String(26), primary_key=True),
        Column("n", Integer, nullable=False),
    )
    return s


@pytest.fixture
async def engine(database_url: str, schema: ServiceSchema) -> AsyncIterator[AsyncEngine]:
    from sqlalchemy import text

    eng = build_engine(database_url, pool_size=5)
    async with eng.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{TEST_SCHEMA}"'))
        await conn.run_sync(schema.base.metadata.create_all)
    yield eng
    await eng.dispose()
