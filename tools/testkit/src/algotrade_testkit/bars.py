"""Bars as the market data API takes them in a push (``POST /api/market/bars``)."""

from __future__ import annotations

from typing import Any

from algotrade.bars import Bars


def push_rows(bars: Bars) -> list[dict[str, Any]]:
    """One JSON object per bar: ``ts`` in epoch seconds of the open, then the prices."""
    return [
        {"ts": int(ts // 1000), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for ts, o, h, lo, c, v in zip(
            bars.ts.tolist(),
            bars.open.tolist(),
            bars.high.tolist(),
            bars.low.tolist(),
            bars.close.tolist(),
            bars.volume.tolist(),
            strict=True,
        )
    ]
