"""Session checkpoints in Redis: written after every bar, pipelined for all sessions of a bar.

Per session, ``{prefix}ft:s:{id}`` is a hash of ``snap`` (the account's snapshot bytes) and
``meta`` (JSON: the account summary and the session's counters), and ``{prefix}ft:e:{id}`` a
list of equity points not yet copied to PostgreSQL. A worker restores a session from here,
else from the copy in PostgreSQL; the copy is made periodically and on stop, so Redis only
has to hold what happened since.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Checkpoint:
    session_id: str
    snapshot: bytes
    meta: dict[str, Any]
    equity_points: tuple[tuple[int, float, float], ...] = ()  # (ts, equity, position) per bar


@dataclass(frozen=True, slots=True)
class Stored:
    snapshot: bytes
    meta: dict[str, Any]


class CheckpointStore:
    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self._redis = redis
        self._prefix = prefix

    def _state(self, session_id: str) -> str:
        return f"{self._prefix}ft:s:{session_id}"

    def _equity(self, session_id: str) -> str:
        return f"{self._prefix}ft:e:{session_id}"

    async def save(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Every checkpoint in one round trip (a pipeline, not a transaction: each session's
        two writes stand alone, and a retry rewrites them)."""
        if not checkpoints:
            return
        pipe = self._redis.pipeline(transaction=False)
        for c in checkpoints:
            pipe.hset(
                self._state(c.session_id),
                mapping={
                    "snap": c.snapshot,
                    "meta": _json(c.meta),
                    "n": int(c.meta.get("bars_applied", 0)),
                },
            )
            if c.equity_points:
                pipe.rpush(self._equity(c.session_id), *(_json(list(p)) for p in c.equity_points))
        await pipe.execute()

    async def load(self, session_ids: Sequence[str]) -> dict[str, Stored]:
        """The checkpoints Redis holds for these sessions (absent ones are left out)."""
        if not session_ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hmget(self._state(session_id), ["snap", "meta"])
        found: dict[str, Stored] = {}
        for session_id, (snap, meta) in zip(session_ids, await pipe.execute(), strict=True):
            if snap is not None and meta is not None:
                found[session_id] = Stored(bytes(snap), orjson.loads(meta))
        return found

    async def bars_applied(self, session_ids: Sequence[str]) -> dict[str, int]:
        """How many bars each session's Redis checkpoint has applied (absent ones left out):
        a worker compares it with its own copy to notice another worker applied bars since."""
        if not session_ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hget(self._state(session_id), "n")
        return {
            session_id: int(n)
            for session_id, n in zip(session_ids, await pipe.execute(), strict=True)
            if n is not None
        }

    async def pending_equity(self, session_ids: Sequence[str]) -> dict[str, list[list[float]]]:
        """Equity points not yet in PostgreSQL, per session, oldest first."""
        if not session_ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.lrange(self._equity(session_id), 0, -1)
        return {
            session_id: [orjson.loads(p) for p in points]
            for session_id, points in zip(session_ids, await pipe.execute(), strict=True)
        }

    async def drop_equity(self, counts: Iterable[tuple[str, int]]) -> None:
        """Forget the first ``count`` points of each session (copied to PostgreSQL)."""
        pipe = self._redis.pipeline(transaction=False)
        for session_id, count in counts:
            if count > 0:
                pipe.ltrim(self._equity(session_id), count, -1)
        await pipe.execute()


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
