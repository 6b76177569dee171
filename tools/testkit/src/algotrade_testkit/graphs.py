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
