"""The ingest path under concurrency: no deadlocks, and windows converge on history."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
from market_data_testkit import Service

from algotrade import epoch
from algotrade.bars import Bars
from algotrade.events import Envelope, default_registry
from market_data_service import history
from market_data_service.batch import BarBatch
from market_data_service.models import PLATFORM
from market_data_service.publishing import MonotonicUlids, envelope_bytes

T0 = 1_704_067_200


def series(n: int, close_offset: float, *, reverse: bool = False, symbol: str = "X") -> BarBatch:
    ts = T0 + 60 * np.arange(n, dtype=np.int64)
    close = 100.0 + close_offset + np.zeros(n)
    bars = Bars.from_columns(
        epoch.ms_from_seconds(ts),
        np.full(n, 100.0),
        np.full(n, 200.0),
        np.full(n, 50.0),
        close,
        np.ones(n),
    )
    batch = BarBatch.of_series(symbol, "1m", bars)
    return batch.take(np.arange(n)[::-1]) if reverse else batch


async def test_overlapping_concurrent_batches_neither_deadlock_nor_leave_the_window_behind(
    service: Service,
) -> None:
    ingestor = service.market.ingestor
    await ingestor.ingest(series(2000, 0), owner=PLATFORM, source="test")
    await service.get("/api/market/symbols/X/latest?timeframe=1m")  # warm the window
    batches = [series(2000, 0.25 + k * 0.25, reverse=bool(k % 2)) for k in range(8)]
    results = await asyncio.wait_for(
        asyncio.gather(*(ingestor.ingest(b, owner=PLATFORM, source="test") for b in batches)),
        timeout=60,
    )
    assert sum(r.counts()["corrected"] for r in results) == 8 * 2000
    async with service.market.sessions() as session:
        stored, _ = await history.read_latest(session, PLATFORM, "X", "1m", 2000)
    window = await service.market.windows.latest("X", "1m", 2000)
    assert window is not None
    # Whichever writer committed last, the window shows exactly what history holds.
    assert [b.close for b in window] == stored.close.tolist()
    assert [b.ts for b in window] == stored.seconds().tolist()


async def test_multi_series_batches_are_classified_per_bar(service: Service) -> None:
    a, b = series(3, 0, symbol="A"), series(3, 0, symbol="B")
    mixed = BarBatch(
        Bars.concat([a.bars, b.bars]),
        *(np.concatenate([getattr(a, f), getattr(b, f)]) for f in ("symbol", "timeframe")),
        index=np.arange(6, dtype=np.int64),
    )
    first = await service.market.ingestor.ingest(
        mixed.take(np.array([5, 0, 3, 1, 4, 2])), owner=PLATFORM, source="t"
    )
    assert first.counts() == {"accepted": 6, "duplicate": 0, "corrected": 0}
    changed = series(3, 1.0, symbol="B").take(np.array([1]))
    again = await service.market.ingestor.ingest(changed, owner=PLATFORM, source="t")
    assert again.outcome.tolist() == [2]


def test_event_bytes_are_valid_envelopes_and_ids_increase() -> None:
    ids = MonotonicUlids()
    issued = [ids.next() for _ in range(1000)]
    assert issued == sorted(issued) and len(set(issued)) == 1000
    bar = orjson.Fragment(
        b'{"ts":"2024-01-01T00:00:00Z","open":1.0,"high":2.0,"low":0.5,"close":1.5,'
        b'"volume":3.0,"correction":false,"revision":0,"version":9}'
    )
    raw = envelope_bytes(
        event_id=issued[0],
        producer="market-data-service",
        key="X:1m",
        payload={"symbol": "X", "timeframe": "1m", "source": "http", "bars": [bar]},
        correlation_id="c1",
        user_id="u1",
    )
    envelope = Envelope.model_validate_json(raw)
    assert orjson.loads(envelope.to_bytes()) == orjson.loads(raw)
    _, payload = default_registry.decode(raw)
    assert payload.bars[0].version == 9  # type: ignore[attr-defined]
