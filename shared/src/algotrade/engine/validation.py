"""Graph validation: every problem at once, never an exception, whatever the input.

`validate_graph` accepts untrusted JSON (bytes, str or already-parsed data) and walks it
defensively: it never recurses into unknown structures, never formats arbitrary values, never
converts unbounded integers to float, and stops early only when a size limit is exceeded
(so hostile input costs bounded work). `analyse` additionally returns the checked graph in the
form the compiler consumes.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import orjson

from algotrade.engine.graph import (
    MAX_EDGES,
    MAX_GRAPH_BYTES,
    MAX_NODES,
    MAX_PARAMETERS,
    NAME_PATTERN,
    PORT_REF_PATTERN,
    TOP_LEVEL_KEYS,
    StrategyGraph,
)
from algotrade.engine.problems import Problem, ProblemCode
from algotrade.engine.registry import NODE_TYPES
from algotrade.engine.specs import (
    ENTRY_SIGNAL_KINDS,
    RISK_KINDS,
    NodeType,
    ParamSpec,
    ParamValue,
)

_NAME = re.compile(NAME_PATTERN)
_PORT_REF = re.compile(PORT_REF_PATTERN)
# Tunable values beyond this are rejected so later float conversions can never overflow.
MAX_TUNABLE_MAGNITUDE = 1e15
NODE_KEYS = frozenset({"id", "type", "params"})
_NO_PARAMS: dict[str, Any] = {}
EDGE_KEYS = frozenset({"from", "to"})
PARAMETER_KEYS = frozenset({"default", "min", "max", "step", "doc"})

RawGraph = Mapping[str, Any] | bytes | bytearray | memoryview | str | StrategyGraph

Purpose = Literal["strategy", "indicators"]
"""What a graph is checked for. A ``"strategy"`` is run by backtests and forward tests and must
have an entry signal; ``"indicators"`` is a graph evaluated for research and charts (sources,
indicators, math...), which needs none. Every other rule applies to both."""
PURPOSES: Final[tuple[Purpose, ...]] = ("strategy", "indicators")


class Tunable(NamedTuple):
    """A checked graph-level parameter."""

    name: str
    default: int | float
    min: int | float
    max: int | float
    step: int | float | None
    integer: bool  # bound to at least one int node param: values must be whole numbers

    @property
    def is_whole(self) -> bool:
        """Whether default, min, max and step are all whole numbers."""
        values = (self.default, self.min, self.max, self.step)
        return all(_is_whole(v) for v in values if v is not None)

    def as_dict(self) -> dict[str, Any]:
        return {"default": self.default, "min": self.min, "max": self.max, "step": self.step}


class NodeDecl(NamedTuple):
    """A checked node: its type, full params (defaults filled) and where its inputs come from.

    ``bindings`` maps a param name to the tunable it follows. ``sources`` maps a wired input
    port to ``(node_id, output_port)``; ``wiring`` lists every kernel input in order as
    ``(node_id, port)`` or, for an unwired optional input, ``(None, "@field")``.
    """

    id: str
    type: NodeType
    params: Mapping[str, ParamValue]
    bindings: Mapping[str, str]
    sources: Mapping[str, tuple[str, str]]
    wiring: tuple[tuple[str | None, str], ...]


def node_wiring(
    node_type: NodeType, sources: Mapping[str, tuple[str, str]]
) -> tuple[tuple[str | None, str], ...]:
    """Kernel inputs of a node in port order (see `NodeDecl.wiring`)."""
    return tuple(
        sources.get(spec.name, (None, f"@{spec.default_field}")) for spec in node_type.inputs
    )


@dataclass(frozen=True, slots=True)
class ValidatedGraph:
    """A graph without problems, nodes in a deterministic topological order."""

    nodes: tuple[NodeDecl, ...]
    tunables: Mapping[str, Tunable]


def validate_graph(raw: RawGraph | Any, *, purpose: Purpose = "strategy") -> list[Problem]:
    """Every problem in ``raw`` as a graph for ``purpose`` (empty when valid). Never raises."""
    problems, _ = analyse(raw, purpose=purpose)
    return problems


def analyse(
    raw: RawGraph | Any, *, purpose: Purpose = "strategy"
) -> tuple[list[Problem], ValidatedGraph | None]:
    """Problems in ``raw`` and, when there are none, the checked graph."""
    if purpose not in PURPOSES:
        # A programming error, not a problem of the graph: fail loudly rather than
        # quietly checking with the wrong rules.
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    return _Checker(purpose).run(raw)


def _show(value: Any) -> str:
    """A short, safe description of an untrusted value for messages."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else "a very large integer"
    if isinstance(value, float):
        return repr(value)
    return f"a {type(value).__name__}"


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the exact check is the fast path


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_whole(value: int | float) -> bool:
    return isinstance(value, int) or value.is_integer()


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return False
    return True


def _counts_exceed_limits(raw: Mapping[Any, Any]) -> bool:
    """Whether node/edge counts alone break a limit (then measuring the JSON is wasted work)."""
    nodes, edges = raw.get("nodes"), raw.get("edges")
    return (isinstance(nodes, list) and len(nodes) > MAX_NODES) or (
        isinstance(edges, list) and len(edges) > MAX_EDGES
    )


def _json_size(raw: Any) -> int | None:
    try:
        return len(orjson.dumps(raw))
    except (TypeError, ValueError, orjson.JSONEncodeError):
        pass
    try:
        return len(json.dumps(raw, default=str, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        return None


class _Checker:
    """One validation run; collects problems as it goes."""

    def __init__(self, purpose: Purpose = "strategy") -> None:
        self.purpose = purpose
        self.problems: list[Problem] = []

    def add(
        self, code: ProblemCode, message: str, node_id: str | None = None, port: str | None = None
    ) -> None:
        self.problems.append(Problem(node_id=node_id, port=port, code=code, message=message))

    # -- entry point ------------------------------------------------------------------------

    def run(self, raw: Any) -> tuple[list[Problem], ValidatedGraph | None]:
        doc = self._load(raw)
        if doc is None:
            return self.problems, None
        parts = self._top_level(doc)
        if parts is None:
            return self.problems, None
        nodes, edges, parameters = parts
        declared, tunables = self._parameters(parameters if parameters is not None else {})
        # With a malformed 'parameters' block every reference is unverifiable, not unknown.
        decls = self._nodes(nodes, declared if parameters is not None else None, tunables)
        sources, links, targeted = self._edges(edges, decls)
        self._missing_inputs(decls, sources, targeted)
        order = _topological_order(decls, links)
        if len(order) < len(decls):
            self._cycles([n for n in decls if n not in set(order)], links)
        self._sinks(decls)
        if self.problems:
            return self.problems, None
        return [], self._assemble(decls, sources, order, tunables)

    # -- document ---------------------------------------------------------------------------

    def _load(self, raw: Any) -> dict[Any, Any] | None:
        if isinstance(raw, StrategyGraph):
            raw = raw.to_json_dict()
        if isinstance(raw, bytes | bytearray | memoryview | str):
            try:
                data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
            except UnicodeEncodeError:
                self.add(ProblemCode.INVALID_JSON, "The graph text is not valid UTF-8.")
                return None
            if len(data) > MAX_GRAPH_BYTES:
                self.add(
                    ProblemCode.GRAPH_TOO_LARGE,
                    f"The graph JSON is {len(data)} bytes; the limit is {MAX_GRAPH_BYTES}.",
                )
                return None
            try:
                raw = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                self.add(ProblemCode.INVALID_JSON, f"The graph is not valid JSON: {exc}.")
                return None
        elif _is_mapping(raw) and not _counts_exceed_limits(raw):
            size = _json_size(raw)
            if size is not None and size > MAX_GRAPH_BYTES:
                self.add(
                    ProblemCode.GRAPH_TOO_LARGE,
                    f"The graph JSON is {size} bytes; the limit is {MAX_GRAPH_BYTES}.",
                )
                return None
        if not _is_mapping(raw):
            self.add(ProblemCode.INVALID_SHAPE, f"A graph must be a JSON object, not {_show(raw)}.")
            return None
        return dict(raw)

    def _top_level(
        self, doc: dict[Any, Any]
    ) -> tuple[list[Any], list[Any], dict[Any, Any] | None] | None:
        """Nodes, edges and parameters (None if malformed); None when nothing can be checked."""
        for key in doc:
            if key not in TOP_LEVEL_KEYS:
                self.add(
                    ProblemCode.UNKNOWN_FIELD,
                    f"Unknown top-level field {_show(key)}; allowed: edges, meta, nodes, "
                    "parameters.",
                )
        nodes = doc.get("nodes")
        if "nodes" not in doc:
            self.add(ProblemCode.INVALID_SHAPE, "The graph has no 'nodes' list.")
        elif not isinstance(nodes, list):
            self.add(
                ProblemCode.INVALID_SHAPE, f"The 'nodes' field must be a list, not {_show(nodes)}."
            )
            nodes = None
        edges = doc.get("edges", [])
        if not isinstance(edges, list):
            self.add(
                ProblemCode.INVALID_SHAPE, f"The 'edges' field must be a list, not {_show(edges)}."
            )
            edges = []
        parameters = doc.get("parameters", {})
        if not _is_mapping(parameters):
            self.add(
                ProblemCode.INVALID_SHAPE,
                f"The 'parameters' field must be an object, not {_show(parameters)}.",
            )
            parameters = None
        meta = doc.get("meta", {})
        if not _is_mapping(meta):
            self.add(
                ProblemCode.INVALID_SHAPE, f"The 'meta' field must be an object, not {_show(meta)}."
            )
        elif not _is_json(meta):
            self.add(ProblemCode.INVALID_SHAPE, "The 'meta' field must contain only JSON values.")

        within_limits = True
        if isinstance(nodes, list) and len(nodes) > MAX_NODES:
            self.add(
                ProblemCode.TOO_MANY_NODES,
                f"The graph has {len(nodes)} nodes; the limit is {MAX_NODES}.",
            )
            within_limits = False
        if isinstance(edges, list) and len(edges) > MAX_EDGES:
            self.add(
                ProblemCode.TOO_MANY_EDGES,
                f"The graph has {len(edges)} edges; the limit is {MAX_EDGES}.",
            )
            within_limits = False
        if isinstance(parameters, Mapping) and len(parameters) > MAX_PARAMETERS:
            self.add(
                ProblemCode.TOO_MANY_PARAMETERS,
                f"The graph declares {len(parameters)} parameters; the limit is {MAX_PARAMETERS}.",
            )
            within_limits = False
        if not within_limits or not isinstance(nodes, list):
            return None
        return nodes, edges, (dict(parameters) if parameters is not None else None)

    # -- parameters (tunables) --------------------------------------------------------------

    def _parameters(self, parameters: dict[Any, Any]) -> tuple[set[str], dict[str, Tunable]]:
        declared: set[str] = set()
        tunables: dict[str, Tunable] = {}
        for name, spec in parameters.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.add(
                    ProblemCode.INVALID_PARAMETER,
                    f"Parameter name {_show(name)} must match {NAME_PATTERN}.",
                )
                continue
            declared.add(name)
            tunable = self._tunable(name, spec)
            if tunable is not None:
                tunables[name] = tunable
        return declared, tunables

    def _tunable(self, name: str, spec: Any) -> Tunable | None:
        def bad(reason: str) -> None:
            self.add(ProblemCode.INVALID_PARAMETER, f"Parameter {_show(name)}: {reason}")

        if not _is_mapping(spec):
            bad(f"must be an object with default, min and max, not {_show(spec)}.")
            return None
        ok = True
        for key in spec:
            if key not in PARAMETER_KEYS:
                bad(f"unknown field {_show(key)}; allowed: default, doc, max, min, step.")
                ok = False
        values: dict[str, int | float] = {}
        for key in ("default", "min", "max", "step"):
            if key not in spec:
                if key != "step":
                    bad(f"'{key}' is required.")
                    ok = False
                continue
            value = spec[key]
            if key == "step" and value is None:
                continue
            if not _is_number(value):
                bad(f"'{key}' must be a finite number, not {_show(value)}.")
                ok = False
            elif abs(value) > MAX_TUNABLE_MAGNITUDE:
                bad(f"'{key}' must be within +/-{MAX_TUNABLE_MAGNITUDE:g}.")
                ok = False
            else:
                values[key] = value
        doc = spec.get("doc")
        if doc is not None and (not isinstance(doc, str) or len(doc) > 500):
            bad("'doc' must be a string of at most 500 characters.")
            ok = False
        if not ok:
            return None
        low, high, default = values["min"], values["max"], values["default"]
        step = values.get("step")
        if low > high:
            bad(f"min ({_show(low)}) is greater than max ({_show(high)}).")
            return None
        if step is not None and step <= 0:
            bad(f"step must be positive, not {_show(step)}.")
            return None
        if not low <= default <= high:
            self.add(
                ProblemCode.PARAMETER_DEFAULT_OUT_OF_RANGE,
                f"Parameter {_show(name)}: default {_show(default)} is outside its own range "
                f"[{_show(low)}, {_show(high)}].",
            )
            return None
        return Tunable(name, default, low, high, step, integer=False)

    # -- nodes ------------------------------------------------------------------------------

    def _nodes(
        self, nodes: list[Any], declared: set[str] | None, tunables: dict[str, Tunable]
    ) -> dict[str, _Draft]:
        drafts: dict[str, _Draft] = {}
        integer_bound: set[str] = set()
        for index, node in enumerate(nodes):
            # Fast path for a well-formed node; anything unusual takes the checking path.
            if type(node) is dict and node.keys() <= NODE_KEYS:
                node_id = node.get("id")
                type_name = node.get("type")
                node_type = NODE_TYPES.get(type_name) if type(type_name) is str else None
                params = node.get("params", _NO_PARAMS)
                if (
                    type(node_id) is str
                    and node_id not in drafts
                    and node_type is not None
                    and type(params) is dict
                    and _NAME.fullmatch(node_id)
                ):
                    draft = _Draft(node_id, node_type)
                    drafts[node_id] = draft
                    self._params(draft, params, declared, tunables, integer_bound)
                    continue
            self._node(index, node, drafts, declared, tunables, integer_bound)
        for name in integer_bound:
            tunables[name] = tunables[name]._replace(integer=True)
        return drafts

    def _node(
        self,
        index: int,
        node: Any,
        drafts: dict[str, _Draft],
        declared: set[str] | None,
        tunables: dict[str, Tunable],
        integer_bound: set[str],
    ) -> None:
        """Check one node that is not plainly well-formed, reporting what is wrong with it."""
        where = f"Node #{index}"
        if not _is_mapping(node):
            self.add(ProblemCode.INVALID_SHAPE, f"{where} must be an object, not {_show(node)}.")
            return
        node_id = node.get("id")
        if not isinstance(node_id, str):
            self.add(
                ProblemCode.INVALID_SHAPE,
                f"{where} needs a string 'id', not {_show(node_id)}."
                if "id" in node
                else f"{where} has no 'id'.",
            )
            return
        if not _NAME.fullmatch(node_id):
            self.add(
                ProblemCode.INVALID_NODE_ID,
                f"Node id {_show(node_id)} must match {NAME_PATTERN} (letters, digits, _).",
            )
            return
        if node_id in drafts:
            self.add(
                ProblemCode.DUPLICATE_NODE_ID,
                f"Node id {_show(node_id)} is used more than once.",
                node_id,
            )
            return
        for key in node.keys() - NODE_KEYS:
            self.add(
                ProblemCode.UNKNOWN_FIELD,
                f"Node {_show(node_id)} has unknown field {_show(key)}; allowed: id, params, type.",
                node_id,
            )
        type_name = node.get("type")
        node_type = NODE_TYPES.get(type_name) if isinstance(type_name, str) else None
        if not isinstance(type_name, str):
            self.add(
                ProblemCode.INVALID_SHAPE,
                f"Node {_show(node_id)} needs a string 'type', not {_show(type_name)}.",
                node_id,
            )
        elif node_type is None:
            self.add(
                ProblemCode.UNKNOWN_NODE_TYPE,
                f"Node {_show(node_id)} has unknown type {_show(type_name)}.",
                node_id,
            )
        params = node.get("params", {})
        if not _is_mapping(params):
            self.add(
                ProblemCode.INVALID_SHAPE,
                f"Node {_show(node_id)}: 'params' must be an object, not {_show(params)}.",
                node_id,
            )
            params = {}
        draft = _Draft(node_id, node_type)
        drafts[node_id] = draft
        if node_type is not None:
            self._params(draft, params, declared, tunables, integer_bound)

    def _params(
        self,
        draft: _Draft,
        params: Mapping[Any, Any],
        declared: set[str] | None,
        tunables: dict[str, Tunable],
        integer_bound: set[str],
    ) -> None:
        assert draft.type is not None
        node_id = draft.id
        specs = draft.type.param_index
        for key, value in params.items():
            spec = specs.get(key) if isinstance(key, str) else None
            if spec is None:
                allowed = ", ".join(sorted(specs)) or "none"
                self.add(
                    ProblemCode.UNKNOWN_PARAM,
                    f"Node {_show(node_id)} ({draft.type.name}) has no param {_show(key)}; "
                    f"allowed: {allowed}.",
                    node_id,
                )
                continue
            kind = type(value)
            low, high = spec.min, spec.max
            if (
                kind is int
                and spec.kind == "int"
                and low is not None
                and high is not None
                and low <= value <= high
            ):
                draft.params[key] = value  # the common case, checked without the slow path
            elif _is_mapping(value):
                self._bind(draft, spec, value, declared, tunables, integer_bound)
            else:
                literal = self._literal(node_id, spec, value)
                if literal is not None:
                    draft.params[spec.name] = literal
        for spec in draft.type.params:
            if spec.name in draft.params or spec.name in draft.bindings:
                continue
            if spec.name in params:
                continue  # present but invalid: already reported
            if spec.default is None:
                self.add(
                    ProblemCode.PARAM_MISSING,
                    f"Node {_show(node_id)} ({draft.type.name}) needs param '{spec.name}'.",
                    node_id,
                )
            else:
                draft.params[spec.name] = coerce(spec, spec.default)

    def _bind(
        self,
        draft: _Draft,
        spec: ParamSpec,
        value: Mapping[Any, Any],
        declared: set[str] | None,
        tunables: dict[str, Tunable],
        integer_bound: set[str],
    ) -> None:
        node_id = draft.id
        label = f"Node {_show(node_id)} param '{spec.name}'"
        name = value.get("$param")
        if len(value) != 1 or not isinstance(name, str):
            self.add(
                ProblemCode.PARAM_WRONG_TYPE,
                f'{label} must be a value or {{"$param": "<name>"}}.',
                node_id,
            )
            return
        if not spec.tunable:
            self.add(
                ProblemCode.PARAM_WRONG_TYPE,
                f"{label} is a choice and cannot reference a tunable parameter.",
                node_id,
            )
            return
        if declared is not None and name not in declared:
            self.add(
                ProblemCode.UNKNOWN_PARAMETER_REF,
                f"{label} references {_show(name)}, which is not declared in 'parameters'.",
                node_id,
            )
            return
        tunable = tunables.get(name)
        if tunable is None:
            return  # the declaration itself is invalid and already reported
        if spec.kind == "int":
            integer_bound.add(name)
            if not tunable.is_whole:
                self.add(
                    ProblemCode.PARAM_WRONG_TYPE,
                    f"{label} is an integer but parameter {_show(name)} has a fractional "
                    "default, min, max or step.",
                    node_id,
                )
                return
        assert spec.min is not None and spec.max is not None
        if tunable.min < spec.min or tunable.max > spec.max:
            self.add(
                ProblemCode.PARAMETER_RANGE_EXCEEDS_PARAM,
                f"{label} accepts [{spec.min:g}, {spec.max:g}] but parameter {_show(name)} "
                f"ranges over [{_show(tunable.min)}, {_show(tunable.max)}].",
                node_id,
            )
            return
        draft.bindings[spec.name] = name
        draft.params[spec.name] = coerce(spec, tunable.default)

    def _literal(self, node_id: str, spec: ParamSpec, value: Any) -> ParamValue | None:
        label = f"Node {_show(node_id)} param '{spec.name}'"
        if spec.kind == "choice":
            if not isinstance(value, str):
                self.add(
                    ProblemCode.PARAM_WRONG_TYPE,
                    f"{label} must be a string, not {_show(value)}.",
                    node_id,
                )
                return None
            if value not in spec.choices:
                self.add(
                    ProblemCode.PARAM_OUT_OF_RANGE,
                    f"{label} is {_show(value)}; allowed: {', '.join(spec.choices)}.",
                    node_id,
                )
                return None
            return value
        if spec.kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            self.add(
                ProblemCode.PARAM_WRONG_TYPE,
                f"{label} must be an integer, not {_show(value)}.",
                node_id,
            )
            return None
        if spec.kind == "float" and not _is_number(value):
            self.add(
                ProblemCode.PARAM_WRONG_TYPE,
                f"{label} must be a finite number, not {_show(value)}.",
                node_id,
            )
            return None
        assert spec.min is not None and spec.max is not None
        if not spec.min <= value <= spec.max:
            self.add(
                ProblemCode.PARAM_OUT_OF_RANGE,
                f"{label} is {_show(value)}; allowed range [{spec.min:g}, {spec.max:g}].",
                node_id,
            )
            return None
        return coerce(spec, value)

    # -- edges ------------------------------------------------------------------------------

    def _edges(
        self, edges: list[Any], drafts: dict[str, _Draft]
    ) -> tuple[dict[tuple[str, str], tuple[str, str]], dict[str, set[str]], set[tuple[str, str]]]:
        sources: dict[tuple[str, str], tuple[str, str]] = {}
        links: dict[str, set[str]] = {node_id: set() for node_id in drafts}
        targeted: set[tuple[str, str]] = set()
        for index, edge in enumerate(edges):
            # Fast path for a well-formed edge between existing nodes.
            if type(edge) is dict and len(edge) == 2:
                ref_from, ref_to = edge.get("from"), edge.get("to")
                if (
                    type(ref_from) is str
                    and type(ref_to) is str
                    and _PORT_REF.fullmatch(ref_from)
                    and _PORT_REF.fullmatch(ref_to)
                ):
                    src_id, _, src_port = ref_from.partition(".")
                    dst_id, _, dst_port = ref_to.partition(".")
                    src, dst = drafts.get(src_id), drafts.get(dst_id)
                    if src is not None and dst is not None:
                        links[src_id].add(dst_id)
                        targeted.add((dst_id, dst_port))
                        self._wire(index, src, src_port, dst, dst_port, sources)
                        continue
            where = f"Edge #{index}"
            if not _is_mapping(edge):
                self.add(
                    ProblemCode.INVALID_SHAPE, f"{where} must be an object, not {_show(edge)}."
                )
                continue
            for key in edge.keys() - EDGE_KEYS:
                self.add(
                    ProblemCode.UNKNOWN_FIELD,
                    f"{where} has unknown field {_show(key)}; allowed: from, to.",
                )
            source = self._port_ref(where, edge, "from")
            target = self._port_ref(where, edge, "to")
            if source is None or target is None:
                continue
            (src_id, src_port), (dst_id, dst_port) = source, target
            src, dst = drafts.get(src_id), drafts.get(dst_id)
            for end_id, draft in ((src_id, src), (dst_id, dst)):
                if draft is None:
                    self.add(
                        ProblemCode.DANGLING_EDGE,
                        f"{where} ({src_id}.{src_port} -> {dst_id}.{dst_port}) refers to node "
                        f"{_show(end_id)}, which does not exist.",
                        end_id,
                    )
            if src is None or dst is None:
                continue
            links[src_id].add(dst_id)
            targeted.add((dst_id, dst_port))
            self._wire(index, src, src_port, dst, dst_port, sources)
        return sources, links, targeted

    def _port_ref(self, where: str, edge: Mapping[Any, Any], key: str) -> tuple[str, str] | None:
        ref = edge.get(key)
        if type(ref) is str and _PORT_REF.fullmatch(ref):
            node_id, _, port = ref.partition(".")
            return node_id, port
        if not isinstance(ref, str):
            self.add(
                ProblemCode.INVALID_SHAPE,
                f"{where} needs a string '{key}' like \"node.port\", not {_show(ref)}."
                if key in edge
                else f"{where} has no '{key}'.",
            )
            return None
        if not _PORT_REF.fullmatch(ref):
            self.add(
                ProblemCode.INVALID_EDGE_REF,
                f"{where} '{key}' is {_show(ref)}; expected \"node.port\".",
            )
            return None
        node_id, _, port = ref.partition(".")
        return node_id, port

    def _wire(
        self,
        index: int,
        src: _Draft,
        src_port: str,
        dst: _Draft,
        dst_port: str,
        sources: dict[tuple[str, str], tuple[str, str]],
    ) -> None:
        key = (dst.id, dst_port)
        if src.type is not None and dst.type is not None and key not in sources:
            out_spec = src.type.output_index.get(src_port)
            in_spec = dst.type.input_index.get(dst_port)
            if (
                out_spec is not None
                and in_spec is not None
                and out_spec.type == in_spec.type
                and not src.type.is_sink
            ):
                sources[key] = (src.id, src_port)
                return
        where = f"Edge #{index}"
        ok = True
        out_spec = in_spec = None
        if src.type is not None:
            out_spec = src.type.output_index.get(src_port)
            if src.type.is_sink:
                self.add(
                    ProblemCode.SINK_OUTPUT_USED,
                    f"{where}: {src.id} is a {src.type.category} sink; its outputs are read by "
                    "the executors and cannot feed other nodes.",
                    src.id,
                    src_port,
                )
                ok = False
            elif out_spec is None:
                outputs = ", ".join(src.type.output_index)
                self.add(
                    ProblemCode.UNKNOWN_PORT,
                    f"{where}: {src.type.name} node {src.id} has no output {_show(src_port)}; "
                    f"outputs: {outputs}.",
                    src.id,
                    src_port,
                )
                ok = False
        if dst.type is not None:
            in_spec = dst.type.input_index.get(dst_port)
            if in_spec is None:
                inputs = ", ".join(dst.type.input_index) or "none"
                self.add(
                    ProblemCode.UNKNOWN_PORT,
                    f"{where}: {dst.type.name} node {dst.id} has no input {_show(dst_port)}; "
                    f"inputs: {inputs}.",
                    dst.id,
                    dst_port,
                )
                ok = False
        if out_spec is not None and in_spec is not None and out_spec.type != in_spec.type:
            self.add(
                ProblemCode.TYPE_MISMATCH,
                f"{where}: {src.id}.{src_port} is a {out_spec.type} series but "
                f"{dst.id}.{dst_port} takes a {in_spec.type} series.",
                dst.id,
                dst_port,
            )
            ok = False
        if key in sources:
            first = ".".join(sources[key])
            self.add(
                ProblemCode.INPUT_FED_TWICE,
                f"{where}: input {dst.id}.{dst_port} is already fed by {first}; an input takes "
                "one edge.",
                dst.id,
                dst_port,
            )
            return
        if ok and out_spec is not None and in_spec is not None:
            sources[key] = (src.id, src_port)

    # -- whole-graph checks -----------------------------------------------------------------

    def _missing_inputs(
        self,
        drafts: dict[str, _Draft],
        sources: dict[tuple[str, str], tuple[str, str]],
        targeted: set[tuple[str, str]],
    ) -> None:
        for draft in drafts.values():
            if draft.type is None:
                continue
            for spec in draft.type.inputs:
                key = (draft.id, spec.name)
                if spec.required and key not in sources and key not in targeted:
                    self.add(
                        ProblemCode.MISSING_INPUT,
                        f"Node {draft.id} ({draft.type.name}) needs its '{spec.name}' input "
                        f"({spec.type} series) connected.",
                        draft.id,
                        spec.name,
                    )

    def _cycles(self, stuck: list[str], links: dict[str, set[str]]) -> None:
        """Name the cycles among the nodes a topological sort could not place."""
        inside = set(stuck)
        sub_links = {node: links[node] & inside for node in stuck}
        for component in _strongly_connected(stuck, sub_links):
            if len(component) == 1 and component[0] not in sub_links[component[0]]:
                continue
            path = _cycle_path(component, sub_links)
            self.add(
                ProblemCode.CYCLE,
                f"The graph has a cycle: {' -> '.join([*path, path[0]])}.",
                path[0],
            )

    def _sinks(self, drafts: dict[str, _Draft]) -> None:
        typed = [d for d in drafts.values() if d.type is not None]
        needs_entry = self.purpose == "strategy"
        if needs_entry and not any(
            d.type is not None and d.type.name in ENTRY_SIGNAL_KINDS for d in typed
        ):
            self.add(
                ProblemCode.NO_ENTRY_SIGNAL,
                "The graph has no entry signal: add an enter_long or enter_short node.",
            )
        seen: dict[str, str] = {}
        for draft in typed:
            assert draft.type is not None
            kind = draft.type.name
            if kind not in RISK_KINDS:
                continue
            if kind in seen:
                self.add(
                    ProblemCode.DUPLICATE_RISK_NODE,
                    f"Only one {kind} node is allowed; {draft.id} repeats {seen[kind]}.",
                    draft.id,
                )
            else:
                seen[kind] = draft.id
        sizing = seen.get("position_size")
        sizes_by_risk = sizing is not None and drafts[sizing].params.get("mode") == "risk"
        if sizes_by_risk and "stop_loss" not in seen:
            self.add(
                ProblemCode.RISK_SIZING_NEEDS_STOP,
                f"Node {sizing} (position_size) sizes by risk, which needs a stop_loss node.",
                sizing,
            )

    # -- result -----------------------------------------------------------------------------

    def _assemble(
        self,
        drafts: dict[str, _Draft],
        sources: dict[tuple[str, str], tuple[str, str]],
        order: list[str],
        tunables: dict[str, Tunable],
    ) -> ValidatedGraph:
        decls = []
        for node_id in order:
            draft = drafts[node_id]
            assert draft.type is not None
            wired = {
                spec.name: sources[(node_id, spec.name)]
                for spec in draft.type.inputs
                if (node_id, spec.name) in sources
            }
            decls.append(
                NodeDecl(
                    id=node_id,
                    type=draft.type,
                    params=draft.params,
                    bindings=draft.bindings,
                    sources=wired,
                    wiring=node_wiring(draft.type, wired),
                )
            )
        return ValidatedGraph(nodes=tuple(decls), tunables=dict(tunables))


def _topological_order(drafts: dict[str, _Draft], links: dict[str, set[str]]) -> list[str]:
    """Kahn's algorithm, ties broken by position in the document (deterministic).

    Nodes on or after a cycle are left out; the caller reports the cycle.
    """
    position = {node_id: index for index, node_id in enumerate(drafts)}
    incoming = dict.fromkeys(drafts, 0)
    for targets in links.values():
        for target in targets:
            incoming[target] += 1
    ready = [(position[n], n) for n, count in incoming.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for target in links[node_id]:
            incoming[target] -= 1
            if incoming[target] == 0:
                heapq.heappush(ready, (position[target], target))
    return order


class _Draft:
    """A node while it is being checked."""

    __slots__ = ("bindings", "id", "params", "type")

    def __init__(self, node_id: str, node_type: NodeType | None) -> None:
        self.id = node_id
        self.type = node_type
        self.params: dict[str, ParamValue] = {}
        self.bindings: dict[str, str] = {}


def coerce(spec: ParamSpec, value: ParamValue) -> ParamValue:
    """A param value in its canonical Python type (int params int, float params float)."""
    if spec.kind == "int":
        assert isinstance(value, int | float)
        return int(value)
    if spec.kind == "float":
        assert isinstance(value, int | float)
        return float(value)
    return value


def _strongly_connected(nodes: list[str], links: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (graphs are small but recursion depth must not matter)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index_of:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(links[root]))]
        index_of[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index_of:
                    index_of[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(links[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index_of[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_path(component: list[str], links: Mapping[str, set[str]]) -> list[str]:
    """One concrete cycle through the first node of a strongly connected component."""
    members = set(component)
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for nxt in sorted(links[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path))
            if nxt in members and nxt not in previous:
                previous[nxt] = node
                frontier.append(nxt)
    return [start]
