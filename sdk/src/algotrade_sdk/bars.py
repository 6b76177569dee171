"""Bars the terminal closed: `BarQueue` holds them until market data has answered them, and
`LastCloses` turns them into the simulated account's prices.

The queue is what makes a disconnection lose no bar: a batch leaves it only after market data
answered each of its bars (``accepted``, ``duplicate``, ``corrected`` or ``rejected``). Sending a
batch again after a lost answer is safe: market data stores a bar once and answers the repeat
``duplicate``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from algotrade_sdk.protocol import BarOut, Timeframe


@dataclass(frozen=True)
class Bar:
    """One closed bar: ``ts`` is its open time in epoch seconds, UTC, on the timeframe's
    boundary (``1m`` bars on whole minutes)."""

    symbol: str
    timeframe: Timeframe
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def wire(self) -> BarOut:
        return {
            "ts": self.ts,
            "open": float(self.open),
            "high": float(self.high),
            "low": float(self.low),
            "close": float(self.close),
            "volume": float(self.volume),
        }


class BarQueue:
    """Bars waiting to be pushed, oldest first (in memory: a restarted terminal re-reads its
    own history)."""

    def __init__(self) -> None:
        self._bars: deque[Bar] = deque()

    def __len__(self) -> int:
        return len(self._bars)

    def add(self, bar: Bar) -> None:
        self._bars.append(bar)

    def head(self, max_bars: int) -> list[Bar]:
        """The oldest bars of one series (symbol and timeframe), up to ``max_bars``, left in
        the queue: a push names one series per batch."""
        batch: list[Bar] = []
        for bar in self._bars:
            if len(batch) == max_bars or (
                batch and (bar.symbol, bar.timeframe) != (batch[0].symbol, batch[0].timeframe)
            ):
                break
            batch.append(bar)
        return batch

    def drop(self, count: int) -> None:
        """Remove the ``count`` oldest bars (the batch market data answered)."""
        for _ in range(count):
            self._bars.popleft()


class LastCloses:
    """Each symbol's price: the close of the last bar the terminal closed."""

    def __init__(self) -> None:
        self._closes: dict[str, float] = {}

    def record(self, bar: Bar) -> None:
        self._closes[bar.symbol] = float(bar.close)

    def set(self, symbol: str, price: float) -> None:
        self._closes[symbol] = float(price)

    def __call__(self, symbol: str) -> float | None:
        return self._closes.get(symbol)
