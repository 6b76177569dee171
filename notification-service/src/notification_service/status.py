"""What ``GET /api/notifications/status`` shows, summed over every running instance.

Each instance writes its own figures to Redis every ``stats_flush_seconds`` (a key that expires
when the instance stops writing) and the status answer sums the live instances' figures: per
family its mode, messages pushed, deliveries, messages withheld (``rest``), subscribers, parity
figures and the last message time; plus sockets and subscriptions. The same loop closes sockets
that stayed too slow while nothing new arrived for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any

import orjson
from redis.asyncio import Redis

from algotrade.background import stop_task
from notification_service.families import FAMILIES, Family, Mode
from notification_service.hub import Hub
from notification_service.parity import ParityChecker

logger = logging.getLogger(__name__)

LIVE_FOR = 3  # flush periods an instance's figures stay counted without a new flush


class StatusBoard:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        instance: str,
        hub: Hub,
        parity: ParityChecker,
        modes: Callable[[], dict[Family, Mode]],
        *,
        every: float,
    ) -> None:
        self._redis = redis
        self._instance = instance
        self._hub = hub
        self._parity = parity
        self._modes = modes
        self._every = every
        self._instances = f"{prefix}notify:instances"
        self._key = f"{prefix}notify:status:"

    def local(self) -> dict[str, Any]:
        subscribers = self._hub.subscribers_by_family()
        families = {}
        for family in FAMILIES:
            counters = asdict(self._hub.counters[family])
            families[family] = {
                **counters,
                "subscribers": subscribers[family],
                "parity": asdict(self._parity.counters[family]),
            }
        return {
            "instance": self._instance,
            "sockets": len(self._hub.sockets),
            "subscriptions": self._hub.subscription_count(),
            "families": families,
        }

    async def flush(self) -> None:
        now = time.time()
        ttl = max(1, round(self._every * LIVE_FOR))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key + self._instance, orjson.dumps(self.local()), ex=ttl)
            pipe.zadd(self._instances, {self._instance: now})
            pipe.zremrangebyscore(self._instances, "-inf", now - 3600)
            await pipe.execute()

    async def status(self) -> dict[str, Any]:
        """Every live instance's figures summed (this instance's own are always fresh)."""
        members: Any = await self._redis.zrangebyscore(
            self._instances, time.time() - self._every * LIVE_FOR, "+inf"
        )
        names = [n.decode() if isinstance(n, bytes) else n for n in members]
        others = [n for n in names if n != self._instance]
        raws = await self._redis.mget([self._key + n for n in others]) if others else []
        reports = [self.local()] + [orjson.loads(r) for r in raws if r is not None]
        modes = self._modes()
        families: dict[str, dict[str, Any]] = {}
        for family in FAMILIES:
            parts = [r["families"][family] for r in reports]
            lasts = [p["last_message_at"] for p in parts if p["last_message_at"] is not None]
            families[family] = {
                "mode": modes[family],
                "pushed": sum(p["pushed"] for p in parts),
                "deliveries": sum(p["deliveries"] for p in parts),
                "withheld": sum(p["withheld"] for p in parts),
                "subscribers": sum(p["subscribers"] for p in parts),
                "parity": {k: sum(p["parity"][k] for p in parts) for k in parts[0]["parity"]},
                "last_message_at": max(lasts) if lasts else None,
            }
        return {
            "instances": len(reports),
            "sockets": sum(r["sockets"] for r in reports),
            "subscriptions": sum(r["subscriptions"] for r in reports),
            "families": families,
        }

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(self._loop(stop), name="notification-status")
        try:
            yield
        finally:
            await stop_task(task, stop)
            with contextlib.suppress(Exception):
                await self._redis.zrem(self._instances, self._instance)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._every)
            self._hub.check_slow()
            try:
                await self.flush()
            except Exception as exc:  # Redis down: the next flush tries again
                logger.debug("status not flushed: %r", exc)
