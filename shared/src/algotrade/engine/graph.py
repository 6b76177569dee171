"""The strategy graph document: pydantic models, naming rules and size limits.

A graph is JSON with ``nodes`` (id, type, params), ``edges`` ({"from": "node.port",
"to": "node.port"}), optional ``parameters`` (named tunables for sweeps, referenced from a node
param as ``{"$param": "fast"}``) and free-form ``meta``. `algotrade.engine.schema` turns these
models, specialised per node type, into the published JSON Schema; `validate_graph` checks raw
JSON against the same rules but reports every problem instead of stopping at the first.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

MAX_NODES: Final = 500
MAX_EDGES: Final = 2000
MAX_PARAMETERS: Final = 100
MAX_GRAPH_BYTES: Final = 64 * 1024
MAX_NAME_LENGTH: Final = 64

NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
PORT_REF_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$"

TOP_LEVEL_KEYS: Final = frozenset({"nodes", "edges", "parameters", "meta"})


class ParamRef(BaseModel):
    """A node param bound to a graph-level tunable: ``{"$param": "fast"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(alias="$param", pattern=NAME_PATTERN, description="a key of `parameters`")


# Strict: a JSON `true` must not quietly become the number 1.
ParamLiteral = StrictInt | StrictFloat | StrictStr


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=NAME_PATTERN, description="unique id, used in edges and outputs")
    type: str = Field(max_length=MAX_NAME_LENGTH, description="a registered node type")
    params: dict[str, ParamLiteral | ParamRef] = Field(default_factory=dict)


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", pattern=PORT_REF_PATTERN, description="node.output_port")
    target: str = Field(alias="to", pattern=PORT_REF_PATTERN, description="node.input_port")


class Parameter(BaseModel):
    """A tunable a sweep may vary between ``min`` and ``max`` in steps of ``step``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    default: StrictInt | StrictFloat
    min: StrictInt | StrictFloat
    max: StrictInt | StrictFloat
    step: StrictInt | StrictFloat | None = Field(default=None, gt=0)
    doc: str | None = Field(default=None, max_length=500)


class StrategyGraph(BaseModel):
    """A strategy as a DAG of nodes; the shape every service stores and exchanges."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="StrategyGraph")

    nodes: list[Node] = Field(max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)
    parameters: dict[str, Parameter] = Field(default_factory=dict, max_length=MAX_PARAMETERS)
    meta: dict[str, Any] = Field(
        default_factory=dict, description="free-form (name, author, ...); not part of the plan id"
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The graph as plain JSON data (aliases such as ``from`` and ``$param`` restored)."""
        return self.model_dump(by_alias=True, exclude_none=True)
