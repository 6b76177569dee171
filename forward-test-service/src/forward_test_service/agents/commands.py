"""Each agent's command queue in Redis: priority order, leases, retries with backoff, expiry,
idempotency keys.

A command is a hash; its id sits in exactly one of three sorted sets while it is alive:
``ready`` (by priority, then age: ``close_all`` > ``close`` > ``modify`` > ``open`` > ``info``),
``leased`` (by lease deadline) or ``delayed`` (waiting out a retry backoff). Every transition is
one Lua script, so a crash between two steps cannot lose or duplicate a command, and the queue
survives a restart of the service (Redis keeps an append-only file).

- **Lease**: the agent's poll takes the most urgent ready commands. A lease not acknowledged by
  its deadline puts the command back after ``backoff_base_ms * 2^(attempts-1)`` (capped); after
  ``max_attempts`` deliveries it is ``failed``. A command whose ``expires_at`` passed is
  ``expired`` when it would be delivered, and never delivered.
- **Ack**: ``executed`` (with ticket, price, volume), ``rejected`` (the platform refused) or
  ``failed``. The same ack again answers the command as it is; a different one is a conflict.
  An executed command updates the platform's record of the account's positions in the same
  script, so a trade sync compares against it.
- **Idempotency**: enqueueing an intent key already used for this agent returns the first
  command. The agent stamps the key on the order it places, so a command delivered again after
  a lost ack is recognised and acked instead of executed twice.
- **History**: every id is also kept in a ``history`` sorted set by the agent's enqueue number,
  which the owner's list (`CommandQueue.page`) reads newest first without touching the queue:
  the agent's own poll is the only read that leases. The history holds the newest
  ``history_max`` commands whose hash still exists (an ended one is kept ``ended_ttl_ms``).

Each ended command is appended to the journal (`forward_test_service.agents.journal`), which
records it in PostgreSQL and announces it on ``agent.events.v1``. Enqueueing publishes the agent
id on the wake channel, which wakes that agent's waiting long-poll (`Wakeups`) at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from algotrade.errors import Conflict, NotFound
from algotrade.events import new_event_id
from forward_test_service.agents.layout import AgentKeys, SharedKeys, text
from forward_test_service.agents.schemas import (
    PRIORITY,
    CommandAck,
    CommandCreate,
    CommandPublic,
)

PRIORITY_SPAN = 10**13  # more than any epoch-ms: priority outranks age in one score
LATENCY_SAMPLES = 1_000
OUTCOMES = ("executed", "rejected", "failed", "expired")

# Shared by the scripts: the caller's user must own the agent (KEYS[1] is its meta hash).
_OWNER_CHECK = """
local owner = redis.call('HGET', KEYS[1], 'user_id')
if not owner then return {'unknown'} end
if owner ~= ARGV[1] then return {'foreign'} end
"""

# KEYS: meta, idempotency, command, ready, stats, history
# ARGV: user, command id, score, idempotency ttl ms, channel, agent id, command key prefix,
#       history max, field, value, ...
# The history (the owner's list) is numbered by the agent's enqueue counter, so that it is in
# enqueue order even within a millisecond; the oldest ids whose command expired are pruned here.
_ENQUEUE = (
    _OWNER_CHECK
    + """
local existing = redis.call('GET', KEYS[2])
if existing then return {'existing', existing} end
local t = redis.call('TIME')
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('HSET', KEYS[3], 'created_us', t[1] .. string.format('%06d', t[2]), unpack(ARGV, 9))
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
local number = redis.call('HINCRBY', KEYS[5], 'enqueued', 1)
redis.call('ZADD', KEYS[6], number, ARGV[2])
for _ = 1, 16 do
  local oldest = redis.call('ZRANGE', KEYS[6], 0, 0)
  if #oldest == 0 or redis.call('EXISTS', ARGV[7] .. oldest[1]) == 1 then break end
  redis.call('ZREM', KEYS[6], oldest[1])
end
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[8]) + 1))
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {'created', ARGV[2]}
"""
)

# Read-only: a page of the history, newest first, optionally of some states only.
# KEYS: history
# ARGV: command key prefix, before (an enqueue number, '' for the newest), limit, scan cap,
#       states (comma-separated, '' for all)
# Answers {commands, next}: ``next`` is the number to read before for the next page ('' when
# none is left). At most ``scan cap`` ids are looked at, so a filter matching nothing does not
# walk a long history in one script: the page then holds fewer than ``limit`` with a ``next``.
_PAGE = """
local below = '+inf'
if ARGV[2] ~= '' then below = '(' .. ARGV[2] end
local wanted = {}
local any = ARGV[5] == ''
for state in string.gmatch(ARGV[5], '[^,]+') do wanted[state] = true end
local limit = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local out = {}
local last_out = ''
local looked = 0
while looked < cap do
  local batch = redis.call(
    'ZREVRANGEBYSCORE', KEYS[1], below, '-inf', 'WITHSCORES', 'LIMIT', 0,
    math.min(100, cap - looked))
  if #batch == 0 then return {out, ''} end
  for i = 1, #batch, 2 do
    local key = ARGV[1] .. batch[i]
    local state = redis.call('HGET', key, 'state')
    if state and (any or wanted[state]) then
      if #out == limit then return {out, last_out} end
      table.insert(out, redis.call('HGETALL', key))
      last_out = batch[i + 1]
    end
    looked = looked + 1
    below = '(' .. batch[i + 1]
  end
end
return {out, string.sub(below, 2)}
"""

# Appends an ended command to the journal; `h` is its hash as a table.
_ENDED = """
local function ended(key, h, outcome, now, journal, stats, ttl)
  h.state = outcome
  h.ended_ms = tostring(now)
  redis.call('HSET', key, 'state', outcome, 'ended_ms', now)
  redis.call('PEXPIRE', key, ttl)
  redis.call('HINCRBY', stats, outcome, 1)
  h.kind_of_record = 'command'
  redis.call('RPUSH', journal, cjson.encode(h))
end
local function hash(key)
  local fields = redis.call('HGETALL', key)
  if #fields == 0 then return nil end
  local h = {}
  for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
  return h
end
"""

# KEYS: meta, ready, delayed, leased, stats, latency, journal
# ARGV: user, now ms, lease ms, max n, max attempts, command key prefix, backoff base ms,
#       backoff max ms, ended ttl ms, latency samples
_LEASE = (
    _OWNER_CHECK
    + _ENDED
    + """
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local prefix = ARGV[6]
local ttl = ARGV[9]
for _, cid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[4], cid)
  local key = prefix .. cid
  local h = hash(key)
  if h then
    local attempts = tonumber(h.attempts or '0')
    if attempts >= tonumber(ARGV[5]) then
      h.error = 'not acknowledged after ' .. attempts .. ' deliveries'
      redis.call('HSET', key, 'error', h.error)
      redis.call('HDEL', key, 'leased_until')
      ended(key, h, 'failed', now, KEYS[7], KEYS[5], ttl)
    else
      local delay = math.min(tonumber(ARGV[7]) * 2 ^ (attempts - 1), tonumber(ARGV[8]))
      redis.call('HSET', key, 'state', 'queued')
      redis.call('HDEL', key, 'leased_until')
      redis.call('ZADD', KEYS[3], now + delay, cid)
    end
  end
end
for _, cid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[3], cid)
  local score = redis.call('HGET', prefix .. cid, 'score')
  if score then redis.call('ZADD', KEYS[2], score, cid) end
end
local out = {}
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
while #out < tonumber(ARGV[4]) do
  local popped = redis.call('ZPOPMIN', KEYS[2])
  if #popped == 0 then break end
  local cid = popped[1]
  local key = prefix .. cid
  local h = hash(key)
  if h then
    if tonumber(h.expires_ms) <= now then
      ended(key, h, 'expired', now, KEYS[7], KEYS[5], ttl)
    else
      local attempts = tonumber(h.attempts or '0') + 1
      redis.call(
        'HSET', key, 'state', 'leased', 'attempts', attempts, 'leased_ms', now,
        'leased_until', now + lease)
      redis.call('ZADD', KEYS[4], now + lease, cid)
      if attempts == 1 then
        redis.call('LPUSH', KEYS[6], now_us - tonumber(h.created_us))
        redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[10]) - 1)
      end
      table.insert(out, redis.call('HGETALL', key))
    end
  end
end
local next_due = ''
for _, key in ipairs({KEYS[3], KEYS[4]}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 and (next_due == '' or tonumber(first[2]) < next_due) then
    next_due = tonumber(first[2])
  end
end
return {'ok', out, tostring(next_due)}
"""
)

# KEYS: meta, command, ready, delayed, leased, stats, journal, positions
# ARGV: user, command id, outcome, result json, now ms, ended ttl ms, position op, ticket,
#       position json
_ACK = (
    _OWNER_CHECK
    + _ENDED
    + """
local h = hash(KEYS[2])
if not h then return {'missing'} end
if h.state == ARGV[3] then return {'duplicate', redis.call('HGETALL', KEYS[2])} end
if h.state ~= 'leased' and h.state ~= 'queued' then return {'conflict', h.state} end
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HDEL', KEYS[2], 'leased_until')
redis.call('HSET', KEYS[2], 'result', ARGV[4])
h.result = ARGV[4]
h.leased_until = nil
ended(KEYS[2], h, ARGV[3], tonumber(ARGV[5]), KEYS[7], KEYS[6], ARGV[6])
local op = ARGV[7]
if op == 'open' then
  -- A ticket the record holds already, for the same symbol, is a netting account's position
  -- (MetaTrader 5 in netting mode, NinjaTrader): the open adds to it on the same side, takes
  -- from it on the other, and turns it when it takes more than there is.
  local opened = cjson.decode(ARGV[9])
  local current = redis.call('HGET', KEYS[8], ARGV[8])
  local position = current and cjson.decode(current)
  if position and position.symbol == opened.symbol and tonumber(position.volume)
      and tonumber(opened.volume) then
    local held, added = tonumber(position.volume), tonumber(opened.volume)
    if position.side == opened.side then
      local price_held, price_added = tonumber(position.open_price), tonumber(opened.open_price)
      if price_held and price_added then
        position.open_price = (price_held * held + price_added * added) / (held + added)
      end
      position.volume = held + added
      for _, k in ipairs({'sl', 'tp'}) do
        if opened[k] ~= nil and opened[k] ~= cjson.null then position[k] = opened[k] end
      end
      redis.call('HSET', KEYS[8], ARGV[8], cjson.encode(position))
    elseif held - added > 1e-9 then
      position.volume = held - added
      redis.call('HSET', KEYS[8], ARGV[8], cjson.encode(position))
    elseif added - held > 1e-9 then
      opened.volume = added - held
      redis.call('HSET', KEYS[8], ARGV[8], cjson.encode(opened))
    else
      redis.call('HDEL', KEYS[8], ARGV[8])
    end
  else
    redis.call('HSET', KEYS[8], ARGV[8], ARGV[9])
  end
elseif op == 'merge' then
  local current = redis.call('HGET', KEYS[8], ARGV[8])
  if current then
    local position = cjson.decode(current)
    for k, v in pairs(cjson.decode(ARGV[9])) do position[k] = v end
    redis.call('HSET', KEYS[8], ARGV[8], cjson.encode(position))
  end
elseif op == 'reduce' then
  local current = redis.call('HGET', KEYS[8], ARGV[8])
  if current then
    local position = cjson.decode(current)
    local left = (tonumber(position.volume) or 0) - tonumber(cjson.decode(ARGV[9]).volume)
    if left <= 1e-9 then
      redis.call('HDEL', KEYS[8], ARGV[8])
    else
      position.volume = left
      redis.call('HSET', KEYS[8], ARGV[8], cjson.encode(position))
    end
  end
elseif op == 'del' then
  redis.call('HDEL', KEYS[8], ARGV[8])
elseif op == 'clear' then
  redis.call('DEL', KEYS[8])
end
return {'ok', redis.call('HGETALL', KEYS[2])}
"""
)


@dataclass(frozen=True)
class QueueStats:
    pending: int
    leased: int
    ended: dict[str, int]  # outcome -> commands ended so (and "enqueued")
    latency_us: list[int]  # recent enqueue -> lease times


def summarize(stats: Sequence[QueueStats]) -> dict[str, Any]:
    """Totals over agents, with delivery p50/p99 over all their samples."""
    samples = [us for s in stats for us in s.latency_us]
    return {
        "pending": sum(s.pending for s in stats),
        "leased": sum(s.leased for s in stats),
        **{outcome: sum(s.ended.get(outcome, 0) for s in stats) for outcome in OUTCOMES},
        "delivery_ms_p50": _percentile(samples, 50),
        "delivery_ms_p99": _percentile(samples, 99),
    }


@dataclass(frozen=True)
class Leased:
    commands: list[CommandPublic]
    next_due_ms: int | None
    """When a lease runs out or a retry is due (the earliest), if any: worth a look then."""


@dataclass(frozen=True)
class CommandsPage:
    commands: list[CommandPublic]
    next_before: int | None
    """The enqueue number to read before for the next page; None when none is left."""


@dataclass(frozen=True)
class QueuePolicy:
    lease_ms: int = 30_000
    max_attempts: int = 5
    backoff_base_ms: int = 1_000
    backoff_max_ms: int = 60_000
    ended_ttl_ms: int = 7 * 24 * 3600 * 1000
    """How long an ended command stays readable (and its idempotency key remembered)."""
    history_max: int = 10_000
    """How many of an agent's newest commands its owner's list can reach."""
    history_scan: int = 1_000
    """How many commands one read of the list looks at, at most (a filter skips the rest)."""


def queue_policy(settings: Any) -> QueuePolicy:
    """The policy of the service's settings (``agent_*`` fields of `config.Settings`)."""
    return QueuePolicy(
        lease_ms=round(settings.agent_lease_seconds * 1000),
        max_attempts=settings.agent_max_attempts,
        backoff_base_ms=round(settings.agent_backoff_base_seconds * 1000),
        backoff_max_ms=round(settings.agent_backoff_max_seconds * 1000),
    )


def _pairs(raw: list[Any]) -> dict[str, str]:
    it = iter(raw)
    return {text(k): text(v) for k, v in zip(it, it, strict=True)}


def command_public(agent_id: str, h: Mapping[str, str]) -> CommandPublic:
    body = orjson.loads(h.get("body", "{}"))
    result = h.get("result")
    leased = h.get("leased_until")
    leased_at = h.get("leased_ms")
    ended_at = h.get("ended_ms")
    return CommandPublic(
        id=h["id"],
        agent_id=agent_id,
        kind=h["kind"],  # type: ignore[arg-type]
        priority=int(h["priority"]),
        state=h["state"],  # type: ignore[arg-type]
        idempotency_key=h["idem"],
        attempts=int(h.get("attempts", 0)),
        created_at_ms=int(h["created_ms"]),
        expires_at_ms=int(h["expires_ms"]),
        leased_until_ms=int(leased) if leased else None,
        leased_at_ms=int(leased_at) if leased_at else None,
        ended_at_ms=int(ended_at) if ended_at else None,
        error=h.get("error") or None,
        session_id=h.get("session_id") or None,
        result=orjson.loads(result) if result else None,
        **body,
    )


class CommandQueue:
    """Enqueue, lease, acknowledge and read the commands of agents (see the module doc)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        policy: QueuePolicy,
        *,
        clock: Any = time.time,
        queued: Callable[[str], None] | None = None,
    ) -> None:
        """``queued`` is called with the agent's id once a command is queued for it: this
        process's waiting polls (`Wakeups.wake`) wake at once instead of on the pub/sub echo
        of the enqueue script's PUBLISH, which other processes' polls still wait for."""
        self._redis = redis
        self._prefix = prefix
        self._shared = SharedKeys(prefix)
        self.policy = policy
        self._clock = clock
        self._queued = queued
        self._enqueue = redis.register_script(_ENQUEUE)
        self._lease = redis.register_script(_LEASE)
        self._ack = redis.register_script(_ACK)
        self._page = redis.register_script(_PAGE)

    def keys(self, agent_id: str) -> AgentKeys:
        return AgentKeys.of(self._prefix, agent_id)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def enqueue(
        self,
        agent_id: str,
        user_id: str,
        command: CommandCreate,
        *,
        session_id: str | None = None,
    ) -> tuple[CommandPublic, bool]:
        """Queue ``command`` for the agent; ``(command, created)``. An idempotency key used
        before answers the first command (``created`` False)."""
        k = self.keys(agent_id)
        command_id = new_event_id()
        idem = command.idempotency_key or command_id
        now = self.now_ms()
        priority = PRIORITY[command.kind]
        body = command.model_dump(
            exclude={"kind", "idempotency_key", "expires_in_seconds"}, exclude_none=True
        )
        expires = now + math.ceil(command.expires_in_seconds * 1000)
        fields: dict[str, Any] = {
            "id": command_id,
            "kind": command.kind,
            "priority": priority,
            "score": priority * PRIORITY_SPAN + now,
            "idem": idem,
            "state": "queued",
            "attempts": 0,
            "created_ms": now,
            "expires_ms": expires,
            "user_id": user_id,
            "agent_id": agent_id,
            "session_id": session_id or "",
            "body": orjson.dumps(body).decode(),
        }
        flat = [item for pair in fields.items() for item in pair]
        reply = await self._enqueue(
            keys=[
                k.meta,
                k.idempotency(idem),
                k.command(command_id),
                k.ready,
                k.stats,
                k.history,
            ],
            args=[
                user_id,
                command_id,
                fields["score"],
                self.policy.ended_ttl_ms,
                self._shared.wake_channel,
                agent_id,
                k.command_prefix,
                self.policy.history_max,
                *flat,
            ],
        )
        status = text(reply[0])
        self._raise_denied(status)
        if status == "existing":
            return await self.get(agent_id, user_id, text(reply[1])), False
        if self._queued is not None:
            self._queued(agent_id)
            # A poll of this process waiting for the agent sends its lease to Redis now, and
            # this answer is built while Redis runs it (not before: the delivery waited).
            await asyncio.sleep(0)
        return command_public(agent_id, {k_: str(v) for k_, v in fields.items()}), True

    async def lease(self, agent_id: str, user_id: str, limit: int) -> Leased:
        """Lease up to ``limit`` ready commands, most urgent first (after putting back expired
        leases and due retries, and expiring what is past its expiry)."""
        k = self.keys(agent_id)
        p = self.policy
        reply = await self._lease(
            keys=[k.meta, k.ready, k.delayed, k.leased, k.stats, k.latency, self._shared.journal],
            args=[
                user_id,
                self.now_ms(),
                p.lease_ms,
                limit,
                p.max_attempts,
                k.command_prefix,
                p.backoff_base_ms,
                p.backoff_max_ms,
                p.ended_ttl_ms,
                LATENCY_SAMPLES,
            ],
        )
        self._raise_denied(text(reply[0]))
        next_due = text(reply[2])
        return Leased(
            [command_public(agent_id, _pairs(raw)) for raw in reply[1]],
            int(float(next_due)) if next_due else None,
        )

    async def ack(
        self, agent_id: str, user_id: str, command_id: str, ack: CommandAck
    ) -> tuple[CommandPublic, bool]:
        """Record the agent's outcome; ``(command, first)``: the same ack again is harmless
        (``first`` False), a different outcome for an ended command is a 409."""
        k = self.keys(agent_id)
        current = await self._redis.hgetall(k.command(command_id))  # type: ignore[misc]
        if not current:
            await self._check_owner(agent_id, user_id)
            raise NotFound("no such command for this agent (ended commands are kept 7 days)")
        h = {text(a): text(b) for a, b in current.items()}
        op, ticket, position = _position_change(h, ack)
        result = ack.model_dump(exclude_none=True, exclude={"outcome"})
        reply = await self._ack(
            keys=[
                k.meta,
                k.command(command_id),
                k.ready,
                k.delayed,
                k.leased,
                k.stats,
                self._shared.journal,
                k.positions,
            ],
            args=[
                user_id,
                command_id,
                ack.outcome,
                orjson.dumps(result).decode(),
                self.now_ms(),
                self.policy.ended_ttl_ms,
                op,
                ticket,
                position,
            ],
        )
        status = text(reply[0])
        self._raise_denied(status)
        if status == "missing":
            raise NotFound("no such command for this agent (ended commands are kept 7 days)")
        if status == "conflict":
            raise Conflict(
                f"the command is already {text(reply[1])}; it cannot become {ack.outcome}"
            )
        return command_public(agent_id, _pairs(reply[1])), status == "ok"

    async def get(self, agent_id: str, user_id: str, command_id: str) -> CommandPublic:
        raw = await self._redis.hgetall(self.keys(agent_id).command(command_id))  # type: ignore[misc]
        h = {text(a): text(b) for a, b in raw.items()}
        if not h or h.get("user_id") != user_id:
            raise NotFound("no such command for this agent (ended commands are kept 7 days)")
        return command_public(agent_id, h)

    async def page(
        self,
        agent_id: str,
        *,
        limit: int,
        before: int | None = None,
        states: Sequence[str] = (),
    ) -> CommandsPage:
        """The agent's commands, newest first, read-only: nothing is leased, expired or put
        back (a lease that ran out still shows ``leased`` until the agent's next poll settles
        it). The caller checks that the agent is the user's."""
        k = self.keys(agent_id)
        commands, after = await self._page(
            keys=[k.history],
            args=[
                k.command_prefix,
                "" if before is None else before,
                limit,
                self.policy.history_scan,
                ",".join(states),
            ],
        )
        next_before = text(after)
        return CommandsPage(
            [command_public(agent_id, _pairs(raw)) for raw in commands],
            int(next_before) if next_before else None,
        )

    async def stats(self, agent_ids: list[str]) -> list[QueueStats]:
        """Each agent's queue: pending and leased counts, ended counters, delivery samples
        (one pipelined round trip for all of them)."""
        pipe = self._redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            k = self.keys(agent_id)
            pipe.zcard(k.ready)
            pipe.zcard(k.delayed)
            pipe.zcard(k.leased)
            pipe.hgetall(k.stats)
            pipe.lrange(k.latency, 0, -1)
        replies = await pipe.execute()
        out = []
        for i in range(len(agent_ids)):
            ready, delayed, leased, counters, latency = replies[i * 5 : i * 5 + 5]
            out.append(
                QueueStats(
                    pending=int(ready) + int(delayed),
                    leased=int(leased),
                    ended={text(a): int(b) for a, b in counters.items()},
                    latency_us=[int(x) for x in latency],
                )
            )
        return out

    async def _check_owner(self, agent_id: str, user_id: str) -> None:
        owner = await self._redis.hget(self.keys(agent_id).meta, "user_id")  # type: ignore[misc]
        if owner is None:
            raise AgentUnknownInRedis(agent_id)
        if text(owner) != user_id:
            raise NotFound("no such agent")

    def _raise_denied(self, status: str) -> None:
        if status == "unknown":
            raise AgentUnknownInRedis("")
        if status == "foreign":
            raise NotFound("no such agent")


class AgentUnknownInRedis(Exception):
    """Redis has no record of the agent: the caller reloads it from PostgreSQL (or 404s)."""


def _percentile(samples_us: list[int], q: float) -> float | None:
    if not samples_us:
        return None
    ordered = sorted(samples_us)
    rank = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[rank] / 1000, 3)


def _position_change(h: Mapping[str, str], ack: CommandAck) -> tuple[str, str, str]:
    """How an executed command changes the platform's record of positions:
    ``(op, ticket, json)`` for the ack script (op ``none`` for anything else)."""
    if ack.outcome != "executed":
        return "none", "", ""
    body = orjson.loads(h.get("body", "{}"))
    kind = h["kind"]
    if kind == "open":
        ticket = ack.ticket or body.get("ticket")
        if not ticket:
            return "none", "", ""
        position = {
            "ticket": ticket,
            "symbol": body.get("symbol"),
            "side": body.get("side"),
            "volume": ack.volume if ack.volume else body.get("volume"),
            "open_price": ack.price,
            "sl": body.get("sl"),
            "tp": body.get("tp"),
            "command_id": h["id"],
            "idempotency_key": h["idem"],
            "origin": "command",
        }
        return "open", ticket, orjson.dumps(position).decode()
    if kind == "modify" and body.get("ticket"):
        change = {key: body[key] for key in ("sl", "tp") if key in body}  # only what it sets
        return "merge", body["ticket"], orjson.dumps(change).decode()
    if kind == "close" and body.get("ticket"):
        closed = ack.volume if ack.volume else body.get("volume")
        if closed:  # a partial close leaves the rest of the position
            return "reduce", body["ticket"], orjson.dumps({"volume": closed}).decode()
        return "del", body["ticket"], ""
    if kind == "close_all":
        return "clear", "", ""
    return "none", "", ""
