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

SAVE_CHUNK = 2_000
# ARGV[1]: one record per session, each field a 4-byte big-endian length and its bytes: state
# key, equity key, snapshot, meta, bar count, equity points (newline-joined JSON, maybe
# empty). One argument instead of six per session: the client's per-argument encoding cost
# more than the writes. (Keys travel inside the argument: fine on one Redis, not on Cluster.)
_SAVE = """
local blob = ARGV[1]
local pos = 1
local count = 0
local fmt = '>I4c0I4c0I4c0I4c0I4c0I4c0'
while pos <= #blob do
  local state, equity, snap, meta, n, points
  state, equity, snap, meta, n, points, pos = struct.unpack(fmt, blob, pos)
  redis.call('HSET', state, 'snap', snap, 'meta', meta, 'n', n)
  for point in string.gmatch(points, '[^\\n]+') do
    redis.call('RPUSH', equity, point)
  end
  count = count + 1
end
return count
"""


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


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
        self._save = redis.register_script(_SAVE)

    def _state(self, session_id: str) -> str:
        return f"{self._prefix}ft:s:{session_id}"

    def _equity(self, session_id: str) -> str:
        return f"{self._prefix}ft:e:{session_id}"

    async def save(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Every checkpoint, in as few round trips as possible: one script call per
        `SAVE_CHUNK` sessions (a command per session would cost more in the client than the
        writes cost Redis). A retry rewrites the same values."""
        for start in range(0, len(checkpoints), SAVE_CHUNK):
            records = []
            for c in checkpoints[start : start + SAVE_CHUNK]:
                records += (
                    _field(self._state(c.session_id).encode()),
                    _field(self._equity(c.session_id).encode()),
                    _field(c.snapshot),
                    _field(_json(c.meta)),
                    _field(str(int(c.meta.get("bars_applied", 0))).encode()),
                    _field(b"\n".join(_json(list(p)) for p in c.equity_points)),
                )
            await self._save(keys=[], args=[b"".join(records)])

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
