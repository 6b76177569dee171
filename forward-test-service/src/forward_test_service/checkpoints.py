"""Session checkpoints in Redis: written after every bar, pipelined for all sessions of a bar.

Per session, ``{prefix}ft:s:{id}`` is a hash of ``snap`` (the account's snapshot bytes) and
``meta`` (JSON: the account summary and the session's counters), and ``{prefix}ft:e:{id}`` a
list of equity points not yet copied to PostgreSQL. A worker restores a session from here,
else from the copy in PostgreSQL; the copy is made periodically and on stop, so Redis only
has to hold what happened since. Once a session has finished (stopped, failed, deleted) and
its last checkpoint and points are in PostgreSQL, its keys expire (`retire`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from redis.asyncio import Redis

SAVE_CHUNK = 2_000
# ARGV[1]: one record per session, each field a 4-byte big-endian length and its bytes:
# session id, snapshot, meta, bar count, equity points (newline-joined JSON, maybe empty);
# ARGV[2] and ARGV[3]: the prefixes of the state and equity keys. One argument instead of six
# per session: the client's per-argument encoding cost more than the writes. (Keys are built
# in the script: fine on one Redis, not on Cluster.)
_SAVE = """
local blob = ARGV[1]
local state_prefix = ARGV[2]
local equity_prefix = ARGV[3]
local pos = 1
local count = 0
local fmt = '>I4c0I4c0I4c0I4c0I4c0'
while pos <= #blob do
  local sid, snap, meta, n, points
  sid, snap, meta, n, points, pos = struct.unpack(fmt, blob, pos)
  redis.call('HSET', state_prefix .. sid, 'snap', snap, 'meta', meta, 'n', n)
  if #points > 0 then
    local equity = equity_prefix .. sid
    for point in string.gmatch(points, '[^\\n]+') do
      redis.call('RPUSH', equity, point)
    end
  end
  count = count + 1
end
return count
"""
_u32 = struct.Struct(">I").pack


class Checkpoint(NamedTuple):
    """One session's state after a bar (a tuple: thousands are built per bar)."""

    session_id: str
    snapshot: bytes
    meta: dict[str, Any]
    equity_points: Sequence[tuple[int, float, float]] = ()  # (ts, equity, position) per bar


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
        prefixes = [self._state(""), self._equity("")]
        dumps = orjson.dumps
        for start in range(0, len(checkpoints), SAVE_CHUNK):
            parts: list[bytes] = []
            extend = parts.extend
            for session_id, snap, meta, points in checkpoints[start : start + SAVE_CHUNK]:
                sid = session_id.encode()
                meta_json = dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY)
                count = b"%d" % int(meta.get("bars_applied", 0))
                joined = dumps(points[0]) if len(points) == 1 else b"\n".join(map(dumps, points))
                extend(
                    (
                        _u32(len(sid)),
                        sid,
                        _u32(len(snap)),
                        snap,
                        _u32(len(meta_json)),
                        meta_json,
                        _u32(len(count)),
                        count,
                        _u32(len(joined)),
                        joined,
                    )
                )
            await self._save(keys=[], args=[b"".join(parts), *prefixes])

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

    async def retire(self, session_ids: Sequence[str], ttl_seconds: int) -> None:
        """Let finished sessions' keys expire (their state is in PostgreSQL by now)."""
        if not session_ids:
            return
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.expire(self._state(session_id), ttl_seconds)
            pipe.expire(self._equity(session_id), ttl_seconds)
        await pipe.execute()

    async def drop_equity(self, counts: Iterable[tuple[str, int]]) -> None:
        """Forget the first ``count`` points of each session (copied to PostgreSQL)."""
        pipe = self._redis.pipeline(transaction=False)
        for session_id, count in counts:
            if count > 0:
                pipe.ltrim(self._equity(session_id), count, -1)
        await pipe.execute()
