"""Bar rules shared by every service: symbols, timeframes, timestamps, validation, events."""

from __future__ import annotations

import numpy as np
import pytest

from algotrade import epoch
from algotrade.bars import (
    REASONS,
    Bar,
    Bars,
    MarketBarsPayload,
    encode_bar_json,
    normalize_symbol,
    owned_symbol,
    payload_dict,
    series_key,
    timeframe_seconds,
    validate_ohlcv,
)
from algotrade.events import default_registry


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("btc-usd", "BTC-USD"),
        ("BTC/USD", "BTC-USD"),
        (" btc_usd ", "BTC-USD"),
        ("spy", "SPY"),
        ("brk.b", "BRK.B"),
        ("ES-Z24", "ES-Z24"),
    ],
)
def test_symbol_spellings_of_one_market_normalise_alike(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "  ", "BTC--USD", "-BTC", "BTC USD", "BTC$", "A" * 33, 7, None]
)
def test_symbols_outside_the_pattern_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        normalize_symbol(raw)


def test_timeframes_are_a_closed_set() -> None:
    assert timeframe_seconds("4h") == 14_400
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_seconds("2h")


def test_validation_gives_each_bar_its_first_failing_rule() -> None:
    nan, inf = float("nan"), float("inf")
    rows = [
        # ts, open, high, low, close, volume, expected reason
        (60, 10, 11, 9, 10.5, 1, "ok"),
        (61, 10, 11, 9, 10.5, 1, "misaligned_timestamp"),
        (120, nan, 11, 9, 10.5, 1, "non_finite"),
        (180, 10, inf, 9, 10.5, 1, "non_finite"),
        (240, 10, 11, 9, 10.5, -1, "negative_volume"),
        (300, 10, 8, 9, 8.5, 1, "low_above_high"),
        (360, 10, 10.2, 9, 10.5, 1, "high_below_open_close"),
        (420, 10, 11, 9.9, 9.5, 1, "low_above_open_close"),
        (10**10, 10, 11, 9, 10.5, 1, "timestamp_out_of_range"),
        (480, 10, 10, 10, 10, 0, "ok"),
    ]
    cols = list(zip(*rows, strict=True))
    bars = Bars.from_columns(epoch.ms_from_seconds(np.array(cols[0], np.int64)), *cols[1:6])
    codes = validate_ohlcv(bars, 60_000)
    assert [REASONS[c] for c in codes] == list(cols[6])


def test_canonical_json_is_stable_and_float_only() -> None:
    a = encode_bar_json(1_704_164_640, 1, 2, 0.5, 1.5, 10)
    b = Bar("X", "1m", 1_704_164_640, 1.0, 2.0, 0.5, 1.5, 10.0).to_json()
    assert (
        a
        == b
        == (
            b'{"ts":"2024-01-02T03:04:00Z","open":1.0,"high":2.0,"low":0.5,"close":1.5,"volume":10.0}'
        )
    )
    assert Bar.from_json("X", "1m", a) == Bar("X", "1m", 1_704_164_640, 1.0, 2.0, 0.5, 1.5, 10.0)
    stamps = np.array([0, 1_704_164_640, -86_400], np.int64)
    assert epoch.iso_array_from_seconds(stamps) == [epoch.iso_from_seconds(int(t)) for t in stamps]


def test_bar_event_payload_is_registered_for_consumers() -> None:
    assert default_registry.model_for("market.bars", 1) is MarketBarsPayload
    payload = MarketBarsPayload.model_validate(
        {
            "symbol": "BTC-USD",
            "timeframe": "1m",
            "source": "http",
            "bars": [
                {
                    "ts": "2024-01-02T03:04:00Z",
                    "open": 1,
                    "high": 2,
                    "low": 0.5,
                    "close": 1.5,
                    "volume": 3,
                    "correction": False,
                    "revision": 0,
                    "version": 7,
                }
            ],
        }
    )
    envelope = default_registry.build("market.bars", payload, producer="t", key="BTC-USD:1m")
    _, decoded = default_registry.decode(envelope.to_bytes())
    assert decoded == payload


_EVENT_BAR = {
    "ts": "2024-01-01T00:00:00Z",
    "open": 1.0,
    "high": 1.0,
    "low": 1.0,
    "close": 1.0,
    "volume": 1.0,
    "correction": False,
    "revision": 0,
    "version": 1,
}


def test_series_names_carry_their_owner_and_never_collide() -> None:
    assert series_key("EURUSD", "1m") == "EURUSD:1m"  # the platform's reference data
    assert series_key("EURUSD", "1m", "alice") == "alice/EURUSD:1m"
    assert owned_symbol("", "EURUSD") == owned_symbol(None, "EURUSD") == "EURUSD"
    payload = MarketBarsPayload.model_validate(
        payload_dict("EURUSD", "1m", "http", [_EVENT_BAR], owner="alice")
    )
    assert payload.owner == "alice"
    public = MarketBarsPayload.model_validate(payload_dict("X", "1m", "http", [_EVENT_BAR]))
    assert public.owner is None
