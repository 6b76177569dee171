"""Validation problems: one per defect, each with a stable machine code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemCode(StrEnum):
    """Stable codes clients can switch on (documented in docs/strategy-graphs.md)."""

    INVALID_JSON = "invalid_json"
    INVALID_SHAPE = "invalid_shape"
    UNKNOWN_FIELD = "unknown_field"
    GRAPH_TOO_LARGE = "graph_too_large"
    TOO_MANY_NODES = "too_many_nodes"
    TOO_MANY_EDGES = "too_many_edges"
    TOO_MANY_PARAMETERS = "too_many_parameters"
    INVALID_NODE_ID = "invalid_node_id"
    DUPLICATE_NODE_ID = "duplicate_node_id"
    UNKNOWN_NODE_TYPE = "unknown_node_type"
    UNKNOWN_PARAM = "unknown_param"
    PARAM_MISSING = "param_missing"
    PARAM_WRONG_TYPE = "param_wrong_type"
    PARAM_OUT_OF_RANGE = "param_out_of_range"
    INVALID_PARAMETER = "invalid_parameter"
    PARAMETER_DEFAULT_OUT_OF_RANGE = "parameter_default_out_of_range"
    UNKNOWN_PARAMETER_REF = "unknown_parameter_ref"
    PARAMETER_RANGE_EXCEEDS_PARAM = "parameter_range_exceeds_param"
    INVALID_EDGE_REF = "invalid_edge_ref"
    DANGLING_EDGE = "dangling_edge"
    UNKNOWN_PORT = "unknown_port"
    SINK_OUTPUT_USED = "sink_output_used"
    TYPE_MISMATCH = "type_mismatch"
    INPUT_FED_TWICE = "input_fed_twice"
    MISSING_INPUT = "missing_input"
    CYCLE = "cycle"
    NO_ENTRY_SIGNAL = "no_entry_signal"
    DUPLICATE_RISK_NODE = "duplicate_risk_node"
    RISK_SIZING_NEEDS_STOP = "risk_sizing_needs_stop"


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect in a graph. ``node_id``/``port`` locate it when it has a location."""

    node_id: str | None
    port: str | None
    code: ProblemCode
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "node_id": self.node_id,
            "port": self.port,
            "code": self.code.value,
            "message": self.message,
        }
