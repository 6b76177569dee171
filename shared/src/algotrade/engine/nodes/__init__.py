"""Every built-in node type, grouped by category (one module per category)."""

from __future__ import annotations

from algotrade.engine.nodes import arithmetic, compare, indicators, logic, risk, signals, sources
from algotrade.engine.specs import NodeType

ALL_NODE_TYPES: tuple[NodeType, ...] = (
    *sources.NODE_TYPES,
    *indicators.NODE_TYPES,
    *arithmetic.NODE_TYPES,
    *compare.NODE_TYPES,
    *logic.NODE_TYPES,
    *signals.NODE_TYPES,
    *risk.NODE_TYPES,
)
