"""Transactional outbox: a state change and its event commit together; a relay publishes.

Writers call `stage_event` inside the transaction that changes state. `OutboxRelay` moves
unpublished rows to Kafka in id order and marks them published. If the relay dies after
publishing but before marking, the row is published again on restart; consumers skip the
duplicate by event id, so the effect happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import orjson
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from algotrade.bus import EventProducer, event_headers
from algotrade.events import Envelope

logger = logging.getLogger(__name__)

# A publish round normally takes milliseconds; one this long means the broker is not answering.
STALLED_ROUND_SECONDS = 3.0


async def stage_event(session: AsyncSession, outbox: Table, topic: str, envelope: Envelope) -> None:
    """Add an event to the outbox in the caller's transaction."""
    await session.execute(
        insert(outbox).values(
            id=envelope.id, topic=topic, key=envelope.key, payload=envelope.to_bytes()
        )
    )


async def stage_events(
    session: AsyncSession, outbox: Table, topic: str, envelopes: Sequence[Envelope]
) -> None:
    """Add events to the outbox in the caller's transaction, in one statement (their order)."""
    if envelopes:
        await session.execute(  # executemany: one compiled statement whatever the count
            insert(outbox),
            [
                {"id": e.id, "topic": topic, "key": e.key, "payload": e.to_bytes()}
                for e in envelopes
            ],
        )


class OutboxRelay:
    """Publishes outbox rows to Kafka, oldest first, at least once."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        producer: EventProducer,
        *,
        poll_seconds: float = 0.2,
        batch_size: int = 500,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._lock_name = f"algotrade.outbox:{outbox.fullname}"
        self._producer = producer
        self._poll = poll_seconds
        self._batch = batch_size
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failing_since: float | None = None
        self._last_error = ""
        self._round_started: float | None = None

    def wake(self) -> None:
        """Tell the relay new rows are committed (saves waiting for the next poll)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def stop_task(self, task: asyncio.Task[None], grace_seconds: float = 5.0) -> None:
        """Stop the relay running in ``task``: let a round finish within the grace period,
        else cancel it. A cancelled round rolls back, so its rows are published next start."""
        await self.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            logger.warning("outbox relay round still waiting for Kafka at shutdown; cancelled")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Relay until stopped; a failed round is logged and retried after the poll interval."""
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._round_started = loop.time()
            try:
                published = await self.relay_once()
            except Exception as exc:
                if self._failing_since is None:
                    self._failing_since = loop.time()
                    logger.exception("outbox relay round failed; rows wait, retrying")
                else:
                    logger.warning("outbox relay still failing: %r", exc)
                self._last_error = f"{type(exc).__name__}: {exc}"[:300]
                published = 0
            else:
                if self._failing_since is not None:
                    logger.info("outbox relay recovered")
                self._failing_since = None
            finally:
                self._round_started = None
            if published == 0 and not self._stopping.is_set():
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    async def check(self) -> None:
        """Readiness: raise while rounds fail or one hangs on an unacknowledged publish."""
        now = asyncio.get_running_loop().time()
        if self._failing_since is not None:
            raise ConnectionError(
                f"outbox relay failing for {now - self._failing_since:.0f}s "
                f"({self._last_error}); events wait in the outbox"
            )
        if self._round_started is not None and now - self._round_started > STALLED_ROUND_SECONDS:
            raise ConnectionError(
                f"outbox relay waiting {now - self._round_started:.0f}s for Kafka to acknowledge"
            )

    async def relay_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        o = self._outbox
        async with self._engine.begin() as conn:
            # One relay at a time per outbox (a service and its workers each run one): two
            # relays taking interleaved rows would publish a key's events out of order.
            if not await conn.scalar(
                select(func.pg_try_advisory_xact_lock(func.hashtext(self._lock_name)))
            ):
                return 0
            rows = (
                await conn.execute(
                    select(o.c.id, o.c.topic, o.c.key, o.c.payload)
                    .where(o.c.published_at.is_(None))
                    .order_by(o.c.id)
                    .limit(self._batch)
                )
            ).all()
            if not rows:
                return 0
            messages = []
            for row in rows:
                # Staged rows were valid envelopes when written: read the header fields only,
                # without validating the whole (possibly large) payload again.
                fields = orjson.loads(row.payload)
                headers = event_headers(row.id, fields["type"], fields.get("correlation_id"))
                key = row.key.encode() if row.key is not None else None
                messages.append((row.topic, row.payload, key, headers))
            await self._producer.send_many(messages)
            await conn.execute(
                update(o).where(o.c.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
        logger.debug("outbox published %d events", len(rows))
        return len(rows)

    async def prune(self, older_than_seconds: float = 86_400) -> int:
        """Delete rows published longer ago than the given age."""
        o = self._outbox
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(o).where(
                    o.c.published_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
                )
            )
        return int(result.rowcount or 0)

    async def pending(self) -> int:
        o = self._outbox
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.count()).select_from(o).where(o.c.published_at.is_(None))
            )
        return int(value or 0)
