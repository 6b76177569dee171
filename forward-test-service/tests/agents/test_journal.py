"""The journal's way from Redis to PostgreSQL: a batch written in one transaction, each ended
command once, each record's event staged once, an unreadable record skipped."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from algotrade.events import new_event_id
from algotrade_testkit.plugin import wait_for
from forward_test_service import models
from forward_test_service.agents.layout import SharedKeys
from forward_test_service.models import SCHEMA

from .conftest import Desk


def _ended(agent_id: str, command_id: str) -> bytes:
    return orjson.dumps(
        {
            "kind_of_record": "command",
            "agent_id": agent_id,
            "user_id": "alice",
            "id": command_id,
            "kind": "info",
            "state": "expired",
            "idem": command_id,
            "attempts": "0",
            "body": '{"message": "m"}',
            "created_ms": "1",
            "ended_ms": "2",
        }
    )


async def test_a_batch_writes_each_ended_command_once_and_stages_each_event_once(
    desk: Desk, database_url: str
) -> None:
    agent = await desk.register()
    first, second = new_event_id(), new_event_id()
    connection = orjson.dumps(
        {
            "kind_of_record": "connection",
            "agent_id": agent,
            "user_id": "alice",
            "state": "healthy",
            "previous": "offline",
            "last_ms": 5,
        }
    )
    redis = Redis.from_url(desk.settings.redis_url.get_secret_value())
    journal = SharedKeys(desk.settings.redis_prefix).journal
    engine = create_async_engine(database_url)
    try:
        await redis.rpush(journal, _ended(agent, first))
        await wait_for(lambda: _drained(redis, journal), within=10)
        # Written again (a drain that crashed before trimming), twice in one batch, between
        # an unreadable record and a new command's and a connection's.
        await redis.rpush(
            journal,
            _ended(agent, first),
            b"{not json",
            _ended(agent, second),
            _ended(agent, second),
            connection,
        )
        await wait_for(lambda: _drained(redis, journal), within=10)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(models.agent_commands.c.command_id).where(
                    models.agent_commands.c.agent_id == agent
                )
            )
            assert sorted(r.command_id for r in rows) == sorted([first, second])
            staged = await conn.execute(
                select(SCHEMA.outbox.c.payload).where(SCHEMA.outbox.c.key == agent)
            )
            events = [orjson.loads(p) for (p,) in staged]
    finally:
        await engine.dispose()
        await redis.aclose()
    ended = sorted(e["payload"]["command_id"] for e in events if "command_id" in e["payload"])
    assert ended == sorted([first, second])
    states = [e["payload"]["state"] for e in events if e["payload"].get("previous") == "offline"]
    assert states == ["healthy"]


async def _drained(redis: Redis, journal: str) -> bool:
    length: Any = await redis.llen(journal)  # type: ignore[misc]
    return bool(length == 0)
