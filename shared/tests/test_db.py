"""Values written to JSONB come back as values every encoder can write again."""

from __future__ import annotations

import orjson
from sqlalchemy import text

from algotrade.db import build_engine


async def test_a_huge_float_in_jsonb_reads_back_as_a_float_not_a_128_bit_integer(
    database_url: str,
) -> None:
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            value = (
                await conn.execute(
                    text("SELECT CAST(:doc AS jsonb)").columns(),
                    {"doc": orjson.dumps({"cagr": 9.2e26, "trades": 12, "big": 2**62}).decode()},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    # PostgreSQL prints the number as 920000000000000000000000000, without an exponent.
    assert value == {"cagr": 9.2e26, "trades": 12, "big": 2**62}
    assert isinstance(value["cagr"], float) and isinstance(value["trades"], int)
    assert orjson.loads(orjson.dumps(value)) == value
