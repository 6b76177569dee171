"""`BarQueue` and `LastCloses`: the order bars leave the queue in, and prices from them."""

from __future__ import annotations

from algotrade_sdk.bars import Bar, BarQueue, LastCloses


def bar(symbol: str, ts: int) -> Bar:
    return Bar(symbol, "1m", ts, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_a_batch_is_one_series_from_the_head_and_leaves_only_when_dropped() -> None:
    queue = BarQueue()
    for item in (bar("A", 0), bar("A", 60), bar("B", 0), bar("A", 120)):
        queue.add(item)
    assert queue.head(10) == [bar("A", 0), bar("A", 60)]
    assert queue.head(1) == [bar("A", 0)]
    assert len(queue) == 4
    queue.drop(2)
    assert queue.head(10) == [bar("B", 0)]
    queue.drop(1)
    assert queue.head(10) == [bar("A", 120)]


def test_a_symbols_price_is_its_last_bars_close() -> None:
    closes = LastCloses()
    assert closes("A") is None
    closes.record(Bar("A", "1m", 0, 1.0, 2.0, 0.5, 1.5, 10.0))
    closes.record(Bar("A", "1m", 60, 1.5, 2.0, 0.5, 1.25, 10.0))
    assert (closes("A"), closes("B")) == (1.25, None)
