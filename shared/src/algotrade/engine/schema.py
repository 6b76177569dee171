"""The published JSON Schema of strategy graphs, generated from pydantic models.

The generic models in `algotrade.engine.graph` describe the document; here they are
specialised per node type (its ``type`` literal and a params object with each param's type,
range, choices and default), so editors can validate and autocomplete a graph. The file
docs/strategy-graph.schema.json is this function's output (a test keeps them equal); refresh
it with::

    uv run --frozen python -c "from algotrade.engine.schema import schema_text; \
        print(schema_text(), end='')" > docs/strategy-graph.schema.json
"""

from __future__ import annotations

import json
import operator
from functools import reduce
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    create_model,
)

from algotrade.engine.graph import (
    MAX_EDGES,
    MAX_NODES,
    MAX_PARAMETERS,
    NAME_PATTERN,
    Edge,
    Parameter,
    ParamRef,
)
from algotrade.engine.nodes import ALL_NODE_TYPES
from algotrade.engine.specs import NodeType, ParamSpec

SCHEMA_ID = "https://algotrade.dev/schemas/strategy-graph.schema.json"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _param_field(spec: ParamSpec) -> tuple[Any, Any]:
    annotation: Any
    number: Any
    if spec.kind == "choice":
        annotation = Literal[spec.choices]
    else:
        assert spec.min is not None and spec.max is not None
        if spec.kind == "int":
            number = Annotated[StrictInt, Field(ge=int(spec.min), le=int(spec.max))]
        else:
            number = Annotated[StrictFloat, Field(ge=spec.min, le=spec.max, allow_inf_nan=False)]
        annotation = number | ParamRef
    if spec.required:
        return annotation, Field(description=spec.doc)
    return annotation, Field(default=spec.default, description=spec.doc)


def _node_model(node_type: NodeType) -> type[BaseModel]:
    name = _camel(node_type.name)
    type_literal: Any = Literal[node_type.name]
    fields = {spec.name: _param_field(spec) for spec in node_type.params}
    params_model = create_model(  # type: ignore[call-overload]
        f"{name}Params", __config__=ConfigDict(extra="forbid"), **fields
    )
    params_field: Any
    if any(spec.required for spec in node_type.params):
        params_field = (params_model, Field(description="parameters"))
    else:
        params_field = (params_model, Field(default_factory=params_model, description="parameters"))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{name}Node",
        __config__=ConfigDict(extra="forbid", title=f"{node_type.name} node"),
        __doc__=node_type.doc,
        id=(str, Field(pattern=NAME_PATTERN, description="unique node id")),
        type=(type_literal, Field(description=node_type.category)),
        params=params_field,
    )
    return model


def strategy_graph_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a strategy graph with every node type spelled out."""
    any_node_model: Any = reduce(operator.or_, (_node_model(t) for t in ALL_NODE_TYPES))
    any_node = Annotated[any_node_model, Field(discriminator="type")]
    tunable_name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    graph_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        "StrategyGraph",
        __config__=ConfigDict(extra="forbid", title="StrategyGraph"),
        __doc__="An AlgoTrade strategy: a DAG of typed nodes wired output port to input port.",
        nodes=(list[any_node], Field(max_length=MAX_NODES)),
        edges=(list[Edge], Field(default_factory=list, max_length=MAX_EDGES)),
        parameters=(
            dict[tunable_name, Parameter],
            Field(default_factory=dict, max_length=MAX_PARAMETERS),
        ),
        meta=(dict[str, Any], Field(default_factory=dict, description="free-form, not hashed")),
    )
    schema = graph_model.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """The schema exactly as published (sorted keys, two-space indent, final newline)."""
    return json.dumps(strategy_graph_json_schema(), indent=2, sort_keys=True) + "\n"
