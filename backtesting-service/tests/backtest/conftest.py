"""Fixtures for the backtest tests: real bars from data/ and small strategy graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algotrade.engine import Bars

DATA_DIR = Path(__file__).resolve().parents[3] / "data"


@pytest.fixture(scope="session")
def spy_daily() -> Bars:
    return Bars.from_csv(DATA_DIR / "spy-1d.csv")


@pytest.fixture(scope="session")
def btc_4h() -> Bars:
    return Bars.from_csv(DATA_DIR / "btc-usd-4h.csv")


def sma_cross_graph(
    fast: int = 10,
    slow: int = 30,
    *,
    short: bool = False,
    risk: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """SMA(fast) crossing SMA(slow): long on the cross above, out (or short) on the cross below."""
    nodes: list[dict[str, Any]] = [
        {"id": "close", "type": "price"},
        {"id": "fast", "type": "sma", "params": {"period": {"$param": "fast"}}},
        {"id": "slow", "type": "sma", "params": {"period": {"$param": "slow"}}},
        {"id": "up", "type": "cross_above"},
        {"id": "down", "type": "cross_below"},
        {"id": "buy", "type": "enter_long"},
        {"id": "sell", "type": "exit_long"},
    ]
    edges = [
        ("close.out", "fast.in"),
        ("close.out", "slow.in"),
        ("fast.out", "up.a"),
        ("slow.out", "up.b"),
        ("fast.out", "down.a"),
        ("slow.out", "down.b"),
        ("up.out", "buy.in"),
        ("down.out", "sell.in"),
    ]
    if short:
        nodes += [{"id": "short", "type": "enter_short"}, {"id": "cover", "type": "exit_short"}]
        edges += [("down.out", "short.in"), ("up.out", "cover.in")]
    nodes += risk or []
    return {
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in edges],
        "parameters": {
            "fast": {"default": fast, "min": 2, "max": 100, "step": 1},
            "slow": {"default": slow, "min": 5, "max": 300, "step": 1},
        },
    }


def make_bars(
    opens: list[float],
    highs: list[float],
    lows: list[float],
    closes: list[float],
    *,
    step_ms: int = 86_400_000,
) -> Bars:
    n = len(opens)
    # Start on a Monday (2024-01-01) and step daily.
    start = 1_704_067_200_000
    return Bars.from_arrays(
        ts=start + np.arange(n, dtype=np.int64) * step_ms,
        open=opens,
        high=highs,
        low=lows,
        close=closes,
        volume=np.ones(n),
    )


def random_walk(n: int, seed: int = 3, step_ms: int = 60_000) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    opens = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.001, n))
    spread = np.abs(rng.normal(0.0, 0.003, n)) * close
    return Bars.from_arrays(
        ts=1_704_067_200_000 + np.arange(n, dtype=np.int64) * step_ms,
        open=opens,
        high=np.maximum(opens, close) + spread,
        low=np.minimum(opens, close) - spread,
        close=close,
        volume=np.ones(n),
    )


@pytest.fixture(scope="session")
def sma_graph() -> Any:
    return sma_cross_graph


@pytest.fixture(scope="session")
def bars_from() -> Any:
    return make_bars


@pytest.fixture(scope="session")
def walk() -> Any:
    return random_walk
