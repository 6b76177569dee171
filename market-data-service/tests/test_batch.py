"""Push parsing: the vectorised path and the per-bar path agree, and tell bad input apart."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from market_data_service.batch import _parse_items, iso_seconds, parse_push_body


def test_vectorised_iso_parsing_matches_the_standard_library() -> None:
    rng = np.random.default_rng(7)
    stamps = rng.integers(-2_000_000_000, 4_000_000_000, 2000) // 60 * 60
    text = [datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps]
    parsed = iso_seconds(text)
    assert parsed is not None and parsed.tolist() == stamps.tolist()


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00+",
        "2024-01-01T00:00:00Ä",
    ],
)
def test_vectorised_iso_parsing_leaves_anything_else_to_the_slow_path(stamp: str) -> None:
    assert iso_seconds(["2024-01-01T00:00:00Z", stamp]) is None


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
    for name in ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "index"):
        assert getattr(fast.bars, name).tolist() == getattr(slow.bars, name).tolist(), name
    assert set(fast.bars.symbol.tolist()) == {"BTC-USD", "ETH-USD"}
