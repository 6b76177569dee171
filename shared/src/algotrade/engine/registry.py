"""The node-type registry: lookup by name and the JSON catalog served to strategy editors."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from algotrade.engine.nodes import ALL_NODE_TYPES
from algotrade.engine.specs import NodeType

# Immutable after import: a table of constants, not state.
NODE_TYPES: Mapping[str, NodeType] = MappingProxyType({t.name: t for t in ALL_NODE_TYPES})


def get_node_type(name: str) -> NodeType | None:
    return NODE_TYPES.get(name)


def node_types_catalog() -> list[dict[str, Any]]:
    """Every node type as JSON-ready dicts (for ``GET /api/strategies/node-types``)."""
    return [t.as_catalog() for t in ALL_NODE_TYPES]
