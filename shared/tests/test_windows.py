"""Redis sliding windows against a real Redis: idempotent atomic upserts, order, trim, reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from algotrade.bars import Bar, encode_bar_json
from algotrade.windows import SlidingWindows, WindowEntry, WindowOutcome

A, C, D, S = (
    WindowOutcome.ACCEPTED,
    WindowOutcome.CORRECTED,
    WindowOutcome.DUPLICATE,
    WindowOutcome.STALE,
)
T0 = 1_704_067_200


def entry(i: int, close: float = 1.5, version: int = 0) -> WindowEntry:
    return WindowEntry(T0 + 60 * i, encode_bar_json(T0 + 60 * i, 1, 2, 0.5, close, 10), version)


@pytest.fixture
def windows(redis_client: Any, redis_prefix: str) -> SlidingWindows:
    return SlidingWindows(redis_client, prefix=redis_prefix, capacity=5)


async def test_same_bar_twice_is_one_bar_and_a_correction_replaces_it(
    windows: SlidingWindows,
) -> None:
    assert await windows.upsert("BTC-USD", "1m", [entry(0), entry(1)]) == [A, A]
    assert await windows.upsert("BTC-USD", "1m", [entry(0), entry(1, close=1.75)]) == [D, C]
    assert await windows.size("BTC-USD", "1m") == 2
    await windows.mark_warm("BTC-USD", "1m")
    bars = await windows.latest("BTC-USD", "1m", 10)
    assert bars is not None
    assert [b.close for b in bars] == [1.5, 1.75]


async def test_out_of_order_bars_land_in_order_and_the_window_trims(
    windows: SlidingWindows,
) -> None:
    outcomes = await windows.upsert("X", "1m", [entry(i) for i in (5, 1, 3, 0, 2, 4, 6)])
    assert outcomes == [A] * 7
    await windows.mark_warm("X", "1m")
    raw = await windows.latest_raw("X", "1m", 10)
    assert raw is not None
    assert raw == [entry(i).payload for i in (2, 3, 4, 5, 6)]  # capacity 5: oldest dropped
    # A bar older than the whole (full) window is trimmed again at once.
    await windows.upsert("X", "1m", [entry(-3)])
    assert await windows.timestamps("X", "1m", T0 - 600, T0 + 600) == [
        T0 + 60 * i for i in (2, 3, 4, 5, 6)
    ]


async def test_versions_stop_a_late_writer_rolling_back_a_correction(
    windows: SlidingWindows,
) -> None:
    assert await windows.upsert("X", "1m", [entry(0, close=1.5, version=10)]) == [A]
    assert await windows.upsert("X", "1m", [entry(0, close=1.75, version=12)]) == [C]
    assert await windows.upsert("X", "1m", [entry(0, close=1.6, version=11)]) == [S]
    assert await windows.upsert("X", "1m", [entry(0, close=1.75, version=13)]) == [D]
    await windows.mark_warm("X", "1m")
    bars = await windows.latest("X", "1m", 1)
    assert bars is not None and bars[0].close == 1.75


async def test_concurrent_upserts_are_atomic_per_call(windows: SlidingWindows) -> None:
    big = SlidingWindows(windows._redis, prefix=windows._prefix[: -len("md:w:")], capacity=10_000)
    batches = [[entry(i, close=1.5) for i in range(k * 200, k * 200 + 400)] for k in range(5)]
    results = await asyncio.gather(*(big.upsert("C", "1m", b) for b in batches))
    # Overlapping batches: every timestamp accepted exactly once across all calls.
    accepted = sum(r.count(A) for r in results)
    assert accepted == 1200
    assert await big.size("C", "1m") == 1200


async def test_one_call_upserts_many_series_with_per_bar_outcomes(windows: SlidingWindows) -> None:
    bars = [
        Bar("A", "1m", T0, 1, 2, 0.5, 1.5, 1),
        Bar("B", "5m", T0, 1, 2, 0.5, 1.5, 1),
        Bar("A", "1m", T0, 1, 2, 0.5, 1.5, 1),
        Bar("A", "1m", T0 + 60, 1, 2, 0.5, 1.5, 1),
    ]
    assert await windows.upsert_bars(bars) == [A, A, D, A]


async def test_reads_know_a_cold_window_from_an_empty_one(windows: SlidingWindows) -> None:
    assert await windows.latest_raw("X", "1m", 3) is None
    await windows.fill("X", "1m", [])
    assert await windows.latest_raw("X", "1m", 3) == []
    await windows.invalidate("X", "1m")
    assert await windows.latest_raw("X", "1m", 3) is None
    await windows.fill("X", "1m", [entry(0)])
    assert await windows.latest_raw("X", "1m", 3) == [entry(0).payload]
    # The warm marker lives in the window's own key: losing the key loses both.
    await windows.drop("X", "1m")
    await windows.upsert("X", "1m", [entry(1)])
    assert not await windows.is_warm("X", "1m")
    assert await windows.size("X", "1m") == 1


async def test_range_reads_say_whether_they_are_complete(windows: SlidingWindows) -> None:
    await windows.fill("X", "1m", [entry(i) for i in range(10)])  # keeps 5..9
    full = await windows.range_raw("X", "1m", T0 + 300, T0 + 600)
    assert full.covers and full.payloads == [entry(i).payload for i in range(5, 10)]
    partial = await windows.range_raw("X", "1m", T0, T0 + 600)
    assert not partial.covers
    await windows._redis.zrem(windows.key("X", "1m"), entry(7).member())
    assert await windows.missing("X", "1m", T0 + 300, T0 + 600, 60) == [T0 + 420]


async def test_clear_warm_flags_only_touches_its_prefix(
    windows: SlidingWindows, redis_client: Any, redis_prefix: str
) -> None:
    other = SlidingWindows(redis_client, prefix=redis_prefix + "other:", capacity=5)
    await windows.fill("X", "1m", [entry(0)])
    await other.fill("Y", "1m", [entry(0)])
    assert await windows.clear_warm_flags() >= 1
    assert not await windows.is_warm("X", "1m")
    assert await other.is_warm("Y", "1m")


async def test_latest_100_reads_in_well_under_a_millisecond(
    redis_client: Any, redis_prefix: str
) -> None:
    """Not a benchmark (see bench/), a guard against an accidental O(n) read."""
    windows = SlidingWindows(redis_client, prefix=redis_prefix, capacity=10_000)
    await windows.fill("X", "1m", [entry(i) for i in range(10_000)])
    loop = asyncio.get_running_loop()
    timings = []
    for _ in range(200):
        start = loop.time()
        raw = await windows.latest_raw("X", "1m", 100)
        timings.append(loop.time() - start)
        assert raw is not None and len(raw) == 100
    assert sorted(timings)[100] < 0.002
