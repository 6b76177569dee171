"""The one path every bar takes: history + outbox in one transaction, then the window.

`BarIngestor.ingest` is used by the HTTP push, file imports, replays and exchange providers
alike. Each call writes the series of one ``owner`` (a user, or the platform); the first bars
of a symbol new to that owner claim it (`market_data_service.owners`). A batch is sorted by
(series, open time) so concurrent writers lock rows in one order, and a timestamp repeated
inside a batch is applied in arrival order (first the original, then its correction), one
statement per repetition level. Accepted and corrected bars become
``market.bars`` events staged in the outbox of the same transaction; duplicates produce nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import epoch
from algotrade.bars import payload_dict, series_key
from algotrade.events import Topics
from algotrade.logs import correlation_id_var
from algotrade.outbox import OutboxRelay
from algotrade.windows import encode_entries
from market_data_service import history
from market_data_service.batch import BarBatch
from market_data_service.history import OUTCOME_ACCEPTED, OUTCOME_CORRECTED, OUTCOME_DUPLICATE
from market_data_service.models import PLATFORM, SCHEMA
from market_data_service.owners import SymbolDirectory, claim_symbols
from market_data_service.publishing import MonotonicUlids, envelope_bytes
from market_data_service.window_cache import Series, WindowCache

logger = logging.getLogger(__name__)

OUTCOME_NAMES = {
    OUTCOME_DUPLICATE: "duplicate",
    OUTCOME_ACCEPTED: "accepted",
    OUTCOME_CORRECTED: "corrected",
}


@dataclass
class Written:
    """What one `BarIngestor.write` stored, before the window sees it.

    ``window_lines`` holds, per series, the stored bars already encoded for
    `SlidingWindows.upsert_encoded` (one blob per repetition level, in order)."""

    outcome: npt.NDArray[np.int8]
    owner: str = PLATFORM
    window_lines: dict[Series, list[tuple[bytes, int]]] = field(default_factory=dict)
    events: int = 0
    claimed: bool = False  # a symbol was new to its owner

    def window_blobs(self) -> dict[Series, tuple[bytes, int]]:
        return {
            key: (b"\n".join(blob for blob, _ in parts), sum(n for _, n in parts))
            for key, parts in self.window_lines.items()
        }

    def counts(self) -> dict[str, int]:
        values = np.bincount(self.outcome, minlength=3)
        return {
            "accepted": int(values[OUTCOME_ACCEPTED]),
            "duplicate": int(values[OUTCOME_DUPLICATE]),
            "corrected": int(values[OUTCOME_CORRECTED]),
        }

    @property
    def series(self) -> list[Series]:
        return list(self.window_lines)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.bars = Counter(
            "market_bars_ingested_total",
            "Bars stored, by source and outcome",
            ["source", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "market_ingest_seconds",
            "Time to store a batch (history, outbox, window)",
            ["source"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


class BarIngestor:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cache: WindowCache | None,
        topics: Topics,
        producer_name: str,
        bars_per_event: int,
        relay: OutboxRelay | None = None,
        metrics: IngestMetrics | None = None,
        directory: SymbolDirectory | None = None,
    ) -> None:
        self._sessions = sessions
        self.cache = cache
        self._topic = topics.market_bars
        self._producer = producer_name
        self._bars_per_event = bars_per_event
        self._relay = relay
        self._metrics = metrics
        self._directory = directory
        self._ids = MonotonicUlids()

    async def ingest(
        self,
        batch: BarBatch,
        *,
        owner: str,
        source: str,
        user_id: str | None = None,
    ) -> Written:
        """Store valid bars as ``owner``'s series (`PLATFORM` for reference data; the caller
        checked the right to write them); returns the outcome of each bar in batch order.
        ``user_id`` is who wrote them, carried by the events."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self._sessions() as session, session.begin():
            written = await self.write(session, batch, owner=owner, source=source, user_id=user_id)
        if written.events and self._relay is not None:
            self._relay.wake()
        if written.claimed and self._directory is not None:
            self._directory.forget()
        if self.cache is not None and written.window_lines:
            # Committed: the window must follow even if the caller goes away now.
            await asyncio.shield(self.cache.apply(owner, written.window_blobs()))
        if self._metrics is not None:
            for outcome, count in written.counts().items():
                if count:
                    self._metrics.bars.labels(source, outcome).inc(count)
            self._metrics.seconds.labels(source).observe(loop.time() - started)
        return written

    async def after_commit(
        self, owner: str, touched: Iterable[Series], events: int, *, claimed: bool = False
    ) -> None:
        """For callers that ran `write` in their own (now committed) transaction: wake the
        relay and make the touched windows cold, so the next reader refills them."""
        if events and self._relay is not None:
            self._relay.wake()
        if claimed and self._directory is not None:
            self._directory.forget()
        if self.cache is not None:
            await self.cache.invalidate(owner, set(touched))

    async def write(
        self,
        session: AsyncSession,
        batch: BarBatch,
        *,
        owner: str,
        source: str,
        user_id: str | None = None,
    ) -> Written:
        """History, series summary, symbol claims and outbox rows of ``owner``'s series, in
        the caller's transaction."""
        n = len(batch)
        outcome = np.zeros(n, np.int8)
        written = Written(outcome, owner)
        if n == 0:
            return written
        codes = _series_codes(batch)
        order = np.lexsort((np.arange(n), batch.bars.ts, codes))
        occurrence = _occurrence(codes[order], batch.bars.ts[order])
        summary: dict[Series, tuple[int, int, int]] = {}
        events: list[dict[str, Any]] = []
        correlation_id = correlation_id_var.get()
        for level in range(int(occurrence.max()) + 1):
            rows = order[occurrence == level]
            part = batch.take(rows)
            result = await history.upsert_bars(session, part, owner=owner, source=source)
            outcome[rows] = result.outcome
            changed = np.flatnonzero(result.outcome != OUTCOME_DUPLICATE)
            if changed.size:
                by_series = self._collect(part, result, changed, written, summary)
                events += self._events(by_series, owner, source, user_id, correlation_id)
        await history.update_series(session, summary, owner=owner)
        if summary:
            # Only a series' first bars can make a symbol new to its owner.
            written.claimed = await claim_symbols(session, owner, (s for s, _ in summary))
        if events:
            await session.execute(insert(SCHEMA.outbox), events)
        written.events = len(events)
        return written

    def _collect(
        self,
        part: BarBatch,
        result: history.UpsertResult,
        changed: npt.NDArray[np.int64],
        written: Written,
        summary: dict[Series, tuple[int, int, int]],
    ) -> dict[Series, list[bytes]]:
        """The stored bars as window lines, event bars and series-summary counts.

        Runs once per stored bar, so it is written as list comprehensions over plain lists
        (no NumPy scalars, no per-bar objects beyond the bytes Redis and the outbox need)."""
        event_bars: dict[Series, list[bytes]] = {}
        dumps = orjson.dumps
        bars = part.bars
        seconds = bars.seconds()
        for key, rows in _groups(part, changed):
            ts = seconds[rows].tolist()
            versions = result.version[rows].tolist()
            outcomes = result.outcome[rows]
            payloads = [
                dumps({"ts": s, "open": o, "high": h, "low": lo, "close": c, "volume": v})
                for s, o, h, lo, c, v in zip(
                    epoch.iso_array_from_seconds(seconds[rows]),
                    bars.open[rows].tolist(),
                    bars.high[rows].tolist(),
                    bars.low[rows].tolist(),
                    bars.close[rows].tolist(),
                    bars.volume[rows].tolist(),
                    strict=True,
                )
            ]
            written.window_lines.setdefault(key, []).append(
                (encode_entries(zip(ts, versions, payloads, strict=True)), len(ts))
            )
            event_bars[key] = [
                p[:-1] + b',"correction":%s,"revision":%d,"version":%d}' % (c, r, v)
                for p, c, r, v in zip(
                    payloads,
                    np.where(outcomes == OUTCOME_CORRECTED, b"true", b"false").tolist(),
                    result.revision[rows].tolist(),
                    versions,
                    strict=True,
                )
            ]
            inserted = seconds[rows][outcomes == OUTCOME_ACCEPTED]
            if inserted.size:
                low, high = int(inserted.min()), int(inserted.max())
                first, last, count = summary.get(key, (low, high, 0))
                summary[key] = (min(first, low), max(last, high), count + int(inserted.size))
        return event_bars

    def _events(
        self,
        by_series: dict[Series, list[bytes]],
        owner: str,
        source: str,
        user_id: str | None,
        correlation_id: str | None,
    ) -> list[dict[str, Any]]:
        rows = []
        size = self._bars_per_event
        for (symbol, timeframe), bars in by_series.items():
            key = series_key(symbol, timeframe, owner)
            for start in range(0, len(bars), size):
                event_id = self._ids.next()
                rows.append(
                    {
                        "id": event_id,
                        "topic": self._topic,
                        "key": key,
                        "payload": envelope_bytes(
                            event_id=event_id,
                            producer=self._producer,
                            key=key,
                            payload=payload_dict(
                                symbol,
                                timeframe,
                                source,
                                orjson.Fragment(b"[%s]" % b",".join(bars[start : start + size])),
                                owner,
                            ),
                            correlation_id=correlation_id,
                            user_id=user_id,
                        ),
                    }
                )
        return rows


def _groups(
    part: BarBatch, rows: npt.NDArray[np.int64]
) -> list[tuple[Series, npt.NDArray[np.int64]]]:
    """``rows`` split by series, each in the batch's (sorted) order."""
    symbols, timeframes = part.symbol[rows], part.timeframe[rows]
    if (symbols == symbols[0]).all() and (timeframes == timeframes[0]).all():
        return [((symbols[0], timeframes[0]), rows)]
    groups: dict[Series, list[int]] = {}
    for row, key in zip(
        rows.tolist(), zip(symbols.tolist(), timeframes.tolist(), strict=True), strict=True
    ):
        groups.setdefault(key, []).append(row)
    return [(key, np.asarray(members, np.int64)) for key, members in groups.items()]


def _series_codes(batch: BarBatch) -> npt.NDArray[np.int64]:
    n = len(batch)
    if (batch.symbol == batch.symbol[0]).all() and (batch.timeframe == batch.timeframe[0]).all():
        return np.zeros(n, np.int64)
    codes: dict[tuple[str, str], int] = {}
    # Codes follow sorted series names, so sorting by code sorts by (symbol, timeframe).
    for pair in sorted(set(zip(batch.symbol.tolist(), batch.timeframe.tolist(), strict=True))):
        codes[pair] = len(codes)
    return np.fromiter(
        (codes[p] for p in zip(batch.symbol.tolist(), batch.timeframe.tolist(), strict=True)),
        np.int64,
        n,
    )


def _occurrence(codes: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """For sorted keys: 0 for the first bar of each (series, ts), 1 for its repeat, ..."""
    n = codes.shape[0]
    new_key = np.ones(n, bool)
    new_key[1:] = (codes[1:] != codes[:-1]) | (ts[1:] != ts[:-1])
    starts = np.flatnonzero(new_key)
    run = np.cumsum(new_key) - 1
    occurrence: npt.NDArray[np.int64] = np.arange(n, dtype=np.int64) - starts[run]
    return occurrence
