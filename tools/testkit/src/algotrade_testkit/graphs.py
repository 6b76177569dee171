"""Strategy graphs that tests and benchmarks run through the engine and the services."""

from __future__ import annotations

from typing import Any


def sma_cross(
    fast: int = 10, slow: int = 30, *, fast_max: int = 100, slow_max: int = 300
) -> dict[str, Any]:
    """SMA(fast) crossing SMA(slow): long on the cross above, flat on the cross below.

    Both periods are tunables (``fast`` and ``slow``, defaulting to the given periods), so the
    same graph serves single runs and sweeps.
    """
    return {
        "nodes": [
            {"id": "close", "type": "price"},
            {"id": "fast", "type": "sma", "params": {"period": {"$param": "fast"}}},
            {"id": "slow", "type": "sma", "params": {"period": {"$param": "slow"}}},
            {"id": "up", "type": "cross_above"},
            {"id": "down", "type": "cross_below"},
            {"id": "buy", "type": "enter_long"},
            {"id": "sell", "type": "exit_long"},
        ],
        "edges": [
            {"from": "close.out", "to": "fast.in"},
            {"from": "close.out", "to": "slow.in"},
            {"from": "fast.out", "to": "up.a"},
            {"from": "slow.out", "to": "up.b"},
            {"from": "fast.out", "to": "down.a"},
            {"from": "slow.out", "to": "down.b"},
            {"from": "up.out", "to": "buy.in"},
            {"from": "down.out", "to": "sell.in"},
        ],
        "parameters": {
            "fast": {"default": fast, "min": 2, "max": fast_max, "step": 1},
            "slow": {"default": slow, "min": 5, "max": slow_max, "step": 1},
        },
    }


def twenty_nodes() -> dict[str, Any]:
    """A realistic 20-node strategy: trend, momentum, volatility, channel breakout, risk."""
    nodes = [
        {"id": "close", "type": "price"},
        {"id": "fast", "type": "ema", "params": {"period": 12}},
        {"id": "slow", "type": "ema", "params": {"period": 26}},
        {"id": "trend", "type": "sma", "params": {"period": 200}},
        {"id": "rsi", "type": "rsi", "params": {"period": 14}},
        {"id": "bands", "type": "bbands", "params": {"period": 20}},
        {"id": "atr", "type": "atr", "params": {"period": 14}},
        {"id": "adx", "type": "adx", "params": {"period": 14}},
        {"id": "chan", "type": "donchian", "params": {"period": 55}},
        {"id": "level", "type": "constant", "params": {"value": 25.0}},
        {"id": "cross_up", "type": "cross_above"},
        {"id": "uptrend", "type": "gt"},
        {"id": "trending", "type": "gt"},
        {"id": "not_hot", "type": "lt"},
        {"id": "entry_a", "type": "and"},
        {"id": "entry", "type": "and"},
        {"id": "breakdown", "type": "lt"},
        {"id": "buy", "type": "enter_long"},
        {"id": "sell", "type": "exit_long"},
        {"id": "stop", "type": "stop_loss", "params": {"mode": "atr", "atr_multiple": 2.0}},
    ]
    edges = [
        ("close.out", "fast.in"),
        ("close.out", "slow.in"),
        ("close.out", "trend.in"),
        ("close.out", "rsi.in"),
        ("close.out", "bands.in"),
        ("fast.out", "cross_up.a"),
        ("slow.out", "cross_up.b"),
        ("close.out", "uptrend.a"),
        ("trend.out", "uptrend.b"),
        ("adx.out", "trending.a"),
        ("level.out", "trending.b"),
        ("close.out", "not_hot.a"),
        ("bands.upper", "not_hot.b"),
        ("cross_up.out", "entry_a.a"),
        ("uptrend.out", "entry_a.b"),
        ("entry_a.out", "entry.a"),
        ("trending.out", "entry.b"),
        ("close.out", "breakdown.a"),
        ("chan.lower", "breakdown.b"),
        ("entry.out", "buy.in"),
        ("breakdown.out", "sell.in"),
    ]
    assert len(nodes) == 20
    return {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}
