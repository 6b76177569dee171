"""Higher timeframes derived from lower ones, stored through the same path as any other bar.

A derived bar aggregates the stored bars of its bucket: first open, highest high, lowest low,
last close, summed volume. Intraday buckets are UTC-aligned from the epoch, like stored bars.
Daily buckets are UTC dates by default, or the local trading date of ``day_timezone`` (e.g.
``America/New_York``: SPY hourly bars grouped by New York date reproduce SPY daily bars).
Derived bars are ingested like pushed ones, so re-deriving is idempotent and a changed
constituent turns into a published correction of the derived bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import epoch
from algotrade.bars import TIMEFRAME_SECONDS, Bars
from algotrade.errors import ValidationFailed
from market_data_service import history
from market_data_service.batch import BarBatch
from market_data_service.calendars import session_day_labels
from market_data_service.ingest import BarIngestor

PAGE_BARS = 100_000
WRITE_BARS = 5_000


@dataclass
class Resampled:
    """Derived bars, and how many source bars each aggregates."""

    bars: Bars
    count: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.bars)

    def take(self, rows: slice) -> Resampled:
        return Resampled(self.bars.take(rows), self.count[rows])


def check_derivable(source_tf: str, target_tf: str, day_timezone: str | None) -> ZoneInfo | None:
    """Raise `ValidationFailed` unless ``target_tf`` can be built from ``source_tf``."""
    src, dst = TIMEFRAME_SECONDS.get(source_tf), TIMEFRAME_SECONDS.get(target_tf)
    problems = []
    if src is None or dst is None:
        problems.append("unknown timeframe")
    elif dst <= src or dst % src:
        problems.append(f"{target_tf} is not a whole multiple above {source_tf}")
    tz = None
    if day_timezone is not None:
        if target_tf != "1d":
            problems.append("day_timezone applies to 1d targets only")
        try:
            tz = ZoneInfo(day_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"unknown time zone {day_timezone!r}")
    if problems:
        raise ValidationFailed(
            f"cannot derive {target_tf} from {source_tf}: {'; '.join(problems)}",
            errors=[{"loc": ["body"], "code": "not_derivable", "message": p} for p in problems],
        )
    return tz


def bucket_starts(
    ts: npt.NDArray[np.int64], target_tf: str, tz: ZoneInfo | None = None
) -> npt.NDArray[np.int64]:
    """The open time (epoch ms) of the ``target_tf`` bucket of each time in ``ts`` (epoch ms)."""
    if target_tf == "1d" and tz is not None:
        return epoch.ms_from_seconds(session_day_labels(epoch.seconds_from_ms(ts), tz))
    return epoch.floor_to_step(ts, epoch.ms_from_seconds(TIMEFRAME_SECONDS[target_tf]))


def resample(bars: Bars, target_tf: str, tz: ZoneInfo | None = None) -> Resampled:
    """Aggregate bars sorted by open time into ``target_tf`` buckets."""
    if len(bars) == 0:
        return Resampled(Bars.empty(), np.zeros(0, np.int64))
    buckets = bucket_starts(bars.ts, target_tf, tz)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(bars)]
    derived = Bars(
        ts=buckets[starts],
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends - 1],
        volume=np.add.reduceat(bars.volume, starts),
    )
    return Resampled(derived, (ends - starts).astype(np.int64))


@dataclass
class DeriveReport:
    source_bars: int = 0
    derived: int = 0
    accepted: int = 0
    duplicate: int = 0
    corrected: int = 0


class Resampler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ingestor: BarIngestor,
        *,
        max_source_bars: int,
    ) -> None:
        self._sessions = sessions
        self._ingestor = ingestor
        self._max_source_bars = max_source_bars

    async def derive(
        self,
        owner: str,
        symbol: str,
        source_tf: str,
        target_tf: str,
        start: int,
        end: int,
        *,
        day_timezone: str | None = None,
        source: str = "resample",
        user_id: str | None = None,
    ) -> DeriveReport:
        """Derive and store ``target_tf`` bars of ``owner``'s series from its source bars with
        ``start <= ts < end``.

        Reads history in pages and holds back the last bucket of a page until the next page
        (or the end) shows it is complete, so page boundaries never split a bucket.
        """
        tz = check_derivable(source_tf, target_tf, day_timezone)
        start, end = whole_buckets(start, end, target_tf, tz)
        report = DeriveReport()
        cursor = start
        carry: Bars | None = None
        while True:
            async with self._sessions() as session:
                page = await history.read_range(
                    session, owner, symbol, source_tf, cursor, end, limit=PAGE_BARS
                )
            report.source_bars += len(page)
            if report.source_bars > self._max_source_bars:
                raise ValidationFailed(
                    f"more than {self._max_source_bars} source bars; derive a shorter range"
                )
            last_page = len(page) < PAGE_BARS
            if carry is not None:
                page = Bars.concat([carry, page])
            if len(page) == 0:
                break
            derived = resample(page, target_tf, tz)
            if not last_page:
                # The last bucket may continue on the next page: carry its source bars over.
                keep = int(derived.count[-1])
                carry = page.take(slice(len(page) - keep, len(page)))
                derived = derived.take(slice(0, len(derived) - 1))
                cursor = epoch.seconds_from_ms(int(page.ts[-1])) + 1
            await self._store(owner, symbol, target_tf, derived, report, source, user_id)
            if last_page:
                break
        return report

    async def _store(
        self,
        owner: str,
        symbol: str,
        target_tf: str,
        derived: Resampled,
        report: DeriveReport,
        source: str,
        user_id: str | None,
    ) -> None:
        for lo in range(0, len(derived), WRITE_BARS):
            part = derived.bars.take(slice(lo, lo + WRITE_BARS))
            batch = BarBatch.of_series(symbol, target_tf, part)
            written = await self._ingestor.ingest(
                batch, owner=owner, source=source, user_id=user_id
            )
            counts = written.counts()
            report.derived += len(part)
            report.accepted += counts["accepted"]
            report.duplicate += counts["duplicate"]
            report.corrected += counts["corrected"]


def whole_buckets(start: int, end: int, target_tf: str, tz: ZoneInfo | None) -> tuple[int, int]:
    """Widen ``[start, end)`` to whole target buckets, so no derived bar is built from part
    of its bucket."""
    if end <= start:
        return start, start
    if target_tf == "1d" and tz is not None:
        first = epoch.local_date(start, tz)
        last = epoch.local_date(end - 1, tz) + timedelta(days=1)
        return epoch.seconds_from_local_midnight(first, tz), epoch.seconds_from_local_midnight(
            last, tz
        )
    step = TIMEFRAME_SECONDS[target_tf]
    return epoch.floor_to_step(start, step), epoch.ceil_to_step(end, step)
