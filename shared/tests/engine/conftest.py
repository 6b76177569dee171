"""Fixtures for the engine tests: real bars from data/ and small graph builders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algotrade.engine import Bars

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
DATASETS = ("spy-1d", "spy-1h", "btc-usd-4h")


@pytest.fixture(scope="session")
def load_bars() -> Callable[[str], Bars]:
    cache: dict[str, Bars] = {}

    def load(name: str) -> Bars:
        if name not in cache:
            cache[name] = Bars.from_csv(DATA_DIR / f"{name}.csv")
        return cache[name]

    return load


@pytest.fixture(scope="session")
def spy_daily(load_bars: Callable[[str], Bars]) -> Bars:
    return load_bars("spy-1d")


@pytest.fixture(scope="session")
def holey_bars(load_bars: Callable[[str], Bars]) -> Bars:
    """800 real hourly bars with NaN holes and zero volumes sprinkled in (fixed seed)."""
    base = load_bars("spy-1h").slice(10_000, 10_800)
    rng = np.random.default_rng(7)
    columns = {name: base.field(name).copy() for name in ("open", "high", "low", "close")}
    volume = base.volume.copy()
    for index in rng.choice(len(base), size=12, replace=False):
        columns[str(rng.choice(list(columns)))][index] = np.nan
    volume[rng.choice(len(base), size=6, replace=False)] = np.nan
    volume[rng.choice(len(base), size=20, replace=False)] = 0.0
    return Bars.from_arrays(ts=base.ts, volume=volume, **columns)


def signal_graph(
    nodes: list[dict[str, Any]],
    edges: list[tuple[str, str]],
    *,
    parameters: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A graph from nodes and (from, to) pairs; adds an enter_long on close > sma(close)."""
    graph_nodes = [
        *nodes,
        {"id": "t_close", "type": "price"},
        {"id": "t_avg", "type": "sma", "params": {"period": 5}},
        {"id": "t_up", "type": "gt"},
        {"id": "t_enter", "type": "enter_long"},
    ]
    graph_edges = [
        *edges,
        ("t_close.out", "t_avg.in"),
        ("t_close.out", "t_up.a"),
        ("t_avg.out", "t_up.b"),
        ("t_up.out", "t_enter.in"),
    ]
    graph: dict[str, Any] = {
        "nodes": graph_nodes,
        "edges": [{"from": a, "to": b} for a, b in graph_edges],
    }
    if parameters is not None:
        graph["parameters"] = parameters
    if meta is not None:
        graph["meta"] = meta
    return graph


@pytest.fixture(scope="session")
def make_graph() -> Callable[..., dict[str, Any]]:
    return signal_graph


def crossover_graph() -> dict[str, Any]:
    """The EMA crossover used in the docs, with tunables, exits and risk nodes."""
    return {
        "nodes": [
            {"id": "close", "type": "price", "params": {"field": "close"}},
            {"id": "fast", "type": "ema", "params": {"period": {"$param": "fast"}}},
            {"id": "slow", "type": "ema", "params": {"period": {"$param": "slow"}}},
            {"id": "golden", "type": "cross_above"},
            {"id": "death", "type": "cross_below"},
            {"id": "buy", "type": "enter_long"},
            {"id": "sell", "type": "exit_long"},
            {"id": "stop", "type": "stop_loss", "params": {"mode": "atr", "atr_multiple": 2.0}},
            {"id": "size", "type": "position_size", "params": {"mode": "risk", "risk_percent": 1}},
        ],
        "edges": [
            {"from": "close.out", "to": "fast.in"},
            {"from": "close.out", "to": "slow.in"},
            {"from": "fast.out", "to": "golden.a"},
            {"from": "slow.out", "to": "golden.b"},
            {"from": "fast.out", "to": "death.a"},
            {"from": "slow.out", "to": "death.b"},
            {"from": "golden.out", "to": "buy.in"},
            {"from": "death.out", "to": "sell.in"},
        ],
        "parameters": {
            "fast": {"default": 12, "min": 2, "max": 50, "step": 1},
            "slow": {"default": 26, "min": 10, "max": 200, "step": 2},
        },
        "meta": {"name": "EMA crossover"},
    }


@pytest.fixture
def crossover() -> dict[str, Any]:
    return crossover_graph()


def stream_all(stream: Any, bars: Bars) -> list[dict[str, float | bool]]:
    return [stream.update(row) for row in bars.rows()]


def assert_same_outputs(
    vectorized: dict[str, np.ndarray], streamed: list[dict[str, float | bool]]
) -> None:
    """Streaming equals vectorized: exactly for bools, 1e-9 relative for floats, same NaNs."""
    assert streamed, "no bars streamed"
    assert set(streamed[0]) == set(vectorized)
    for key, expected in vectorized.items():
        if expected.dtype == np.bool_:
            got = np.array([row[key] for row in streamed], dtype=np.bool_)
            assert np.array_equal(got, expected), key
        else:
            got = np.array([row[key] for row in streamed], dtype=np.float64)
            assert np.array_equal(np.isnan(got), np.isnan(expected)), key
            finite = ~np.isnan(expected)
            np.testing.assert_allclose(
                got[finite], expected[finite], rtol=1e-9, atol=0, err_msg=key
            )


@pytest.fixture(scope="session")
def parity() -> Callable[..., None]:
    return assert_same_outputs


@pytest.fixture(scope="session")
def stream_bars() -> Callable[..., list[dict[str, float | bool]]]:
    return stream_all
