"""Compilation: a validated graph becomes an immutable, content-addressed `Plan`.

A plan lists the steps to run in topological order with fully resolved parameters, merges
identical sub-expressions (two ``sma(close, 20)`` nodes become one step; both node ids stay
available as output aliases), knows every node's warm-up and what the executors' consumers
read (signal sinks and risk nodes). Its id is the SHA-256 of the canonical resolved graph, so
identical strategies share one cached plan. ``with_params`` re-resolves the same structure
with other tunable values for sweeps, without validating the graph again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

from algotrade.engine.errors import GraphInvalid, PlanDecodeError
from algotrade.engine.problems import Problem, ProblemCode
from algotrade.engine.registry import NODE_TYPES
from algotrade.engine.specs import (
    BAR_SOURCE_PREFIX,
    RISK_KINDS,
    SIGNAL_KINDS,
    NodeType,
    ParamValue,
    PortType,
    no_implicit_inputs,
)
from algotrade.engine.streaming import Stream
from algotrade.engine.validation import (
    NodeDecl,
    Purpose,
    RawGraph,
    Tunable,
    ValidatedGraph,
    analyse,
    coerce,
    node_wiring,
)
from algotrade.engine.vectorized import Workspace, evaluate

if TYPE_CHECKING:
    from algotrade.bars import Bars

# Bump when serialised plans or kernel semantics change: cached plans of another version are
# refused by `Plan.from_bytes` (a cache miss), never silently reused.
PLAN_FORMAT: Final = 1

RISK_UNITS: Final[Mapping[str, Mapping[str, str]]] = {
    "stop_loss": {"percent": "percent_of_price", "atr": "price"},
    "take_profit": {"percent": "percent_of_price", "atr": "price"},
    "trailing_stop": {"percent": "percent_of_price", "atr": "price"},
    "position_size": {
        "fixed": "quantity",
        "percent_equity": "percent_of_equity",
        "risk": "percent_of_equity_at_risk",
    },
}


class Step(NamedTuple):
    """One kernel run: a canonical node with resolved params and resolved input sources.

    ``inputs`` holds one source per kernel input: ``"node.port"`` (a canonical step's output)
    or ``"@field"`` (a bar column). ``warmup`` is the first bar index at which the outputs are
    defined; before it floats are NaN and bools false.
    """

    key: str
    type: str
    params: Mapping[str, ParamValue]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_type: PortType
    lookback: int
    warmup: int
    kernel_params: tuple[float, ...]

    @property
    def node_type(self) -> NodeType:
        return NODE_TYPES[self.type]


@dataclass(frozen=True, slots=True)
class RiskBinding:
    """What a backtest/forward-test engine reads for one risk node.

    Read the float series ``output`` of `Plan.evaluate` (or of each streamed bar) and interpret
    it by ``unit``: ``percent_of_price`` (distance = entry price * value / 100), ``price``
    (distance in price units, from ATR mode), ``quantity`` (units per trade),
    ``percent_of_equity`` (position value = equity * value / 100) or
    ``percent_of_equity_at_risk`` (quantity = equity * value / 100 / stop distance).
    """

    kind: str
    node_id: str
    output: str
    mode: str
    unit: str
    params: Mapping[str, ParamValue]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "node_id": self.node_id,
            "output": self.output,
            "mode": self.mode,
            "unit": self.unit,
            "params": dict(self.params),
        }


class _Template:
    """The validated graph behind a plan, decoded from its serialised form on first use.

    A plan loaded from a cache needs only its steps to run; the graph it came from (needed for
    `Plan.with_params` and `Plan.output_types`) is decoded when first asked for.
    """

    __slots__ = ("_graph", "_rows", "_tunables")

    def __init__(
        self,
        graph: ValidatedGraph | None,
        rows: list[Any] | None = None,
        tunables: Mapping[str, Tunable] | None = None,
    ) -> None:
        self._graph = graph
        self._rows = rows
        self._tunables = tunables

    def get(self) -> ValidatedGraph:
        if self._graph is None:
            assert self._rows is not None and self._tunables is not None
            try:
                self._graph = _decode_graph(self._rows, self._tunables)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise PlanDecodeError(f"damaged graph in a serialised plan: {exc}") from exc
            self._rows = None
        return self._graph


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """A compiled strategy: immutable, identified by content (``plan_id``), cheap to re-tune."""

    plan_id: str
    steps: tuple[Step, ...]
    aliases: Mapping[str, str]
    warmup: int
    values: Mapping[str, int | float]
    tunables: Mapping[str, Tunable]
    signals: Mapping[str, tuple[str, ...]]
    risk: Mapping[str, RiskBinding]
    _template: _Template = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and other.plan_id == self.plan_id

    def __hash__(self) -> int:
        return hash(self.plan_id)

    @property
    def graph(self) -> ValidatedGraph:
        """The validated graph this plan was compiled from."""
        return self._template.get()

    @property
    def parameters(self) -> Mapping[str, Tunable]:
        """Tunables with ``default`` set to the value in effect in this plan."""
        return {
            name: tunable._replace(default=self.values[name])
            for name, tunable in self.tunables.items()
        }

    def output_types(self) -> dict[str, PortType]:
        """The type of every output key (``"node.port"``) the executors produce."""
        return {
            f"{decl.id}.{port.name}": port.type
            for decl in self.graph.nodes
            for port in decl.type.outputs
        }

    @property
    def node_count(self) -> int:
        return len(self.aliases)

    def step_for(self, node_id: str) -> Step:
        """The step that computes ``node_id`` (shared when it was a duplicate)."""
        key = self.aliases[node_id]
        return next(step for step in self.steps if step.key == key)

    def with_params(self, overrides: Mapping[str, Any]) -> Plan:
        """The same strategy with other tunable values (checked against their ranges only)."""
        problems: list[Problem] = []
        values = dict(self.values)
        for name, value in overrides.items():
            tunable = self.tunables.get(name) if isinstance(name, str) else None
            if tunable is None:
                problems.append(
                    Problem(
                        None,
                        None,
                        ProblemCode.UNKNOWN_PARAMETER_REF,
                        f"{name!r} is not a parameter of this strategy.",
                    )
                )
                continue
            checked = _check_override(tunable, value)
            if isinstance(checked, Problem):
                problems.append(checked)
            else:
                values[name] = checked
        if problems:
            raise GraphInvalid(problems)
        return build_plan(self.graph, values)

    def evaluate(
        self, bars: Bars, workspace: Workspace | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """Every output (``"node.port"``) over whole arrays; see `algotrade.engine.vectorized`.

        Pass a `Workspace` to reuse output buffers across calls (sweeps): the returned arrays
        are then overwritten by the next call with the same workspace.
        """
        return evaluate(self, bars, workspace)

    def stream(self, history: Bars | None = None) -> Stream:
        """A bar-by-bar executor, optionally primed with past bars (no outputs for those)."""
        return Stream(self, history)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description for the compile API."""
        return {
            "plan_id": self.plan_id,
            "warmup": self.warmup,
            "parameters": {
                name: {**tunable.as_dict(), "default": self.values[name]}
                for name, tunable in self.tunables.items()
            },
            "signals": {kind: list(keys) for kind, keys in self.signals.items()},
            "risk": {kind: binding.as_dict() for kind, binding in self.risk.items()},
            "node_count": self.node_count,
            "step_count": len(self.steps),
        }

    def to_bytes(self) -> bytes:
        """Serialise for a cache (orjson); `from_bytes` restores it without recompiling."""
        return orjson.dumps(
            {
                "format": PLAN_FORMAT,
                "plan_id": self.plan_id,
                "warmup": self.warmup,
                "values": dict(self.values),
                "tunables": {
                    name: [t.default, t.min, t.max, t.step, t.integer]
                    for name, t in self.tunables.items()
                },
                "steps": [
                    [s.key, s.type, dict(s.params), s.inputs, s.lookback, s.warmup, s.kernel_params]
                    for s in self.steps
                ],
                "aliases": dict(self.aliases),
                "signals": dict(self.signals),
                "risk": {
                    kind: [b.node_id, b.output, b.mode, b.unit] for kind, b in self.risk.items()
                },
                "nodes": [
                    [
                        d.id,
                        d.type.name,
                        dict(d.params),
                        dict(d.bindings),
                        {port: list(src) for port, src in d.sources.items()},
                    ]
                    for d in self.graph.nodes
                ],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Plan:
        """Load a plan written by `to_bytes` (raises `PlanDecodeError` on anything else)."""
        try:
            doc = orjson.loads(data)
            if doc["format"] != PLAN_FORMAT:
                raise PlanDecodeError(f"plan format {doc['format']!r} is not {PLAN_FORMAT}")
            return _decode(doc)
        except PlanDecodeError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise PlanDecodeError(f"not a serialised plan: {exc}") from exc


def compile_graph(graph: RawGraph | Any, *, purpose: Purpose = "strategy") -> Plan:
    """Validate and compile; raises `GraphInvalid` (with every problem) if the graph is bad.

    ``purpose="indicators"`` accepts a graph without an entry signal, for evaluation only
    (research and charts; see `algotrade.engine.evaluation`). Services that run strategies
    keep the default, so a backtest or forward test never gets a plan that cannot trade.
    """
    problems, checked = analyse(graph, purpose=purpose)
    if checked is None:
        raise GraphInvalid(problems)
    return build_plan(checked, {name: t.default for name, t in checked.tunables.items()})


def _check_override(tunable: Tunable, value: Any) -> int | float | Problem:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or (isinstance(value, float) and not np.isfinite(value)):
        return Problem(
            None,
            None,
            ProblemCode.PARAM_WRONG_TYPE,
            f"Parameter {tunable.name!r} must be a finite number, not {type(value).__name__}.",
        )
    if tunable.integer and not float(value).is_integer():
        return Problem(
            None,
            None,
            ProblemCode.PARAM_WRONG_TYPE,
            f"Parameter {tunable.name!r} feeds an integer param and must be a whole number.",
        )
    if not tunable.min <= value <= tunable.max:
        return Problem(
            None,
            None,
            ProblemCode.PARAM_OUT_OF_RANGE,
            f"Parameter {tunable.name!r} must be within [{tunable.min}, {tunable.max}].",
        )
    return _normalise(tunable, value)


def _normalise(tunable: Tunable, value: int | float) -> int | float:
    return int(value) if tunable.integer else float(value)


def build_plan(graph: ValidatedGraph, values: Mapping[str, int | float]) -> Plan:
    """Resolve ``graph`` with tunable ``values``: params, shared steps, warm-ups and the id."""
    values = {name: _normalise(graph.tunables[name], v) for name, v in values.items()}
    aliases: dict[str, str] = {}
    by_signature: dict[tuple[Any, ...], str] = {}
    steps: list[Step] = []
    warmups: dict[str, int] = {}
    resolved: dict[str, Mapping[str, ParamValue]] = {}
    for decl in graph.nodes:
        node_type = decl.type
        params = decl.params
        if decl.bindings:
            params = dict(params)
            for param, tunable in decl.bindings.items():
                params[param] = coerce(node_type.param_index[param], values[tunable])
        resolved[decl.id] = params
        inputs: list[str] = []
        upstream = 0
        for source, port in decl.wiring:
            if source is None:
                inputs.append(port)
            else:
                key = aliases[source]
                inputs.append(f"{key}.{port}")
                upstream = max(upstream, warmups[key])
        if node_type.implicit_inputs is not no_implicit_inputs:
            inputs.extend(BAR_SOURCE_PREFIX + f for f in node_type.implicit_inputs(params))
        signature = (node_type.name, tuple(sorted(params.items())), *inputs)
        existing = by_signature.get(signature)
        if existing is not None:
            aliases[decl.id] = existing
            continue
        lookback = node_type.lookback(params)
        step = Step(
            decl.id,
            node_type.name,
            MappingProxyType(params),
            tuple(inputs),
            node_type.output_names,
            node_type.output_type,
            lookback,
            upstream + lookback,
            node_type.kernel_params(params),
        )
        warmups[decl.id] = step.warmup
        by_signature[signature] = decl.id
        aliases[decl.id] = decl.id
        steps.append(step)
    plan_id = _plan_id(graph, values, resolved)
    return _finish(graph, values, tuple(steps), aliases, plan_id)


def _finish(
    graph: ValidatedGraph,
    values: Mapping[str, int | float],
    steps: tuple[Step, ...],
    aliases: Mapping[str, str],
    plan_id: str,
) -> Plan:
    signals: dict[str, list[str]] = {}
    risk: dict[str, RiskBinding] = {}
    step_params = {step.key: step.params for step in steps}
    for decl in graph.nodes:
        kind = decl.type.name
        if kind in SIGNAL_KINDS:
            signals.setdefault(kind, []).append(f"{decl.id}.signal")
        elif kind in RISK_KINDS:
            params = step_params[aliases[decl.id]]
            mode = str(params["mode"])
            risk[kind] = RiskBinding(
                kind=kind,
                node_id=decl.id,
                output=f"{decl.id}.{decl.type.outputs[0].name}",
                mode=mode,
                unit=RISK_UNITS[kind][mode],
                params=params,
            )
    return Plan(
        plan_id=plan_id,
        steps=steps,
        aliases=MappingProxyType(dict(aliases)),
        warmup=max((s.warmup for s in steps), default=0),
        values=MappingProxyType(dict(values)),
        tunables=MappingProxyType(dict(graph.tunables)),
        signals=MappingProxyType({kind: tuple(keys) for kind, keys in signals.items()}),
        risk=MappingProxyType(risk),
        _template=_Template(graph),
    )


def canonical_graph(
    graph: ValidatedGraph,
    values: Mapping[str, int | float],
    resolved: Mapping[str, Mapping[str, ParamValue]],
) -> dict[str, Any]:
    """The graph as hashed for the plan id: resolved params, sorted, without ``meta``."""
    return {
        "nodes": sorted(
            (
                {"id": d.id, "type": d.type.name, "params": dict(resolved[d.id])}
                for d in graph.nodes
            ),
            key=lambda node: str(node["id"]),
        ),
        "edges": sorted(
            [f"{src}.{out}", f"{d.id}.{port}"]
            for d in graph.nodes
            for port, (src, out) in d.sources.items()
        ),
        "parameters": {
            name: {
                "value": values[name],
                "min": _normalise(t, t.min),
                "max": _normalise(t, t.max),
                "step": None if t.step is None else _normalise(t, t.step),
            }
            for name, t in graph.tunables.items()
        },
        "bindings": sorted(
            [d.id, param, tunable] for d in graph.nodes for param, tunable in d.bindings.items()
        ),
    }


def _plan_id(
    graph: ValidatedGraph,
    values: Mapping[str, int | float],
    resolved: Mapping[str, Mapping[str, ParamValue]],
) -> str:
    canonical = orjson.dumps(canonical_graph(graph, values, resolved), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _decode(doc: dict[str, Any]) -> Plan:
    tunables = {
        name: Tunable(name, default, low, high, step, bool(integer))
        for name, (default, low, high, step, integer) in doc["tunables"].items()
    }
    steps = tuple(
        Step(
            key,
            type_name,
            MappingProxyType(params),
            tuple(inputs),
            NODE_TYPES[type_name].output_names,
            NODE_TYPES[type_name].output_type,
            lookback,
            warmup,
            tuple(kernel_params),
        )
        for key, type_name, params, inputs, lookback, warmup, kernel_params in doc["steps"]
    )
    step_params = {step.key: step.params for step in steps}
    aliases = doc["aliases"]
    risk = {
        kind: RiskBinding(kind, node_id, output, mode, unit, step_params[aliases[node_id]])
        for kind, (node_id, output, mode, unit) in doc["risk"].items()
    }
    return Plan(
        plan_id=doc["plan_id"],
        steps=steps,
        aliases=MappingProxyType(aliases),
        warmup=doc["warmup"],
        values=MappingProxyType(doc["values"]),
        tunables=MappingProxyType(tunables),
        signals=MappingProxyType({kind: tuple(keys) for kind, keys in doc["signals"].items()}),
        risk=MappingProxyType(risk),
        _template=_Template(None, doc["nodes"], tunables),
    )


def _decode_graph(rows: list[Any], tunables: Mapping[str, Tunable]) -> ValidatedGraph:
    nodes = []
    for node_id, type_name, params, bindings, sources in rows:
        node_type = NODE_TYPES[type_name]
        wired = {port: (src[0], src[1]) for port, src in sources.items()}
        nodes.append(
            NodeDecl(node_id, node_type, params, bindings, wired, node_wiring(node_type, wired))
        )
    return ValidatedGraph(nodes=tuple(nodes), tunables=dict(tunables))
