"""Session checkpoints in Redis: written after every bar, in one round trip for a whole chunk.

- ``{prefix}ft:s:{id}``, a string per session: its latest checkpoint, the meta's length (4
  bytes, big-endian), the meta (JSON: the account summary and the session's counters) and the
  account's snapshot bytes. All of a chunk's are written by one ``MSET``, after its points.
- ``{prefix}ft:e:{series}``, a list per series of the equity points not yet copied to
  PostgreSQL: one element per saved chunk, holding every session's new points (`_pack_points`).

One command per chunk, not one per session: Redis spends a few microseconds on each command
(more inside a script), which for 10,000 sessions a bar was most of the bar's time.

A worker restores a session from here, else from the copy in PostgreSQL; the copy is made
periodically and on stop (`pending_equity` then `drop_equity`), so Redis only has to hold what
happened since. Dropping is keyed by the element last copied, so two copiers (a worker and the
API stopping a session) never drop points the other has not seen. Once a session has finished
and its last checkpoint is in PostgreSQL, its state key expires (`retire`).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from redis.asyncio import Redis

_META_LENGTH = struct.Struct(">I")
_POINTS_HEAD = struct.Struct("<BI")  # session id length, number of points
_POINT = struct.Struct("<qdd")  # ts, equity, position
_TAG_BYTES = 16
# KEYS[1]: a series' equity list; ARGV[1]: the tag of the last element copied. Drops it and
# everything before it; nothing when it is gone already (another copier dropped it).
_DROP_THROUGH = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, item in ipairs(items) do
  if string.sub(item, 1, #ARGV[1]) == ARGV[1] then
    redis.call('LTRIM', KEYS[1], i, -1)
    return i
  end
end
return 0
"""


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


@dataclass(frozen=True, slots=True)
class Pending:
    """Equity points of a series not yet in PostgreSQL, per session, oldest first, and the tag
    of the last list element they were read from (None: the list was empty)."""

    points: dict[str, list[list[float]]]
    through: bytes | None


def _pack_points(checkpoints: Sequence[Checkpoint]) -> bytes:
    """A list element: a fresh tag, then per session with points its id and points."""
    parts = [uuid.uuid4().bytes]
    head = _POINTS_HEAD.pack
    point = _POINT.pack
    for session_id, _, _, points in checkpoints:
        if points:
            sid = session_id.encode()
            parts.append(head(len(sid), len(points)))
            parts.append(sid)
            parts.extend(point(*p) for p in points)
    return b"".join(parts)


def _unpack_points(
    item: bytes, into: dict[str, list[list[float]]], wanted: Collection[str] | None
) -> None:
    pos = _TAG_BYTES
    end = len(item)
    while pos < end:
        length, count = _POINTS_HEAD.unpack_from(item, pos)
        pos += _POINTS_HEAD.size
        sid = item[pos : pos + length].decode()
        pos += length
        size = count * _POINT.size
        if wanted is None or sid in wanted:
            into.setdefault(sid, []).extend(
                [ts, equity, position]
                for ts, equity, position in _POINT.iter_unpack(item[pos : pos + size])
            )
        pos += size


def _command(*arguments: bytes) -> bytes:
    """One command in Redis's protocol (RESP)."""
    head = b"*%d\r\n" % len(arguments)
    return head + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in arguments)


class CheckpointStore:
    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self._redis = redis
        self._prefix = prefix
        self._drop_through = redis.register_script(_DROP_THROUGH)

    def state_key(self, session_id: str) -> str:
        return f"{self._prefix}ft:s:{session_id}"

    def equity_key(self, series: str) -> str:
        return f"{self._prefix}ft:e:{series}"

    async def save(self, series: str, checkpoints: Sequence[Checkpoint]) -> None:
        """Every checkpoint of ``series``' sessions and their new equity points, in one
        round trip (a retry rewrites the same values; its points are taken twice without
        harm: PostgreSQL and the API keep one per bar time). Not a ``MULTI`` transaction:
        Redis took several times as long over one, and the order below makes it unneeded.

        The transaction's bytes are written here, not by the client's command packer, which
        cost more than everything else about a checkpoint (a chunk is thousands of arguments
        of kilobytes each); the client's connection pool, connections and reply parser are
        used as they are."""
        if not checkpoints:
            return
        dumps = orjson.dumps
        length = _META_LENGTH.pack
        prefix = self.state_key("").encode()
        # The points first: a crash between the two leaves them ahead of the state, so the bar
        # is applied again and its points written twice (kept once), never lost.
        parts = []
        with_points = any(c.equity_points for c in checkpoints)
        if with_points:
            parts.append(
                _command(b"RPUSH", self.equity_key(series).encode(), _pack_points(checkpoints))
            )
        parts.append(b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * len(checkpoints)))
        for session_id, snap, meta, _ in checkpoints:
            key = prefix + session_id.encode()
            meta_json = dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY)
            parts.append(
                b"$%d\r\n%b\r\n$%d\r\n%b%b"
                % (len(key), key, 4 + len(meta_json) + len(snap), length(len(meta_json)), meta_json)
            )
            parts.append(snap)
            parts.append(b"\r\n")
        await self._send(b"".join(parts), replies=2 if with_points else 1)

    async def _send(self, payload: bytes, *, replies: int) -> list[Any]:
        """Write ``payload`` (whole commands) on one pooled connection and read ``replies``
        replies; an error reply raises (`redis.exceptions.ResponseError`)."""
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(payload)
            return [await connection.read_response() for _ in range(replies)]
        except BaseException:
            await connection.disconnect()  # it may hold half a transaction: start afresh
            raise
        finally:
            await pool.release(connection)

    async def load(self, session_ids: Sequence[str]) -> dict[str, Stored]:
        """The checkpoints Redis holds for these sessions (absent ones are left out)."""
        if not session_ids:
            return {}
        keys = [self.state_key(sid) for sid in session_ids]
        values = cast(list[bytes | None], await self._redis.mget(keys))
        found: dict[str, Stored] = {}
        for session_id, value in zip(session_ids, values, strict=True):
            if value is None:
                continue
            (size,) = _META_LENGTH.unpack_from(value)
            start = _META_LENGTH.size
            found[session_id] = Stored(
                bytes(value[start + size :]), orjson.loads(value[start : start + size])
            )
        return found

    async def pending_equity(
        self, series: str, session_ids: Collection[str] | None = None
    ) -> Pending:
        """Equity points of ``series`` not yet in PostgreSQL (of ``session_ids`` only, when
        given)."""
        items = cast(list[bytes], await self._redis.lrange(self.equity_key(series), 0, -1))
        points: dict[str, list[list[float]]] = {}
        wanted = set(session_ids) if session_ids is not None else None
        for item in items:
            _unpack_points(item, points, wanted)
        return Pending(points, bytes(items[-1][:_TAG_BYTES]) if items else None)

    async def drop_equity(self, series: str, pending: Pending) -> None:
        """Forget the points ``pending`` was read from (they are in PostgreSQL now), keeping
        any written since."""
        if pending.through is not None:
            await self._drop_through(keys=[self.equity_key(series)], args=[pending.through])

    async def retire(self, session_ids: Sequence[str], ttl_seconds: int) -> None:
        """Let finished sessions' state expire (their last checkpoint is in PostgreSQL)."""
        if not session_ids:
            return
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.expire(self.state_key(session_id), ttl_seconds)
        await pipe.execute()
