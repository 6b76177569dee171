"""Heartbeats and the connection state of each agent.

A heartbeat is one Lua script: it checks the agent's owner, updates the smoothed interval,
jitter and latency (exponentially weighted, ``ALPHA``), stores the account state, and answers the
pending command count, in one round trip. The state follows from the agent's promised interval
``I`` (``heartbeat_seconds``):

- ``healthy``: heartbeats arrive about every ``I``, the terminal is connected, latency is low;
- ``degraded``: they arrive, but late on average (over ``1.5 I``), irregularly (jitter over
  ``I / 2``), slowly (latency over ``DEGRADED_LATENCY_MS``) or from a disconnected terminal;
- ``stale``: none for ``3 I``; ``offline``: none for ``10 I`` (or never).

A heartbeat runs pipelined on one connection of its own (`algotrade.redis_script`): a thousand
terminals beating at once share one socket instead of a thousand pooled connections.

Heartbeats move an agent between healthy and degraded; silence is noticed by `Monitor` (one
loop per service process), which keeps every agent in a sorted set by the time it would turn
stale, then offline. A change of state is appended to the journal, which announces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from algotrade.agent_events import ConnectionState
from algotrade.redis_script import PipelinedScript
from forward_test_service.agents.layout import AgentKeys, SharedKeys, text

logger = logging.getLogger(__name__)

ALPHA = 0.2
DEGRADED_LATENCY_MS = 250.0
STALE_AFTER = 3  # heartbeat intervals
OFFLINE_AFTER = 10

# KEYS: meta, heartbeat, ready, delayed, last seen, journal
# ARGV: user, now ms, account json, client time ms or '', rtt ms or '', agent id,
#       terminal connected '1'/'0', alpha, degraded latency ms, stale after, offline after
_HEARTBEAT = """
local owner = redis.call('HGET', KEYS[1], 'user_id')
if not owner then return {'unknown'} end
if owner ~= ARGV[1] then return {'foreign'} end
local expected = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_ms'))
local now = tonumber(ARGV[2])
local alpha = tonumber(ARGV[8])
local h = redis.call('HMGET', KEYS[2], 'last_ms', 'interval', 'jitter', 'latency', 'state', 'count')
local last, interval = tonumber(h[1]), tonumber(h[2])
local jitter, latency = tonumber(h[3]), tonumber(h[4])
local previous = h[5] or 'offline'
if last and previous ~= 'stale' and previous ~= 'offline' then
  local gap = now - last
  if interval then
    jitter = jitter + alpha * (math.abs(gap - interval) - jitter)
    interval = interval + alpha * (gap - interval)
  else
    interval = gap
    jitter = 0
  end
end
local rtt = tonumber(ARGV[5])
if rtt then
  if latency then latency = latency + alpha * (rtt - latency) else latency = rtt end
end
local state = 'healthy'
if ARGV[7] ~= '1' or (interval and interval > 1.5 * expected)
   or (jitter and jitter > 0.5 * expected) or (latency and latency > tonumber(ARGV[9])) then
  state = 'degraded'
end
local count = (tonumber(h[6]) or 0) + 1
local fields = {'last_ms', now, 'state', state, 'account', ARGV[3], 'count', count}
if interval then table.insert(fields, 'interval'); table.insert(fields, interval) end
if jitter then table.insert(fields, 'jitter'); table.insert(fields, jitter) end
if latency then table.insert(fields, 'latency'); table.insert(fields, latency) end
if ARGV[4] ~= '' then
  table.insert(fields, 'offset'); table.insert(fields, now - tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[10]) * expected, ARGV[6])
if state ~= previous then
  redis.call('RPUSH', KEYS[6], cjson.encode({kind_of_record = 'connection', agent_id = ARGV[6],
    user_id = owner, state = state, previous = previous, last_ms = now}))
end
local pending = redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
return {'ok', pending, state, tostring(expected)}
"""

# KEYS: meta, heartbeat, last seen, journal
# ARGV: now ms, agent id, stale after, offline after
_SILENCE = """
local expected = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_ms'))
local owner = redis.call('HGET', KEYS[1], 'user_id')
if not expected or not owner then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 'gone'
end
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[2], 'last_ms', 'state')
local last = tonumber(h[1])
if not last then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 'never'
end
local age = now - last
local previous = h[2] or 'offline'
local state = previous
if age >= tonumber(ARGV[4]) * expected then
  state = 'offline'
  redis.call('ZREM', KEYS[3], ARGV[2])
elseif age >= tonumber(ARGV[3]) * expected then
  state = 'stale'
  redis.call('ZADD', KEYS[3], last + tonumber(ARGV[4]) * expected, ARGV[2])
else
  redis.call('ZADD', KEYS[3], last + tonumber(ARGV[3]) * expected, ARGV[2])
  return previous
end
if state ~= previous then
  redis.call('HSET', KEYS[2], 'state', state)
  redis.call('RPUSH', KEYS[4], cjson.encode({kind_of_record = 'connection', agent_id = ARGV[2],
    user_id = owner, state = state, previous = previous, last_ms = last}))
end
return state
"""


@dataclass(frozen=True)
class Beat:
    server_time_ms: int
    pending_commands: int
    state: ConnectionState
    heartbeat_seconds: float


SWEEP_BATCH = 100  # silent agents checked per round trip


class Connections:
    """Heartbeats in, connection states out (see the module doc)."""

    def __init__(self, redis: Redis, prefix: str, *, clock: Any = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._shared = SharedKeys(prefix)
        self._clock = clock
        pipelined = PipelinedScript.for_client(redis, _HEARTBEAT, timeout=5.0)
        self._pipelined = pipelined
        self._heartbeat: Any = pipelined or redis.register_script(_HEARTBEAT)
        self._silence = redis.register_script(_SILENCE)

    async def start(self) -> None:
        """Open the heartbeat script's connection; if Redis is down now, the first heartbeat
        connects (readiness reports Redis meanwhile)."""
        if self._pipelined is not None:
            try:
                await self._pipelined.connect()
            except (OSError, TimeoutError) as exc:
                logger.warning("heartbeat connection to Redis not made at start: %r", exc)

    async def aclose(self) -> None:
        if self._pipelined is not None:
            await self._pipelined.aclose()

    async def register(self, agent_id: str, user_id: str, heartbeat_seconds: float) -> None:
        """Who owns the agent and how often it promised to beat (also after a Redis loss)."""
        await self._redis.hset(  # type: ignore[misc]
            AgentKeys.of(self._prefix, agent_id).meta,
            mapping={"user_id": user_id, "heartbeat_ms": round(heartbeat_seconds * 1000)},
        )

    async def forget(self, agent_id: str) -> None:
        """Drop everything Redis holds about a deleted agent (its queued commands too)."""
        base = AgentKeys.of(self._prefix, agent_id).base
        keys = [key async for key in self._redis.scan_iter(match=_glob_escape(base) + "*")]
        if keys:
            await self._redis.delete(*keys)
        await self._redis.zrem(self._shared.last_seen, agent_id)

    async def beat(
        self,
        agent_id: str,
        user_id: str,
        account: Mapping[str, Any],
        *,
        client_time_ms: int | None,
        rtt_ms: float | None,
        terminal_connected: bool,
    ) -> Beat | str:
        """Record a heartbeat; the answer, or ``"unknown"``/``"foreign"`` when Redis does not
        know the agent or another user owns it."""
        k = AgentKeys.of(self._prefix, agent_id)
        now = int(self._clock() * 1000)
        reply = await self._heartbeat(
            keys=[
                k.meta,
                k.heartbeat,
                k.ready,
                k.delayed,
                self._shared.last_seen,
                self._shared.journal,
            ],
            args=[
                user_id,
                now,
                orjson.dumps(account),
                "" if client_time_ms is None else client_time_ms,
                "" if rtt_ms is None else rtt_ms,
                agent_id,
                "1" if terminal_connected else "0",
                ALPHA,
                DEGRADED_LATENCY_MS,
                STALE_AFTER,
                OFFLINE_AFTER,
            ],
        )
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status != "ok":
            return str(status)
        state: ConnectionState = text(reply[2])  # type: ignore[assignment]
        return Beat(now, int(reply[1]), state, float(text(reply[3])) / 1000)

    async def sweep(self) -> int:
        """Move silent agents to stale or offline; returns how many were looked at."""
        now = int(self._clock() * 1000)
        due = await self._redis.zrangebyscore(
            self._shared.last_seen, "-inf", now, start=0, num=1_000
        )
        # A pipeline per batch: a thousand agents falling silent together (a network cut, a
        # bench pausing its agents) cost a thousand round trips one after the other, during
        # which every request of the process waited behind them now and then.
        for start in range(0, len(due), SWEEP_BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for raw in due[start : start + SWEEP_BATCH]:
                agent_id = text(raw)
                k = AgentKeys.of(self._prefix, agent_id)
                await self._silence(
                    keys=[k.meta, k.heartbeat, self._shared.last_seen, self._shared.journal],
                    args=[now, agent_id, STALE_AFTER, OFFLINE_AFTER],
                    client=pipe,
                )
            await pipe.execute()
        return len(due)

    async def read(self, agent_ids: list[str]) -> list[dict[str, str]]:
        """The stored connection hash of each agent ({} for one never heard from)."""
        pipe = self._redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(AgentKeys.of(self._prefix, agent_id).heartbeat)
        return [{text(a): text(b) for a, b in raw.items()} for raw in await pipe.execute()]

    def state_now(self, stored: Mapping[str, str], heartbeat_seconds: float) -> ConnectionState:
        """The state as of now: the stored one, unless silence has outrun the monitor."""
        last = stored.get("last_ms")
        if last is None:
            return "offline"
        age = self._clock() * 1000 - float(last)
        expected = heartbeat_seconds * 1000
        if age >= OFFLINE_AFTER * expected:
            return "offline"
        if age >= STALE_AFTER * expected:
            return "stale"
        state = stored.get("state", "offline")
        return state  # type: ignore[return-value]


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
