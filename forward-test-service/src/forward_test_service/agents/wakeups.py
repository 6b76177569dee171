"""Waking an agent's long-poll the moment a command is queued for it.

Enqueueing publishes the agent id on one pub/sub channel; each service process holds one
subscription and sets the events of the polls waiting for that agent here. One Redis connection
per process serves every waiting agent (a blocking pop per poll would hold a connection each).
A message lost while the subscription reconnects costs at most one re-check interval: waiting
polls look at their queue again every ``recheck`` seconds anyway. A command queued by this
process wakes its polls directly (`CommandQueue`'s ``queued``), without the round trip through
Redis; the echo that follows finds them leasing already, and wakes nothing twice that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

from redis.asyncio import Redis

from algotrade.background import stop_task

logger = logging.getLogger(__name__)


class Wakeups:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._stop = asyncio.Event()

    @contextlib.contextmanager
    def waiting(self, agent_id: str) -> Iterator[asyncio.Event]:
        """An event set when a command is queued for ``agent_id``; register it *before*
        looking at the queue, so that a command queued in between is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(agent_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiting.get(agent_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiting[agent_id]

    def wake(self, agent_id: str) -> None:
        for event in self._waiting.get(agent_id, ()):
            event.set()

    async def run(self) -> None:
        """Listen until cancelled, resubscribing after a lost connection."""
        while not self._stop.is_set():
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if self._stop.is_set():
                            return
                        data = message.get("data")
                        if isinstance(data, bytes):
                            self.wake(data.decode())
                        elif isinstance(data, str):
                            self.wake(data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("agent wake-up subscription lost (%r); resubscribing", exc)
                await asyncio.sleep(0.5)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Wakeups]:
        task = asyncio.create_task(self.run(), name="agent-wakeups")
        try:
            yield self
        finally:
            await stop_task(task, self._stop)
