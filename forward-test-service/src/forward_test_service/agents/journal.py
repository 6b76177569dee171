"""From Redis to PostgreSQL and Kafka: what the agent scripts appended to the journal.

The Lua scripts that end a command, change a connection state or find a sync conflict append a
record to one Redis list in the same script, so nothing they decide can be lost between Redis
and the database. `Journal.drain` (run by `AgentMonitor`, under a Redis lock so one process
drains at a time) writes a batch of records in one PostgreSQL transaction of two statements
(the ended commands as rows of ``agent_commands``, each inserted once; the records' events
staged in the outbox) and only then trims them from the list. A crash in between writes the
batch again: the command rows are keyed, and their events are staged only for rows actually
inserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import agent_events as events
from algotrade.background import stop_task
from algotrade.events import Envelope, Topics, default_registry
from algotrade.outbox import OutboxRelay, stage_events
from forward_test_service import models
from forward_test_service.agents.connections import Connections
from forward_test_service.agents.layout import SharedKeys
from forward_test_service.models import SCHEMA

logger = logging.getLogger(__name__)

BATCH = 200
LOCK_SECONDS = 10.0
_CONNECTION_EVENT = {
    "healthy": events.CONNECTED,
    "degraded": events.DEGRADED,
    "stale": events.DISCONNECTED,
    "offline": events.DISCONNECTED,
}
_COMMAND_EVENT = {
    "executed": events.COMMAND_EXECUTED,
    "rejected": events.COMMAND_REJECTED,
    "failed": events.COMMAND_FAILED,
    "expired": events.COMMAND_EXPIRED,
}


class Journal:
    def __init__(
        self,
        redis: Redis,
        sessions: async_sessionmaker[AsyncSession],
        topics: Topics,
        prefix: str,
        *,
        producer: str,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._redis = redis
        self._sessions = sessions
        self._topics = topics
        self._keys = SharedKeys(prefix)
        self._producer = producer
        self._relay = relay

    async def drain(self) -> int:
        """Write what the journal holds; returns how many records were written."""
        # redis-py's lock (a token checked on release): one process drains at a time.
        lock = self._redis.lock(self._keys.journal_lock, timeout=LOCK_SECONDS, blocking=False)
        if not await lock.acquire():
            return 0
        written = 0
        try:
            while True:
                raw = await self._redis.lrange(self._keys.journal, 0, BATCH - 1)  # type: ignore[misc]
                if not raw:
                    break
                async with self._sessions.begin() as session:
                    await self._write_batch(session, raw)
                await self._redis.ltrim(self._keys.journal, len(raw), -1)  # type: ignore[misc]
                written += len(raw)
        finally:
            with contextlib.suppress(LockError):  # expired meanwhile: nothing to release
                await lock.release()
        if written and self._relay is not None:
            self._relay.wake()
        return written

    async def _write_batch(self, session: AsyncSession, raw: list[bytes | str]) -> None:
        """Write a batch in two statements: its ended commands, then the events of the records
        (a command's only if its row was new). Each record is read, and its event built, before
        anything is written: one that cannot be (a bug, never expected) is logged whole and
        skipped rather than blocking every record behind it. (A savepoint and two statements per
        record cost ~1 ms of the service's CPU each: a thousand agents changing state at once
        took a second of it.)"""
        prepared: list[_Prepared] = []
        for item in raw:
            try:
                record = orjson.loads(item)
                one = self._prepare(record)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                logger.error("agent journal record skipped (%r): %r", exc, item[:2_000])
                continue
            if one is not None:
                prepared.append(one)
        rows = {one.command_key: one.command_row for one in prepared if one.command_key}
        inserted: set[tuple[str, str]] = set()
        if rows:
            table = models.agent_commands
            # Parameters apart from the statement (executemany): one compiled statement for
            # every batch size, not one compiled per size (compiling a VALUES list of 200 rows
            # held the event loop for milliseconds).
            result = await session.execute(
                pg_insert(table)
                .on_conflict_do_nothing()
                .returning(table.c.agent_id, table.c.command_id),
                list(rows.values()),
            )
            inserted = {(agent_id, command_id) for agent_id, command_id in result}
        envelopes = []
        for one in prepared:
            if one.command_key is not None:
                if one.command_key not in inserted:
                    continue  # written by an earlier drain that crashed before trimming
                inserted.discard(one.command_key)  # the same command twice: one event
            envelopes.append(one.envelope)
        await stage_events(session, SCHEMA.outbox, self._topics.agent_events, envelopes)

    def _prepare(self, record: dict[str, Any]) -> _Prepared | None:
        """A record's row (an ended command's) and event; None for an unknown kind."""
        kind = record.get("kind_of_record")
        agent_id = record["agent_id"]
        user_id = record.get("user_id")
        payload: BaseModel
        command_key: tuple[str, str] | None = None
        command_row: dict[str, Any] = {}
        if kind == "connection":
            type_ = _CONNECTION_EVENT[record["state"]]
            payload = events.ConnectionChanged(
                agent_id=agent_id,
                state=record["state"],
                previous=record["previous"],
                last_heartbeat_ms=int(record["last_ms"]) if record.get("last_ms") else None,
            )
        elif kind == "command":
            type_ = _COMMAND_EVENT[record["state"]]
            result = orjson.loads(record["result"]) if record.get("result") else {}
            command_key = (agent_id, record["id"])
            command_row = {
                "agent_id": agent_id,
                "command_id": record["id"],
                "user_id": user_id,
                "kind": record["kind"],
                "outcome": record["state"],
                "attempts": int(record.get("attempts", 0)),
                "idempotency_key": record["idem"],
                "session_id": record.get("session_id") or None,
                "detail": {
                    "command": orjson.loads(record.get("body", "{}")),
                    "result": result,
                    "error": record.get("error"),
                },
                "created_ms": int(record["created_ms"]),
                "ended_ms": int(record["ended_ms"]),
            }
            payload = events.CommandEnded(
                agent_id=agent_id,
                command_id=record["id"],
                kind=record["kind"],
                outcome=record["state"],
                attempts=int(record.get("attempts", 0)),
                idempotency_key=record["idem"],
                session_id=record.get("session_id") or None,
                ticket=result.get("ticket"),
                price=result.get("price"),
                volume=result.get("volume"),
                error=result.get("error") or record.get("error"),
            )
        elif kind == "sync":
            type_ = events.SYNC_CONFLICT
            payload = events.SyncConflict(
                agent_id=agent_id,
                missing_on_platform=record["missing_on_platform"],
                unknown_to_server=record["unknown_to_server"],
                diverging=record["diverging"],
                details=record.get("details", []),
            )
        else:
            logger.error("agent journal: unknown record %r dropped", kind)
            return None
        envelope = default_registry.build(
            type_, payload, producer=self._producer, key=agent_id, user_id=user_id
        )
        return _Prepared(envelope, command_key, command_row)


@dataclass(frozen=True)
class _Prepared:
    """A journal record ready to write: its event, and for an ended command its row."""

    envelope: Envelope
    command_key: tuple[str, str] | None  # (agent id, command id) of an ended command
    command_row: dict[str, Any]


class AgentMonitor:
    """One background loop per service process: notices silent agents (`Connections.sweep`)
    and drains the journal, every ``every`` seconds."""

    def __init__(self, connections: Connections, journal: Journal, *, every: float) -> None:
        self._connections = connections
        self._journal = journal
        self._every = every
        self._stop = asyncio.Event()

    async def tick(self) -> None:
        await self._connections.sweep()
        await self._journal.drain()

    async def run(self) -> None:
        # Ends on the stop flag as well as on cancellation: a client library that swallows a
        # CancelledError mid-call (seen in shutdowns) must not keep the loop alive.
        while not self._stop.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage: the next tick tries again, nothing is lost
                logger.warning("agent monitor tick failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AgentMonitor]:
        task = asyncio.create_task(self.run(), name="agent-monitor")
        try:
            yield self
        finally:
            await stop_task(task, self._stop)
