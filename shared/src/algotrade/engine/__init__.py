"""The strategy node engine: graphs in, validated and compiled plans out, two executors.

A strategy is a JSON graph of nodes (sources, indicators, math, comparisons, logic, signal and
risk sinks). `validate_graph` reports every problem at once, `compile_graph` turns a valid
graph into an immutable, content-addressed `Plan`, and the plan runs either vectorized over
whole arrays (`Plan.evaluate`, for backtests and sweeps) or bar by bar (`Plan.stream`, for
forward tests) with the same numbers. A graph that only computes indicators (no entry signal)
is evaluated for research and charts with `evaluate_graph`, as arrays or a pandas DataFrame.
See docs/strategy-graphs.md.
"""

from __future__ import annotations

from algotrade.bars import Bars
from algotrade.engine.compiler import Plan, RiskBinding, Step, compile_graph
from algotrade.engine.errors import BarRejected, GraphInvalid, PlanDecodeError, StateMismatch
from algotrade.engine.evaluation import Evaluation, evaluate_graph
from algotrade.engine.graph import (
    MAX_EDGES,
    MAX_GRAPH_BYTES,
    MAX_NODES,
    Edge,
    Node,
    Parameter,
    ParamRef,
    StrategyGraph,
)
from algotrade.engine.problems import Problem, ProblemCode
from algotrade.engine.registry import NODE_TYPES, get_node_type, node_types_catalog
from algotrade.engine.schema import strategy_graph_json_schema
from algotrade.engine.streaming import Stream
from algotrade.engine.validation import Purpose, validate_graph
from algotrade.engine.vectorized import Workspace

__all__ = [
    "MAX_EDGES",
    "MAX_GRAPH_BYTES",
    "MAX_NODES",
    "NODE_TYPES",
    "BarRejected",
    "Bars",
    "Edge",
    "Evaluation",
    "GraphInvalid",
    "Node",
    "ParamRef",
    "Parameter",
    "Plan",
    "PlanDecodeError",
    "Problem",
    "ProblemCode",
    "Purpose",
    "RiskBinding",
    "StateMismatch",
    "Step",
    "StrategyGraph",
    "Stream",
    "Workspace",
    "compile_graph",
    "evaluate_graph",
    "get_node_type",
    "node_types_catalog",
    "strategy_graph_json_schema",
    "validate_graph",
]
