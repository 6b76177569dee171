"""Ticks pushed by users' agents, aggregated into 1m bars that go through the one ingest path.

The rule is `MinuteAggregator`'s for exchange trades (`market_data_service.providers.coinbase`):
per (owner, symbol) and minute, open is the first tick by time, high and low the extremes,
close the last tick by time and volume the sum of sizes; ticks of equal time count in arrival
order. A push sorts its ticks by time first, so the order inside one request does not matter.

The open minute lives in Redis, so every instance of the service and every restart sees the
same partial bar. One Lua script per push applies all of its ticks atomically:

- a tick of a minute older than the open one, or of a minute already closed, is *late*: counted,
  never applied (a closed bar is never rewritten);
- a tick whose ``id`` the open minute has already seen is a *duplicate* (the open minute's ids
  are a Redis set, emptied when the minute closes);
- a tick of a later minute closes the open one first;
- the open minute also closes once the wall clock is ``grace`` seconds past its end: checked
  at every push and by a background loop (`TickAggregator.run`) for series that went quiet.

Why the rule is restated in Lua instead of calling `MinuteBar.add`: the partial bar must be
updated atomically with the duplicate and late checks by whichever instance takes the push;
the tests pin the result to `MinuteAggregator`'s for the same ticks, bit for bit. Prices are
carried as the text the service formatted (``repr`` of the float) and compared as numbers, and
the volume is written with 17 significant digits, so no value loses a bit in Redis.

A closed minute is first *moved* to a per-series hash of closed bars (in the same script), then
stored with `BarIngestor.ingest` (history, window, ``market.bars`` event), then removed from
that hash. A crash or a history outage in between leaves it there, and the loop stores it
later: at least once into an ingest path that is idempotent by bar time, so exactly one bar
and one event. A minute already stored in history is never written again.

Keys, under ``{REDIS_PREFIX}md:t:``, with ``{series}`` = `algotrade.bars.owned_symbol`:
``{series}:bar`` (the open minute's hash, and ``lc``, the last closed minute),
``{series}:ids`` (ids seen in the open minute), ``{series}:closed`` (closed bars not yet stored),
``~open`` (sorted set: series by the end of their open minute) and ``~closing`` (set: series
with closed bars not yet stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import epoch
from algotrade.background import stop_task
from algotrade.bars import Bars, owned_symbol
from market_data_service import history
from market_data_service.batch import BarBatch
from market_data_service.ingest import BarIngestor
from market_data_service.schemas import TickIn

logger = logging.getLogger(__name__)

MINUTE: Final[int] = 60
SOURCE: Final[str] = "ticks"
NO_ID: Final[str] = "-"  # ids travel as "=<id>", so no id can be mistaken for this

_STATE_FIELDS = "'m', 'o', 'h', 'l', 'c', 'v', 'ot', 'ct', 'u'"

# KEYS: 1 the open minute's hash, 2 its ids, 3 closed bars, 4 ~open, 5 ~closing.
# ARGV: 1 series, 2 user id, 3 the latest minute the clock closes (open time, seconds),
# 4 ticks by time, one line each: "<ts ms> <minute> <price> <size> <=id or ->".
# Returns {accepted, late, duplicates, open minute or nil, {closed minutes}}.
_PUSH_LUA: Final[str] = """
local st = redis.call('HMGET', KEYS[1], 'm', 'o', 'h', 'l', 'c', 'v', 'ot', 'ct', 'u', 'lc')
local m, o, h, l, c = tonumber(st[1]), st[2], st[3], st[4], st[5]
local v, ot, ct, u, lc = tonumber(st[6]), st[7], st[8], st[9], tonumber(st[10])
local hn, ln, otn, ctn = tonumber(h), tonumber(l), tonumber(ot), tonumber(ct)
local accepted, late, dups, changed = 0, 0, 0, false
local closed = {}
local function close()
  redis.call('HSET', KEYS[3], m,
             table.concat({o, h, l, c, string.format('%.17g', v), u or ''}, ' '))
  closed[#closed + 1] = m
  lc, m, changed = m, nil, true
  redis.call('DEL', KEYS[2])
end
if m and m <= tonumber(ARGV[3]) then close() end
for ts, tm, p, s, id in string.gmatch(ARGV[4], '(%-?%d+) (%-?%d+) (%S+) (%S+) (%S+)') do
  local tmn = tonumber(tm)
  if (lc and tmn <= lc) or (m and tmn < m) then
    late = late + 1
  else
    if m and tmn > m then close() end
    if id ~= 'NO_ID' and redis.call('SADD', KEYS[2], id) == 0 then
      dups = dups + 1
    else
      local pn, tsn = tonumber(p), tonumber(ts)
      if not m then
        m, o, h, l, c, hn, ln = tmn, p, p, p, p, pn, pn
        v, ot, ct, otn, ctn = tonumber(s), ts, ts, tsn, tsn
      else
        if pn > hn then h, hn = p, pn end
        if pn < ln then l, ln = p, pn end
        if tsn < otn then o, ot, otn = p, ts, tsn end
        if tsn >= ctn then c, ct, ctn = p, ts, tsn end
        v = v + tonumber(s)
      end
      u, changed = ARGV[2], true
      accepted = accepted + 1
    end
  end
end
if changed then
  if m then
    redis.call('HSET', KEYS[1], 'm', m, 'o', o, 'h', h, 'l', l, 'c', c,
               'v', string.format('%.17g', v), 'ot', ot, 'ct', ct, 'u', u)
    redis.call('ZADD', KEYS[4], m + 60, ARGV[1])
  else
    redis.call('HDEL', KEYS[1], STATE_FIELDS)
    redis.call('ZREM', KEYS[4], ARGV[1])
  end
  if lc then redis.call('HSET', KEYS[1], 'lc', lc) end
  if #closed > 0 then redis.call('SADD', KEYS[5], ARGV[1]) end
end
return {accepted, late, dups, m or false, closed}
""".replace("NO_ID", NO_ID).replace("STATE_FIELDS", _STATE_FIELDS)

# The open minute of one series closes if it opened at or before ARGV[2] (the clock's rule).
# KEYS and ARGV[1] as above. Returns the closed minute, or nil.
_CLOSE_IDLE_LUA: Final[str] = """
local st = redis.call('HMGET', KEYS[1], 'm', 'o', 'h', 'l', 'c', 'v', 'u')
local m = tonumber(st[1])
if not m then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return false
end
if m > tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[3], m, table.concat({st[2], st[3], st[4], st[5], st[6], st[7] or ''}, ' '))
redis.call('HDEL', KEYS[1], STATE_FIELDS)
redis.call('HSET', KEYS[1], 'lc', m)
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return m
""".replace("STATE_FIELDS", _STATE_FIELDS)

# Closed bars stored: KEYS 1 closed bars, 2 ~closing; ARGV 1 series, 2.. their minutes.
_STORED_LUA: Final[str] = """
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Ticks:
    """A push's ticks as columns: epoch milliseconds, prices, sizes and optional ids."""

    ts: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    ids: Sequence[str | None]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def script_lines(self) -> bytes:
        """The ticks by time (arrival order among equal times) as the push script reads them."""
        order = np.argsort(self.ts, kind="stable")
        minutes = epoch.floor_to_step(epoch.seconds_from_ms(self.ts), MINUTE)
        ts, minute = self.ts.tolist(), minutes.tolist()
        price, size, ids = self.price.tolist(), self.size.tolist(), self.ids
        return "\n".join(
            [
                f"{ts[i]} {minute[i]} {price[i]!r} {size[i]!r} "
                + (NO_ID if ids[i] is None else f"={ids[i]}")
                for i in order.tolist()
            ]
        ).encode()


@dataclass(frozen=True, slots=True)
class TickOutcome:
    accepted: int
    late: int
    duplicates: int
    closed: list[int]  # open times (epoch seconds) of the minutes this push closed
    open_minute: int | None


@dataclass(frozen=True, slots=True)
class _SeriesKeys:
    bar: str
    ids: str
    closed: str


class TickMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ticks = Counter(
            "market_ticks_total", "Pushed ticks, by outcome", ["outcome"], registry=registry
        )
        self.closed = Counter(
            "market_tick_minutes_closed_total",
            "Minutes of ticks closed, by what closed them",
            ["by"],
            registry=registry,
        )


class TickAggregator:
    """Pushed ticks to 1m bars of their owner's series (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        ingestor: BarIngestor,
        sessions: async_sessionmaker[AsyncSession],
        prefix: str = "",
        grace_seconds: float,
        interval_seconds: float,
        metrics: TickMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ingestor = ingestor
        self._sessions = sessions
        self._prefix = f"{prefix}md:t:"
        self._open_index = f"{self._prefix}~open"
        self._closing = f"{self._prefix}~closing"
        self.grace_seconds = grace_seconds
        self._interval = interval_seconds
        self._metrics = metrics
        self._clock = clock
        self._push = redis.register_script(_PUSH_LUA)
        self._close_idle = redis.register_script(_CLOSE_IDLE_LUA)
        self._stored = redis.register_script(_STORED_LUA)

    def now(self) -> float:
        """The wall clock minutes close by (epoch seconds)."""
        return self._clock()

    def _keys(self, series: str) -> _SeriesKeys:
        base = f"{self._prefix}{series}"
        return _SeriesKeys(f"{base}:bar", f"{base}:ids", f"{base}:closed")

    def _script_keys(self, series: str) -> list[str]:
        keys = self._keys(series)
        return [keys.bar, keys.ids, keys.closed, self._open_index, self._closing]

    def _latest_closable(self, now: float) -> float:
        """Open time of the latest minute the clock has closed: its end plus the grace."""
        return now - self.grace_seconds - MINUTE

    async def push(
        self, owner: str, symbol: str, ticks: Ticks, *, user_id: str | None
    ) -> TickOutcome:
        """Apply ``ticks`` to ``owner``'s ``symbol`` (the caller checked the right to write
        it), then store the minutes that closed. A history outage leaves the closed minutes
        to the background loop; the ticks stay applied either way."""
        series = owned_symbol(owner, symbol)
        reply = await self._push(
            keys=self._script_keys(series),
            args=[
                series,
                user_id or "",
                repr(self._latest_closable(self._clock())),
                ticks.script_lines(),
            ],
        )
        accepted, late, duplicates, open_minute, closed = reply
        outcome = TickOutcome(
            int(accepted),
            int(late),
            int(duplicates),
            [int(m) for m in closed],
            None if open_minute is None else int(open_minute),
        )
        if self._metrics is not None:
            for name, count in (("accepted", accepted), ("late", late), ("duplicate", duplicates)):
                if count:
                    self._metrics.ticks.labels(name).inc(count)
            if outcome.closed:
                self._metrics.closed.labels("tick").inc(len(outcome.closed))
        if outcome.closed:
            try:
                await self.store_closed(series)
            except (SQLAlchemyError, OSError, RedisError) as exc:
                logger.warning(
                    "ticks: %d closed minute(s) of %s wait for the background loop (%s)",
                    len(outcome.closed),
                    series,
                    exc,
                )
        return outcome

    async def store_closed(self, series: str) -> int:
        """Store the closed minutes of ``series`` not yet stored (new to history only); the
        number of bars handed to the ingest path."""
        keys = self._keys(series)
        raw: dict[bytes, bytes] = await self._redis.hgetall(keys.closed)  # type: ignore[assignment,misc]
        if not raw:
            await self._stored(keys=[keys.closed, self._closing], args=[series])
            return 0
        owner, _, symbol = series.rpartition("/")
        minutes = sorted(int(m) for m in raw)
        async with self._sessions() as session:
            present = await history.read_timestamps(
                session, owner, symbol, "1m", minutes[0], minutes[-1] + MINUTE
            )
        if present.size:
            logger.info(
                "ticks: %d closed minute(s) of %s are in history already; not written again",
                int(np.isin(minutes, present).sum()),
                series,
            )
        by_user: dict[str, list[tuple[int, list[str]]]] = {}
        for minute in np.setdiff1d(minutes, present).tolist():
            *values, user = raw[str(minute).encode()].decode().split(" ", 5)
            by_user.setdefault(user, []).append((minute, values))
        stored = 0
        for user, rows in by_user.items():
            stored += await self._ingest(owner, symbol, rows, user or None)
        await self._stored(keys=[keys.closed, self._closing], args=[series, *minutes])
        return stored

    async def _ingest(
        self, owner: str, symbol: str, rows: list[tuple[int, list[str]]], user_id: str | None
    ) -> int:
        columns = np.array([[float(x) for x in values] for _, values in rows], np.float64)
        bars = Bars.from_columns(
            epoch.ms_from_seconds(np.array([m for m, _ in rows], np.int64)), *columns.T
        )
        valid, rejections = BarBatch.of_series(symbol, "1m", bars).validate()
        for rejection in rejections:  # cannot happen by construction; never silently dropped
            logger.error("ticks: %s/%s bar rejected: %s", owner, symbol, rejection.message)
        await self._ingestor.ingest(valid, owner=owner, source=SOURCE, user_id=user_id)
        return len(valid)

    async def close_idle(self) -> int:
        """Close every open minute the clock has closed, then store every closed minute not
        yet stored (also those a crash or an outage left behind); the bars stored."""
        now = self._clock()
        due = await self._redis.zrangebyscore(self._open_index, "-inf", now - self.grace_seconds)
        cutoff = repr(self._latest_closable(now))
        for member in due:
            series = _text(member)
            closed = await self._close_idle(keys=self._script_keys(series), args=[series, cutoff])
            if closed is not None and self._metrics is not None:
                self._metrics.closed.labels("clock").inc()
        stored = 0
        for member in await self._redis.smembers(self._closing):  # type: ignore[misc]
            series = _text(member)
            try:
                stored += await self.store_closed(series)
            except (SQLAlchemyError, OSError) as exc:
                logger.warning("ticks: storing closed minutes of %s failed (%s)", series, exc)
        return stored

    async def run(self, stop: asyncio.Event) -> None:
        """Close idle minutes every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.close_idle()
            except (RedisError, OSError) as exc:
                logger.warning("ticks: closing idle minutes failed (%s)", exc)
            except Exception:
                logger.exception("ticks: closing idle minutes failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TickAggregator]:
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="tick-minutes")
        try:
            yield self
        finally:
            await stop_task(task, stop)


def ticks_from_models(items: Sequence[TickIn]) -> Ticks:
    """Validated tick models as columns."""
    n = len(items)
    return Ticks(
        ts=np.fromiter((t.ts_ms for t in items), np.int64, n),
        price=np.fromiter((t.price for t in items), np.float64, n),
        size=np.fromiter((t.size for t in items), np.float64, n),
        ids=[t.id for t in items],
    )


def _text(value: Any) -> str:
    """A Redis reply's member as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
