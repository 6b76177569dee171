"""Durable bar history in PostgreSQL: bulk upsert with classification, pages, ranges, summary.

One statement stores a whole batch: ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO
UPDATE ... WHERE (values differ) RETURNING``. A returned row that was inserted is *accepted*,
one that was updated is *corrected* (its ``revision`` grows and it takes a new ``version`` from
a sequence), and a bar that is not returned was identical to the stored one: a *duplicate*.
The ``version`` is what `algotrade.windows` uses to order concurrent writers.

Every function takes the ``owner`` of the series (a user id, or ``models.PLATFORM``): one
batch, one page, one summary always belongs to exactly one owner (see
`market_data_service.owners`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from algotrade import epoch
from algotrade.bars import Bars
from market_data_service.batch import BarBatch

Executor = AsyncSession | AsyncConnection

OUTCOME_DUPLICATE = 0
OUTCOME_ACCEPTED = 1
OUTCOME_CORRECTED = 2

# Arrays travel as JSON text written by orjson straight from NumPy ('[1.5,2.25]'), turned into
# array literals ('{1.5,2.25}') and cast in SQL: PostgreSQL's C parser reads them far faster
# than the driver encodes a Python list element by element. Both sides use shortest
# round-trip float text, so every value arrives bit for bit.
_UPSERT_TEMPLATE = """
WITH written AS (
  INSERT INTO market.bars AS b
         (owner, symbol, timeframe, ts, open, high, low, close, volume, source)
  SELECT CAST(:owner AS text), {symbol}, {timeframe}, to_timestamp(u.t), u.o, u.h, u.l, u.c,
         u.v, :source
  FROM unnest({extra}CAST(translate(CAST(:ts AS text), '[]', '{{}}') AS int8[]),
              CAST(translate(CAST(:open AS text), '[]', '{{}}') AS float8[]),
              CAST(translate(CAST(:high AS text), '[]', '{{}}') AS float8[]),
              CAST(translate(CAST(:low AS text), '[]', '{{}}') AS float8[]),
              CAST(translate(CAST(:close AS text), '[]', '{{}}') AS float8[]),
              CAST(translate(CAST(:volume AS text), '[]', '{{}}') AS float8[]))
       AS u({extra_names}t, o, h, l, c, v)
  ON CONFLICT (owner, symbol, timeframe, ts) DO UPDATE
     SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
         close = EXCLUDED.close, volume = EXCLUDED.volume, source = EXCLUDED.source,
         revision = b.revision + 1, version = nextval('market.bar_version_seq'),
         updated_at = now()
     WHERE (b.open, b.high, b.low, b.close, b.volume)
           IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,
                             EXCLUDED.volume)
  RETURNING b.symbol, b.timeframe, b.ts, (b.xmax = 0) AS inserted, b.revision, b.version
)
SELECT {keys},
       coalesce(array_agg(extract(epoch FROM ts)::int8), '{{}}'),
       coalesce(array_agg(inserted), '{{}}'),
       coalesce(array_agg(revision), '{{}}'),
       coalesce(array_agg(version), '{{}}')
FROM written
"""
_UPSERT_ONE_SERIES = text(
    _UPSERT_TEMPLATE.format(
        symbol="CAST(:symbol AS text)",
        timeframe="CAST(:timeframe AS text)",
        extra="",
        extra_names="",
        keys="NULL::text[]",
    )
)
_UPSERT_MANY_SERIES = text(
    _UPSERT_TEMPLATE.format(
        symbol="u.s",
        timeframe="u.tf",
        extra="CAST(CAST(:symbols AS text) AS text[]), CAST(CAST(:timeframes AS text) AS text[]), ",
        extra_names="s, tf, ",
        keys="coalesce(array_agg(symbol || ':' || timeframe), '{}')",
    )
)


def _numbers(values: npt.NDArray[Any]) -> str:
    """A NumPy column as JSON text (the SQL turns brackets into braces)."""
    return orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _names(values: list[str]) -> str:
    """An array literal of names matching `SYMBOL_PATTERN` or timeframes (no quoting needed:
    they contain no commas, braces, quotes or spaces)."""
    return "{" + ",".join(values) + "}"


_SERIES = text(
    """
INSERT INTO market.series AS s (owner, symbol, timeframe, first_ts, last_ts, bar_count)
SELECT CAST(:owner AS text), u.s, u.tf, to_timestamp(u.f), to_timestamp(u.l), u.n
FROM unnest(CAST(:symbols AS text[]), CAST(:timeframes AS text[]), CAST(:first AS int8[]),
            CAST(:last AS int8[]), CAST(:counts AS int8[])) AS u(s, tf, f, l, n)
ORDER BY u.s, u.tf
ON CONFLICT (owner, symbol, timeframe) DO UPDATE
   SET first_ts = least(s.first_ts, EXCLUDED.first_ts),
       last_ts = greatest(s.last_ts, EXCLUDED.last_ts),
       bar_count = s.bar_count + EXCLUDED.bar_count,
       updated_at = now()
"""
)

_COLUMNS = """
SELECT coalesce(array_agg(t ORDER BY t), '{{}}'), coalesce(array_agg(o ORDER BY t), '{{}}'),
       coalesce(array_agg(h ORDER BY t), '{{}}'), coalesce(array_agg(l ORDER BY t), '{{}}'),
       coalesce(array_agg(c ORDER BY t), '{{}}'), coalesce(array_agg(v ORDER BY t), '{{}}'),
       coalesce(array_agg(ver ORDER BY t), '{{}}')
FROM (
  SELECT extract(epoch FROM ts)::int8 AS t, open AS o, high AS h, low AS l, close AS c,
         volume AS v, version AS ver
  FROM market.bars
  WHERE owner = :owner AND symbol = :symbol AND timeframe = :timeframe {where}
  ORDER BY ts {order}
  LIMIT :limit
) page
"""
_RANGE = text(
    _COLUMNS.format(where="AND ts >= to_timestamp(:lo) AND ts < to_timestamp(:hi)", order="ASC")
)
_LATEST = text(_COLUMNS.format(where="", order="DESC"))

# A whole range as one bytea of fixed 48-byte big-endian records built by PostgreSQL's own
# send functions (the same bytes binary COPY writes): asyncpg hands over one bytes object
# instead of six lists of Python floats, and NumPy splits it into columns with no per-row step.
# One aggregate, so one sort of the already ordered page. The open time travels as PostgreSQL's
# own timestamptz (microseconds since 2000-01-01): converting it per row in SQL cost more than
# the whole column's arithmetic in NumPy.
_RECORD = np.dtype(
    [("ts", ">i8"), ("open", ">f8"), ("high", ">f8"), ("low", ">f8"), ("close", ">f8"),
     ("volume", ">f8")]
)  # fmt: skip
_PACKED_RANGE = text(
    """
SELECT count(*),
       coalesce(string_agg(timestamptz_send(ts) || float8send(open) || float8send(high)
                           || float8send(low) || float8send(close) || float8send(volume),
                           ''::bytea ORDER BY ts), ''::bytea)
FROM (
  SELECT ts, open, high, low, close, volume
  FROM market.bars
  WHERE owner = :owner AND symbol = :symbol AND timeframe = :timeframe
    AND ts >= to_timestamp(:lo) AND ts < to_timestamp(:hi)
  ORDER BY ts
  LIMIT :limit
) page
"""
)

_TIMESTAMPS = text(
    """
SELECT coalesce(array_agg(extract(epoch FROM ts)::int8 ORDER BY ts), '{}')
FROM market.bars
WHERE owner = :owner AND symbol = :symbol AND timeframe = :timeframe
  AND ts >= to_timestamp(:lo) AND ts < to_timestamp(:hi)
"""
)

_SERIES_LIST = text(
    """
SELECT owner, symbol, timeframe, extract(epoch FROM first_ts)::int8,
       extract(epoch FROM last_ts)::int8, bar_count
FROM market.series
WHERE owner = ANY(CAST(:owners AS text[]))
  AND (CAST(:symbol AS text) IS NULL OR symbol = :symbol)
ORDER BY symbol, owner, timeframe
"""
)


@dataclass
class UpsertResult:
    """Per bar of the written batch (same order): outcome, revision and version after writing."""

    outcome: npt.NDArray[np.int8]
    revision: npt.NDArray[np.int64]
    version: npt.NDArray[np.int64]


@dataclass(frozen=True)
class SeriesSummary:
    owner: str
    symbol: str
    timeframe: str
    first_ts: int
    last_ts: int
    bar_count: int


async def upsert_bars(db: Executor, batch: BarBatch, *, owner: str, source: str) -> UpsertResult:
    """Store a batch of ``owner``'s series with unique (symbol, timeframe, ts) keys, sorted by
    them (lock order).

    Callers sort and de-duplicate first (see `market_data_service.ingest`), so two concurrent
    batches lock rows in the same order and cannot deadlock.
    """
    n = len(batch)
    outcome = np.zeros(n, np.int8)
    revision = np.zeros(n, np.int64)
    version = np.zeros(n, np.int64)
    if n == 0:
        return UpsertResult(outcome, revision, version)
    bars = batch.bars
    seconds = bars.seconds()
    params: dict[str, Any] = {
        "owner": owner,
        "source": source,
        "ts": _numbers(seconds),
        "open": _numbers(bars.open),
        "high": _numbers(bars.high),
        "low": _numbers(bars.low),
        "close": _numbers(bars.close),
        "volume": _numbers(bars.volume),
    }
    single = bool(
        (batch.symbol == batch.symbol[0]).all() and (batch.timeframe == batch.timeframe[0]).all()
    )
    if single:
        params.update(symbol=batch.symbol[0], timeframe=batch.timeframe[0])
        statement = _UPSERT_ONE_SERIES
    else:
        params.update(
            symbols=_names(batch.symbol.tolist()), timeframes=_names(batch.timeframe.tolist())
        )
        statement = _UPSERT_MANY_SERIES
    row = (await db.execute(statement, params)).one()
    keys, stamps, inserted, revisions, versions = row
    if not stamps:
        return UpsertResult(outcome, revision, version)
    returned = np.asarray(stamps, np.int64)
    if single:
        order = np.argsort(seconds, kind="stable")
        positions = order[np.searchsorted(seconds, returned, sorter=order)]
    else:
        positions = _positions(batch, seconds, keys, returned)
    outcome[positions] = np.where(
        np.asarray(inserted, bool), OUTCOME_ACCEPTED, OUTCOME_CORRECTED
    ).astype(np.int8)
    revision[positions] = revisions
    version[positions] = versions
    return UpsertResult(outcome, revision, version)


def _positions(
    batch: BarBatch,
    seconds: npt.NDArray[np.int64],
    keys: Sequence[str],
    stamps: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Where each returned (series, ts in seconds) sits in a multi-series batch."""
    codes: dict[str, int] = {}
    batch_codes = np.fromiter(
        (
            codes.setdefault(f"{s}:{tf}", len(codes))
            for s, tf in zip(batch.symbol.tolist(), batch.timeframe.tolist(), strict=True)
        ),
        np.int64,
        len(batch),
    )
    returned_codes = np.fromiter((codes[k] for k in keys), np.int64, len(keys))
    # (code, ts) packed in one int64: codes < 2**28, ts - MIN_TS < 2**34.
    offset = np.int64(2_208_988_800)
    packed_batch = (batch_codes << 34) + (seconds + offset)
    packed_returned = (returned_codes << 34) + (stamps + offset)
    order = np.argsort(packed_batch, kind="stable")
    found = np.searchsorted(packed_batch, packed_returned, sorter=order)
    return order[found]


async def update_series(
    db: Executor, counts: dict[tuple[str, str], tuple[int, int, int]], *, owner: str
) -> None:
    """Add newly inserted bars of ``owner``'s series to the per-series summary:
    {(symbol, tf): (first, last, n)}."""
    if not counts:
        return
    items = sorted(counts.items())
    await db.execute(
        _SERIES,
        {
            "owner": owner,
            "symbols": [k[0] for k, _ in items],
            "timeframes": [k[1] for k, _ in items],
            "first": [v[0] for _, v in items],
            "last": [v[1] for _, v in items],
            "counts": [v[2] for _, v in items],
        },
    )


def _bars(row: Any) -> tuple[Bars, npt.NDArray[np.int64]]:
    """A `_COLUMNS` row: the bars (times read in seconds) and each bar's version."""
    ts, o, h, lo, c, v, ver = row
    bars = Bars.from_columns(epoch.ms_from_seconds(np.asarray(ts, np.int64)), o, h, lo, c, v)
    return bars, np.asarray(ver, np.int64)


async def read_range(
    db: Executor, owner: str, symbol: str, timeframe: str, start: int, end: int, *, limit: int
) -> Bars:
    """Up to ``limit`` bars with ``start <= ts < end`` (epoch seconds), ascending."""
    row = (
        await db.execute(
            _RANGE,
            {
                "owner": owner,
                "symbol": symbol,
                "timeframe": timeframe,
                "lo": start,
                "hi": end,
                "limit": limit,
            },
        )
    ).one()
    return _bars(row)[0]


async def read_range_packed(
    db: Executor, owner: str, symbol: str, timeframe: str, start: int, end: int, *, limit: int
) -> Bars:
    """Up to ``limit`` bars with ``start <= ts < end``, ascending, read in one statement as
    packed binary records (see `_PACKED_RANGE`), never as per-row Python objects."""
    count, packed = (
        await db.execute(
            _PACKED_RANGE,
            {
                "owner": owner,
                "symbol": symbol,
                "timeframe": timeframe,
                "lo": start,
                "hi": end,
                "limit": limit,
            },
        )
    ).one()
    records = np.frombuffer(packed, _RECORD, count=int(count))
    return Bars(
        ts=epoch.ms_from_postgres_micros(records["ts"].astype(np.int64)),
        **{name: records[name].astype(np.float64) for name in (_RECORD.names or ())[1:]},
    )


async def read_latest(
    db: Executor, owner: str, symbol: str, timeframe: str, n: int
) -> tuple[Bars, npt.NDArray[np.int64]]:
    """The newest ``n`` bars, ascending, and each bar's version."""
    params = {"owner": owner, "symbol": symbol, "timeframe": timeframe, "limit": n}
    row = (await db.execute(_LATEST, params)).one()
    return _bars(row)


async def read_timestamps(
    db: Executor, owner: str, symbol: str, timeframe: str, start: int, end: int
) -> npt.NDArray[np.int64]:
    value = await db.scalar(
        _TIMESTAMPS,
        {"owner": owner, "symbol": symbol, "timeframe": timeframe, "lo": start, "hi": end},
    )
    return np.asarray(value or [], np.int64)


async def list_series(
    db: Executor, owners: Sequence[str], symbol: str | None = None
) -> list[SeriesSummary]:
    """Summaries of the series of ``owners`` (of ``symbol`` only, when given)."""
    rows = (await db.execute(_SERIES_LIST, {"owners": list(owners), "symbol": symbol})).all()
    return [SeriesSummary(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]
