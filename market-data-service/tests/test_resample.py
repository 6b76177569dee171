"""Resampling: derived bars equal bars stored directly (real SPY data), idempotent, paged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from market_data_testkit import DATA, Service, epochs, load_file, minute_bars

from algotrade import epoch
from algotrade.bars import Bars
from algotrade_testkit.kafka import read_events
from market_data_service import history, resample
from market_data_service.resample import whole_buckets


def test_resample_matches_pandas_on_coinbase_4h_to_daily() -> None:
    frame = pd.read_csv(DATA / "btc-usd-4h.csv", parse_dates=["timestamp"])
    ts = epochs(frame.timestamp)
    bars = Bars.from_columns(
        epoch.ms_from_seconds(ts),
        *(frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")),
    )
    got = resample.resample(bars, "1d").bars
    expected = (
        frame.set_index("timestamp")
        .resample("1D")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    assert len(got) == len(expected)
    assert (got.seconds() == epochs(expected.index.to_series())).all()
    for column in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(got, column), expected[column].to_numpy())
    assert np.allclose(got.volume, expected["volume"].to_numpy(), rtol=1e-12)


async def test_spy_hourly_resampled_by_new_york_date_reproduces_spy_daily(
    service: Service,
) -> None:
    # The caller's own series: a user resamples only what they own.
    assert await load_file(service, DATA / "spy-1d.csv", "SPY", "1d", owner="u1") == 5849
    assert await load_file(service, DATA / "spy-1h.csv", "SPY", "1h", owner="u1") == 40832
    response = await service.client.post(
        "/api/market/symbols/SPY/resample",
        json={
            "source_timeframe": "1h",
            "target_timeframes": ["1d"],
            "day_timezone": "America/New_York",
        },
        headers=service.headers(),
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    # Every derived daily bar is byte-for-byte the stored one: all duplicates.
    assert result == {
        "timeframe": "1d",
        "source_bars": 40832,
        "derived": 5849,
        "accepted": 0,
        "duplicate": 5849,
        "corrected": 0,
    }


async def test_derived_bars_follow_corrections_of_their_sources(
    service: Service, kafka_bootstrap: str
) -> None:
    bars = minute_bars(120)
    await service.push({"symbol": "X", "timeframe": "1m", "bars": bars})
    body = {"source_timeframe": "1m", "target_timeframes": ["5m", "1h"]}
    url = "/api/market/symbols/X/resample"
    first = (await service.client.post(url, json=body, headers=service.headers())).json()
    assert [(r["timeframe"], r["accepted"]) for r in first["results"]] == [("5m", 24), ("1h", 2)]
    again = (await service.client.post(url, json=body, headers=service.headers())).json()
    assert [r["duplicate"] for r in again["results"]] == [24, 2]

    fixed = dict(bars[7], high=bars[7]["high"] + 50)
    await service.push({"symbol": "X", "timeframe": "1m", "bars": [fixed]})
    third = (await service.client.post(url, json=body, headers=service.headers())).json()
    assert [(r["corrected"], r["duplicate"]) for r in third["results"]] == [(1, 23), (1, 1)]
    async with service.market.sessions() as session:
        five = await history.read_range(session, "u1", "X", "5m", 0, 2**40, limit=100)
    assert five.high[1] == fixed["high"]
    events = await read_events(
        kafka_bootstrap, service.market.ingestor._topic, expect=6, settle_ms=300
    )
    corrections = [e for e in events if any(b.correction for b in e[2].bars)]
    assert {e[0] for e in corrections} == {b"u1/X:1m", b"u1/X:5m", b"u1/X:1h"}


async def test_paging_never_splits_a_bucket(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(61)})
    monkeypatch.setattr(resample, "PAGE_BARS", 7)
    report = await service.market.resampler.derive("u1", "X", "1m", "5m", 0, 2**40)
    assert report.derived == 13 and report.source_bars == 61
    async with service.market.sessions() as session:
        five = await history.read_range(session, "u1", "X", "5m", 0, 2**40, limit=100)
    src = minute_bars(61)
    assert five.volume.tolist()[:2] == [
        sum(b["volume"] for b in src[0:5]),
        sum(b["volume"] for b in src[5:10]),
    ]
    assert five.high[-1] == src[60]["high"]


@pytest.mark.parametrize(
    "body",
    [
        {"source_timeframe": "1h", "target_timeframes": ["1m"]},
        {"source_timeframe": "1h", "target_timeframes": ["1h"]},
        {"source_timeframe": "1m", "target_timeframes": ["5m"], "day_timezone": "America/New_York"},
        {"source_timeframe": "1h", "target_timeframes": ["1d"], "day_timezone": "Mars/Olympus"},
        {"source_timeframe": "1h", "target_timeframes": ["2d"]},
        {"source_timeframe": "1h"},
    ],
)
async def test_underivable_requests_are_refused(service: Service, body: dict[str, Any]) -> None:
    response = await service.client.post(
        "/api/market/symbols/X/resample", json=body, headers=service.headers()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_ranges_widen_to_whole_buckets() -> None:
    from zoneinfo import ZoneInfo

    assert whole_buckets(310, 601, "5m", None) == (300, 900)
    ny = ZoneInfo("America/New_York")
    # 2024-07-01 15:00Z is 11:00 in New York: the day runs 04:00Z..04:00Z next day.
    assert whole_buckets(1_719_846_000, 1_719_846_001, "1d", ny) == (1_719_806_400, 1_719_892_800)
