"""Per-stream sequence numbers and the resume buffer, in Redis (one Lua script per message).

Every instance consumes every event, so each one asks Redis for the message's number: the first
to ask numbers it (``INCR``) and appends it to the stream's buffer (a Redis stream whose entry
id is ``<seq>-0``, trimmed to about ``buffer`` entries); the others get the same number back
(the event id is remembered per stream for ``ttl`` seconds). Every instance therefore sends the
same message under the same number, and a client may reconnect to any of them.

Keys share one hash tag per stream (``{notify:<stream>}``), so a Redis Cluster keeps a stream's
keys on one node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from algotrade.redis_script import PipelinedScript

# A new stream, or one that expired, starts from the time in milliseconds.
_START = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', ms), 'EX', ARGV[1])
end
"""
_APPEND = (
    """
local seq = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seq then return tonumber(seq) end
"""
    + _START.replace("ARGV[1]", "ARGV[5]")
    + """
seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'f', ARGV[3], 'e', ARGV[4])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
local keep = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) > 2 * keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return seq
"""
)
_LAST = _START + "return tonumber(redis.call('GET', KEYS[2]))"


@dataclass(frozen=True)
class Buffered:
    """A message read back from a stream's buffer."""

    seq: int
    family: str
    event: bytes


@dataclass(frozen=True)
class Replay:
    """What a client resuming after ``resume_from`` gets: the buffered messages it missed and,
    when some are gone (trimmed, or the stream expired and began again), the numbers it cannot
    have: it refetches the resource over REST and goes on from the messages that follow."""

    messages: list[Buffered]
    gap: tuple[int, int] | None
    last: int


class Sequencer:
    def __init__(self, redis: Redis, prefix: str, *, buffer: int, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._buffer = buffer
        self._ttl = ttl_seconds
        pipelined = PipelinedScript.for_client(redis, _APPEND, timeout=5.0)
        self._pipelined = pipelined
        self._append: Any = pipelined or redis.register_script(_APPEND)
        self._last = redis.register_script(_LAST)

    async def aclose(self) -> None:
        if self._pipelined is not None:
            await self._pipelined.aclose()

    def _keys(self, stream: str) -> tuple[str, str, str]:
        tag = f"{self._prefix}{{notify:{stream}}}"
        return f"{tag}:seen", f"{tag}:seq", f"{tag}:log"

    async def append(self, stream: str, event_id: str, family: str, event: bytes) -> int:
        """The message's number in ``stream`` (the same for every instance that asks)."""
        seen, seq, log = self._keys(stream)
        result = await self._append(
            [seen, seq, log], [event_id, self._buffer, family, event, self._ttl]
        )
        return int(result)

    async def last(self, stream: str) -> int:
        """The newest number given in ``stream``; a stream not started yet starts now, so
        that its first message follows the number a subscriber is told."""
        keys = self._keys(stream)
        return int(await self._last(keys=list(keys), args=[self._ttl]))

    async def replay(self, stream: str, resume_from: int) -> Replay:
        """The messages after ``resume_from`` still buffered, and whether some are gone. All of
        them: approximate trimming bounds a buffer to ``buffer`` plus one stream node."""
        _, seq_key, log = self._keys(stream)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(seq_key)
            pipe.xrange(log, min=f"({resume_from}-0" if resume_from > 0 else "-")
            raw_last, entries = await pipe.execute()
        last = int(raw_last) if raw_last is not None else 0
        messages = [
            Buffered(
                seq=int(_text(entry_id).split("-", 1)[0]),
                family=_text(fields[b"f"]),
                event=fields[b"e"],
            )
            for entry_id, fields in entries
        ]
        if resume_from > last:
            # The client holds numbers this stream no longer has: it expired and began again.
            return Replay([], (1, last), last)
        first = messages[0].seq if messages else last + 1
        gap = (resume_from + 1, first - 1) if first > resume_from + 1 else None
        return Replay(messages, gap, last)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
