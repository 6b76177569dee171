"""Push parsing: the vectorised path and the per-bar path agree, and tell bad input apart."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from market_data_service.batch import _parse_items, parse_push_body


def test_both_parse_paths_give_the_same_batch() -> None:
    bars = [
        {
            "symbol": "btc/usd" if i % 2 else "ETH-USD",
            "timeframe": "1m",
            "ts": datetime.fromtimestamp(1_704_067_200 + 60 * i, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": 1.0 + i,
            "high": 2.0 + i,
            "low": 0.5,
            "close": 1.5 + i,
            "volume": i,
        }
        for i in range(50)
    ]
    bars[7]["volume"] = -1  # one rejection, found by validation on both paths
    fast = parse_push_body(orjson.dumps({"bars": bars}), max_bars=100)
    slow = _parse_items(bars, None, None)
    assert [r.index for r in fast.rejections] == [r.index for r in slow.rejections] == [7]
    for name in ("symbol", "timeframe", "index"):
        assert getattr(fast.bars, name).tolist() == getattr(slow.bars, name).tolist(), name
    for name in ("ts", "open", "high", "low", "close", "volume"):
        assert getattr(fast.bars.bars, name).tolist() == getattr(slow.bars.bars, name).tolist()
    assert set(fast.bars.symbol.tolist()) == {"BTC-USD", "ETH-USD"}
