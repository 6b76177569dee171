"""Redis sliding windows: the most recent bars of each (symbol, timeframe), bounded in size.

Layout, per series (``SYMBOL:timeframe``):

- ``{prefix}md:w:{SYMBOL}:{tf}``: one sorted set scored by open time (epoch seconds), where
  ``SYMBOL`` is `algotrade.bars.owned_symbol` (``owner/SYMBOL`` for a user's own series). A bar's
  member is 16 hex digits of its *version* followed by its canonical JSON
  (`algotrade.bars.encode_bar_json`), one member per timestamp.
- In the same set, the member ``~warm`` with score ``+inf`` says the window was filled from
  history, so a reader can tell a complete window from a cold one (after a restart, an
  eviction or an invalidation). Being a member of the same key, it cannot outlive the bars.

Latest-N is one plain ``ZRANGE key -(N+1) -1``: the last member is the warm marker when the
window is warm, and the bars' JSON goes to clients without being decoded.

An upsert is one Lua call for any number of bars and series, atomic, with a per-bar outcome:
the same bar twice is one bar (*duplicate*); a different bar at a stored timestamp replaces it
(*corrected*) unless its version is older than the stored one (*stale*: a late writer never
rolls a correction back); new timestamps are *accepted* and land in time order wherever they
fall. The window then trims to its capacity, dropping the oldest bars. Versions come from the
history store (a sequence that grows with every stored change); callers without one pass 0 and
get plain "last write wins by content".

The window is a cache: everything in it can be rebuilt from history, so the writer commits
history first and updates the window second (see the market data service docs).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
from redis.asyncio import Redis

from algotrade.bars import Bar

VERSION_DIGITS: Final[int] = 16
DEFAULT_CAPACITY: Final[int] = 10_000
_FAST_ADD_CHUNK: Final[int] = 1000

WARM_MARKER: Final[bytes] = b"~warm"  # never a bar member: those start with hex digits

# KEYS[k] = the sorted set of series k; ARGV[1] = capacity, ARGV[k + 1] = that series' bars as
# one blob of lines "<ts> <member>" (one argument per series instead of two per bar: packing
# arguments dominated the client's cost). Returns an outcome code per bar, in order, then the
# number of bars trimmed per series.
_UPSERT_LUA: Final[str] = (
    """
local cap = tonumber(ARGV[1])
local out = {}
local trimmed = {}
for k = 1, #KEYS do
  local key = KEYS[k]
  local warm = 0
  if redis.call('ZSCORE', key, 'MARKER') then warm = 1 end
  local top = redis.call('ZRANGE', key, -1 - warm, -1 - warm, 'WITHSCORES')
  local maxts = -math.huge
  if #top == 2 then maxts = tonumber(top[2]) end
  local buf = {}
  for ts, m in string.gmatch(ARGV[k + 1], '(%-?%d+) ([^\\n]+)') do
    local tsn = tonumber(ts)
    if tsn > maxts then
      -- newer than anything stored: no member can share this timestamp
      buf[#buf + 1] = ts
      buf[#buf + 1] = m
      maxts = tsn
      out[#out + 1] = 1
      if #buf >= 2 * CHUNK then
        redis.call('ZADD', key, unpack(buf))
        buf = {}
      end
    else
      if #buf > 0 then
        redis.call('ZADD', key, unpack(buf))
        buf = {}
      end
      local ex = redis.call('ZRANGE', key, ts, ts, 'BYSCORE')
      if #ex == 0 then
        redis.call('ZADD', key, ts, m)
        out[#out + 1] = 1
      else
        local old = ex[1]
        if old == m then
          out[#out + 1] = 0
        elseif string.sub(m, 1, DIGITS) < string.sub(old, 1, DIGITS) then
          out[#out + 1] = 3
        else
          redis.call('ZREM', key, old)
          redis.call('ZADD', key, ts, m)
          if string.sub(old, DIGITS + 1) == string.sub(m, DIGITS + 1) then
            out[#out + 1] = 0
          else
            out[#out + 1] = 2
          end
        end
      end
    end
  end
  if #buf > 0 then redis.call('ZADD', key, unpack(buf)) end
  local size = redis.call('ZCARD', key) - warm
  local cut = 0
  if size > cap then
    cut = size - cap
    -- the marker scores +inf: the lowest ranks are always the oldest bars
    redis.call('ZREMRANGEBYRANK', key, 0, cut - 1)
  end
  trimmed[#trimmed + 1] = cut
end
for i = 1, #trimmed do out[#out + 1] = trimmed[i] end
return out
""".replace("CHUNK", str(_FAST_ADD_CHUNK))
    .replace("DIGITS", str(VERSION_DIGITS))
    .replace("MARKER", WARM_MARKER.decode())
)

# KEYS[1] = sorted set; ARGV = start, end (exclusive), limit.
# Returns {warm, number of bars, first open time or '', members}.
_RANGE_LUA: Final[str] = """
local warm = 0
if redis.call('ZSCORE', KEYS[1], 'MARKER') then warm = 1 end
local size = redis.call('ZCARD', KEYS[1]) - warm
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local firstts = ''
if #first == 2 and first[1] ~= 'MARKER' then firstts = first[2] end
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '(' .. ARGV[2], 'BYSCORE',
                           'LIMIT', 0, tonumber(ARGV[3]))
return {warm, size, firstts, members}
""".replace("MARKER", WARM_MARKER.decode())


class WindowOutcome(enum.IntEnum):
    """What an upsert did with one bar."""

    DUPLICATE = 0
    ACCEPTED = 1
    CORRECTED = 2
    STALE = 3


class WindowEntry(NamedTuple):
    """A bar as the window stores it: open time, canonical JSON, and its history version.

    A named tuple, not a dataclass: ingestion builds one per bar and this is the cheapest."""

    ts: int
    payload: bytes
    version: int = 0

    def member(self) -> bytes:
        return b"%016x" % self.version + self.payload


_OUTCOMES: Final[tuple[WindowOutcome, ...]] = tuple(WindowOutcome)


@dataclass(frozen=True, slots=True)
class WindowRange:
    """Bars of a time range read from a window and whether the window covers all of it."""

    payloads: list[bytes]
    covers: bool


@dataclass(frozen=True, slots=True)
class UpsertResult:
    outcomes: dict[tuple[str, str], list[WindowOutcome]]
    trimmed: dict[tuple[str, str], int]


def encode_entries(entries: Iterable[tuple[int, int, bytes]]) -> bytes:
    """``(ts, version, payload)`` triples as the lines `SlidingWindows.upsert_encoded` takes."""
    return b"\n".join([b"%d %016x%b" % entry for entry in entries])


def strip_version(member: bytes) -> bytes:
    """The bar JSON of a stored member."""
    return member[VERSION_DIGITS:]


class SlidingWindows:
    """All windows under one key prefix, each holding at most ``capacity`` bars."""

    def __init__(self, redis: Redis, *, prefix: str = "", capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("window capacity must be at least 1")
        self._redis = redis
        self._prefix = f"{prefix}md:w:"
        self.capacity = capacity
        self._upsert = redis.register_script(_UPSERT_LUA)
        self._range = redis.register_script(_RANGE_LUA)

    def key(self, symbol: str, timeframe: str) -> str:
        return f"{self._prefix}{symbol}:{timeframe}"

    async def upsert(
        self, symbol: str, timeframe: str, entries: Sequence[WindowEntry]
    ) -> list[WindowOutcome]:
        """Upsert bars of one series atomically; one outcome per entry, in order."""
        result = await self.upsert_many({(symbol, timeframe): entries})
        return result.outcomes.get((symbol, timeframe), [])

    async def upsert_bars(self, bars: Sequence[Bar]) -> list[WindowOutcome]:
        """Upsert unversioned `Bar` objects of any series (one Lua call); outcomes in order."""
        grouped: dict[tuple[str, str], list[tuple[int, WindowEntry]]] = {}
        for i, bar in enumerate(bars):
            grouped.setdefault((bar.symbol, bar.timeframe), []).append(
                (i, WindowEntry(bar.ts, bar.to_json()))
            )
        result = await self.upsert_many(
            {series: [entry for _, entry in items] for series, items in grouped.items()}
        )
        outcomes = [WindowOutcome.DUPLICATE] * len(bars)
        for series, items in grouped.items():
            for (i, _), outcome in zip(items, result.outcomes[series], strict=True):
                outcomes[i] = outcome
        return outcomes

    async def upsert_many(
        self, series: Mapping[tuple[str, str], Sequence[WindowEntry]]
    ) -> UpsertResult:
        """Upsert bars of several series in one atomic script call."""
        return await self.upsert_encoded(
            {
                name: (
                    encode_entries([(e.ts, e.version, e.payload) for e in entries]),
                    len(entries),
                )
                for name, entries in series.items()
                if entries
            }
        )

    async def upsert_encoded(
        self, series: Mapping[tuple[str, str], tuple[bytes, int]]
    ) -> UpsertResult:
        """`upsert_many` for callers that built the lines with `encode_entries` themselves
        (the ingest path does it in the same pass that encodes the bars)."""
        keys: list[str] = []
        args: list[Any] = [self.capacity]
        order: list[tuple[tuple[str, str], int]] = []
        for (symbol, timeframe), (blob, count) in series.items():
            if count == 0:
                continue
            if blob.count(b"\n") != count - 1:
                raise ValueError("a window payload must not contain a newline")
            keys.append(self.key(symbol, timeframe))
            args.append(blob)
            order.append(((symbol, timeframe), count))
        if not order:
            return UpsertResult({}, {})
        raw: list[int] = await self._upsert(keys=keys, args=args)
        outcomes: dict[tuple[str, str], list[WindowOutcome]] = {}
        trimmed: dict[tuple[str, str], int] = {}
        pos = 0
        for name, count in order:
            outcomes[name] = [_OUTCOMES[code] for code in raw[pos : pos + count]]
            pos += count
        for (name, _), cut in zip(order, raw[pos:], strict=True):
            trimmed[name] = int(cut)
        return UpsertResult(outcomes, trimmed)

    async def latest_members(self, symbol: str, timeframe: str, n: int) -> list[bytes] | None:
        """The newest ``n`` stored members, oldest first; None when the window is cold.

        One plain ``ZRANGE``: the extra last member is the warm marker of a warm window.
        """
        if n < 1:
            return []
        members: list[Any] = await self._redis.zrange(self.key(symbol, timeframe), -n - 1, -1)
        if not members or members[-1] != WARM_MARKER:
            return None
        members.pop()
        return members[-n:] if len(members) > n else members

    async def latest_raw(self, symbol: str, timeframe: str, n: int) -> list[bytes] | None:
        """The newest ``n`` bars as canonical JSON, oldest first; None when cold."""
        members = await self.latest_members(symbol, timeframe, n)
        if members is None:
            return None
        return [m[VERSION_DIGITS:] for m in members]

    async def latest(self, symbol: str, timeframe: str, n: int) -> list[Bar] | None:
        raw = await self.latest_raw(symbol, timeframe, n)
        if raw is None:
            return None
        return [Bar.from_json(symbol, timeframe, payload) for payload in raw]

    async def range_raw(
        self, symbol: str, timeframe: str, start: int, end: int, *, limit: int = 10_000
    ) -> WindowRange:
        """Bars with ``start <= ts < end`` (JSON, oldest first), and whether that is all of them.

        ``covers`` is true only when the window is warm and holds the whole range: either it
        is not full (so it holds every stored bar) or its oldest bar is not after ``start``.
        """
        reply: list[Any] = await self._range(
            keys=[self.key(symbol, timeframe)], args=[start, end, limit]
        )
        warm, size, first, members = reply
        covers = bool(warm) and (
            int(size) < self.capacity or (first != b"" and float(first) <= start)
        )
        return WindowRange([m[VERSION_DIGITS:] for m in members], covers)

    async def range(
        self, symbol: str, timeframe: str, start: int, end: int, *, limit: int = 10_000
    ) -> list[Bar]:
        window = await self.range_raw(symbol, timeframe, start, end, limit=limit)
        return [Bar.from_json(symbol, timeframe, p) for p in window.payloads]

    async def timestamps(self, symbol: str, timeframe: str, start: int, end: int) -> list[int]:
        """Open times stored in ``[start, end)``, ascending."""
        pairs: list[Any] = await self._redis.zrange(
            self.key(symbol, timeframe), start, f"({end}", byscore=True, withscores=True
        )
        return [int(pair[1]) for pair in pairs]

    async def missing(
        self, symbol: str, timeframe: str, start: int, end: int, step: int
    ) -> list[int]:
        """Open times every ``step`` seconds in ``[start, end)`` that the window lacks.

        A continuous (24/7) expectation; session calendars belong to the caller.
        """
        first = start + (-start) % step
        expected = np.arange(first, end, step, dtype=np.int64)
        present = np.asarray(await self.timestamps(symbol, timeframe, start, end), dtype=np.int64)
        return [int(t) for t in np.setdiff1d(expected, present, assume_unique=True)]

    async def size(self, symbol: str, timeframe: str) -> int:
        """Bars in the window (the warm marker is not a bar)."""
        key = self.key(symbol, timeframe)
        total = int(await self._redis.zcard(key))
        return total - (1 if await self._redis.zscore(key, WARM_MARKER) is not None else 0)

    async def is_warm(self, symbol: str, timeframe: str) -> bool:
        return await self._redis.zscore(self.key(symbol, timeframe), WARM_MARKER) is not None

    async def mark_warm(self, symbol: str, timeframe: str) -> None:
        await self._redis.zadd(self.key(symbol, timeframe), {WARM_MARKER: float("inf")})

    async def fill(self, symbol: str, timeframe: str, entries: Sequence[WindowEntry]) -> None:
        """Load bars read from history and mark the window warm.

        Safe against concurrent writers: versions decide, so an older history read never
        replaces a newer bar a writer put in meanwhile.
        """
        if entries:
            await self.upsert(symbol, timeframe, entries)
        await self.mark_warm(symbol, timeframe)

    async def invalidate(self, symbol: str, timeframe: str) -> None:
        """Make the window cold: the next reader refills it from history."""
        await self._redis.zrem(self.key(symbol, timeframe), WARM_MARKER)

    async def drop(self, symbol: str, timeframe: str) -> None:
        await self._redis.delete(self.key(symbol, timeframe))

    async def clear_warm_flags(self) -> int:
        """Make every window under this prefix cold (start-up: a crash may have left a window
        behind history); returns how many were warm."""
        cleared = 0
        async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=1000):
            cleared += int(await self._redis.zrem(key, WARM_MARKER))
        return cleared
