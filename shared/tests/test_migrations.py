"""Every service's migrations apply to an empty database, into its own schema, repeatably."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from algotrade.db import build_engine
from algotrade.migrations import upgrade

TABLES_IN_SCHEMA = "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"

SERVICES = [
    ("api_gateway", "gateway"),
    ("strategy_service", "strategy"),
    ("market_data_service", "market"),
    ("backtesting_service", "backtest"),
    ("forward_test_service", "forward"),
    ("analytics_service", "analytics"),
]


@pytest.mark.parametrize(("package", "schema"), SERVICES)
async def test_migrations_create_the_schema_with_outbox_and_apply_twice(
    database_url: str, package: str, schema: str
) -> None:
    await upgrade(database_url, package, schema)
    await upgrade(database_url, package, schema)  # a second run is a no-op
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        text(TABLES_IN_SCHEMA),
                        {"s": schema},
                    )
                ).scalars()
            )
            other = set(
                (
                    await conn.execute(
                        text(
                            "SELECT DISTINCT table_schema FROM information_schema.tables "
                            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    assert {"outbox", "processed_events", "alembic_version"} <= tables
    assert other == {schema}, "a service must write only its own schema"
