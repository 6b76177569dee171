from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algotrade.engine import MAX_EDGES, MAX_GRAPH_BYTES, MAX_NODES, Problem, ProblemCode
from algotrade.engine import validate_graph as validate

Graph = dict[str, Any]


def codes(problems: list[Problem]) -> list[str]:
    return [p.code.value for p in problems]


def base(make_graph: Callable[..., Graph]) -> Graph:
    return make_graph(
        [{"id": "s1", "type": "sma", "params": {"period": 10}}],
        [("t_close.out", "s1.in")],
    )


def test_a_valid_graph_has_no_problems(make_graph: Callable[..., Graph], crossover: Graph) -> None:
    assert validate(base(make_graph)) == []
    assert validate(crossover) == []
    assert validate(orjson.dumps(crossover)) == []
    assert validate(orjson.dumps(crossover).decode()) == []


def _set_param(graph: Graph, node_id: str, **params: Any) -> None:
    node = next(n for n in graph["nodes"] if n["id"] == node_id)
    node.setdefault("params", {}).update(params)


def _add(graph: Graph, node: dict[str, Any], *edges: tuple[str, str]) -> None:
    graph["nodes"].append(node)
    graph["edges"].extend({"from": a, "to": b} for a, b in edges)


# Each case: (mutation of the base graph, expected code, expected node_id, expected port).
CASES: list[tuple[str, Callable[[Graph], None], str, str | None, str | None]] = [
    (
        "unknown type",
        lambda g: _add(g, {"id": "x", "type": "smaa"}),
        "unknown_node_type",
        "x",
        None,
    ),
    (
        "unknown output port",
        lambda g: _add(g, {"id": "x", "type": "abs"}, ("t_close.value", "x.in")),
        "unknown_port",
        "t_close",
        "value",
    ),
    (
        "unknown input port",
        lambda g: _add(g, {"id": "x", "type": "abs"}, ("t_close.out", "x.input")),
        "unknown_port",
        "x",
        "input",
    ),
    (
        "missing input",
        lambda g: _add(g, {"id": "x", "type": "sub"}, ("t_close.out", "x.a")),
        "missing_input",
        "x",
        "b",
    ),
    (
        "bool into float",
        lambda g: _add(g, {"id": "x", "type": "abs"}, ("t_up.out", "x.in")),
        "type_mismatch",
        "x",
        "in",
    ),
    (
        "float into bool",
        lambda g: _add(g, {"id": "x", "type": "not"}, ("t_close.out", "x.in")),
        "type_mismatch",
        "x",
        "in",
    ),
    (
        "dangling edge",
        lambda g: _add(g, {"id": "x", "type": "abs"}, ("ghost.out", "x.in")),
        "dangling_edge",
        "ghost",
        None,
    ),
    (
        "duplicate id",
        lambda g: _add(g, {"id": "s1", "type": "ema"}),
        "duplicate_node_id",
        "s1",
        None,
    ),
    (
        "invalid id",
        lambda g: _add(g, {"id": "a.b", "type": "abs"}),
        "invalid_node_id",
        None,
        None,
    ),
    (
        "id with a trailing newline",
        lambda g: _add(g, {"id": "abc\n", "type": "abs"}),
        "invalid_node_id",
        None,
        None,
    ),
    (
        "param missing",
        lambda g: _add(g, {"id": "k", "type": "constant"}),
        "param_missing",
        "k",
        None,
    ),
    (
        "period too small",
        lambda g: _set_param(g, "s1", period=1),
        "param_out_of_range",
        "s1",
        None,
    ),
    (
        "period huge",
        lambda g: _set_param(g, "s1", period=10**400),
        "param_out_of_range",
        "s1",
        None,
    ),
    (
        "lag zero",
        lambda g: _add(g, {"id": "x", "type": "lag", "params": {"n": 0}}, ("t_close.out", "x.in")),
        "param_out_of_range",
        "x",
        None,
    ),
    (
        "negative lag",
        lambda g: _add(g, {"id": "x", "type": "lag", "params": {"n": -1}}, ("t_close.out", "x.in")),
        "param_out_of_range",
        "x",
        None,
    ),
    (
        "period as string",
        lambda g: _set_param(g, "s1", period="10"),
        "param_wrong_type",
        "s1",
        None,
    ),
    (
        "period fractional",
        lambda g: _set_param(g, "s1", period=10.5),
        "param_wrong_type",
        "s1",
        None,
    ),
    ("period bool", lambda g: _set_param(g, "s1", period=True), "param_wrong_type", "s1", None),
    ("period NaN", lambda g: _set_param(g, "s1", period=math.nan), "param_wrong_type", "s1", None),
    (
        "constant inf",
        lambda g: _add(g, {"id": "k", "type": "constant", "params": {"value": math.inf}}),
        "param_wrong_type",
        "k",
        None,
    ),
    (
        "bad choice",
        lambda g: _set_param(g, "t_close", field="typical"),
        "param_out_of_range",
        "t_close",
        None,
    ),
    ("unknown param", lambda g: _set_param(g, "s1", length=3), "unknown_param", "s1", None),
    (
        "unknown $param",
        lambda g: _set_param(g, "s1", period={"$param": "nope"}),
        "unknown_parameter_ref",
        "s1",
        None,
    ),
    (
        "$param on a choice",
        lambda g: (
            g.update(parameters={"f": {"default": 2, "min": 2, "max": 3}}),
            _set_param(g, "t_close", field={"$param": "f"}),
        ),
        "param_wrong_type",
        "t_close",
        None,
    ),
    (
        "malformed $param",
        lambda g: _set_param(g, "s1", period={"$param": "x", "extra": 1}),
        "param_wrong_type",
        "s1",
        None,
    ),
    (
        "$param default out of its range",
        lambda g: g.update(parameters={"p": {"default": 100, "min": 2, "max": 50}}),
        "parameter_default_out_of_range",
        None,
        None,
    ),
    (
        "$param min above max",
        lambda g: g.update(parameters={"p": {"default": 5, "min": 9, "max": 3}}),
        "invalid_parameter",
        None,
        None,
    ),
    (
        "$param default as string",
        lambda g: g.update(parameters={"p": {"default": "5", "min": 1, "max": 9}}),
        "invalid_parameter",
        None,
        None,
    ),
    (
        "$param max as bool",
        lambda g: g.update(parameters={"p": {"default": 1, "min": 0, "max": True}}),
        "invalid_parameter",
        None,
        None,
    ),
    (
        "$param without default",
        lambda g: g.update(parameters={"p": {"min": 1, "max": 3}}),
        "invalid_parameter",
        None,
        None,
    ),
    (
        "$param range wider than the param",
        lambda g: (
            g.update(parameters={"p": {"default": 5, "min": 1, "max": 50}}),
            _set_param(g, "s1", period={"$param": "p"}),
        ),
        "parameter_range_exceeds_param",
        "s1",
        None,
    ),
    (
        "fractional $param on an int param",
        lambda g: (
            g.update(parameters={"p": {"default": 5, "min": 2, "max": 50, "step": 0.5}}),
            _set_param(g, "s1", period={"$param": "p"}),
        ),
        "param_wrong_type",
        "s1",
        None,
    ),
    (
        "input fed twice",
        lambda g: g["edges"].append({"from": "t_avg.out", "to": "s1.in"}),
        "input_fed_twice",
        "s1",
        "in",
    ),
    (
        "edge ref without a port",
        lambda g: g["edges"].append({"from": "t_close", "to": "s1.in"}),
        "invalid_edge_ref",
        None,
        None,
    ),
    (
        "edge from a sink",
        lambda g: _add(g, {"id": "x", "type": "not"}, ("t_enter.signal", "x.in")),
        "sink_output_used",
        "t_enter",
        "signal",
    ),
    (
        "two stop losses",
        lambda g: (
            _add(g, {"id": "sl1", "type": "stop_loss"}),
            _add(g, {"id": "sl2", "type": "stop_loss"}),
        ),
        "duplicate_risk_node",
        "sl2",
        None,
    ),
    (
        "risk sizing without a stop",
        lambda g: _add(g, {"id": "ps", "type": "position_size", "params": {"mode": "risk"}}),
        "risk_sizing_needs_stop",
        "ps",
        None,
    ),
    (
        "unknown top-level field",
        lambda g: g.update(version=2),
        "unknown_field",
        None,
        None,
    ),
    (
        "unknown node field",
        lambda g: g["nodes"][0].update(label="x"),
        "unknown_field",
        "s1",
        None,
    ),
    (
        "edges not a list",
        lambda g: g.update(edges={"from": "a.b"}),
        "invalid_shape",
        None,
        None,
    ),
    (
        "meta not JSON",
        lambda g: g.update(meta={"when": object()}),
        "invalid_shape",
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "code", "node_id", "port"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_defect_is_reported_with_its_code_and_location(
    make_graph: Callable[..., Graph],
    mutate: Callable[[Graph], None],
    code: str,
    node_id: str | None,
    port: str | None,
) -> None:
    graph = base(make_graph)
    mutate(graph)
    problems = validate(graph)
    matching = [p for p in problems if p.code.value == code]
    assert matching, f"expected {code}, got {codes(problems)}"
    assert any(p.node_id == node_id and p.port == port for p in matching), matching
    assert all(p.message.endswith(".") and p.message[0].isupper() for p in problems)


def test_a_strategy_graph_model_is_accepted(crossover: Graph) -> None:
    from algotrade.engine import StrategyGraph

    model = StrategyGraph.model_validate(crossover)
    assert validate(model) == []
    assert model.to_json_dict()["edges"][0] == {"from": "close.out", "to": "fast.in"}


@pytest.mark.parametrize("value", ["14", True])
def test_the_graph_model_refuses_a_tunable_of_another_json_type(
    crossover: Graph, value: Any
) -> None:
    """`StrategyGraph` agrees with `validate_graph`: "14" and true are not numbers. (A node
    param may be a string in the generic model; `validate_graph` checks it against its type.)"""
    from pydantic import ValidationError

    from algotrade.engine import StrategyGraph

    tunable = {**crossover, "parameters": {"p": {"default": value, "min": 1, "max": 20}}}
    with pytest.raises(ValidationError, match=r"parameters\.p\.default"):
        StrategyGraph.model_validate(tunable)


def test_cycle_is_reported_naming_the_nodes_on_it(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph(
        [
            {"id": "a", "type": "add"},
            {"id": "b", "type": "abs"},
            {"id": "c", "type": "mul"},
            {"id": "d", "type": "abs"},
        ],
        [
            ("t_close.out", "a.a"),
            ("c.out", "a.b"),
            ("a.out", "b.in"),
            ("b.out", "c.a"),
            ("t_close.out", "c.b"),
            ("c.out", "d.in"),
        ],
    )
    problems = validate(graph)
    cycles = [p for p in problems if p.code is ProblemCode.CYCLE]
    assert len(cycles) == 1
    assert "a -> b -> c -> a" in cycles[0].message
    assert cycles[0].node_id == "a"
    assert "d" not in cycles[0].message.split(": ")[1]


def test_self_loop_is_a_cycle(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph([{"id": "a", "type": "add"}], [("t_close.out", "a.a"), ("a.out", "a.b")])
    assert "cycle" in codes(validate(graph))


def test_every_problem_is_reported_at_once(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph(
        [
            {"id": "x", "type": "nope"},
            {"id": "s", "type": "sma", "params": {"period": 0, "bogus": 1}},
            {"id": "n", "type": "not"},
            {"id": "k", "type": "constant"},
        ],
        [("t_close.out", "n.in"), ("ghost.out", "s.in")],
        parameters={"p": {"default": 1, "min": 2, "max": 3}},
    )
    found = set(codes(validate(graph)))
    assert {
        "unknown_node_type",
        "param_out_of_range",
        "unknown_param",
        "type_mismatch",
        "param_missing",
        "dangling_edge",
        "parameter_default_out_of_range",
    } <= found


def test_no_entry_signal_is_a_problem() -> None:
    graph = {
        "nodes": [{"id": "c", "type": "price"}, {"id": "x", "type": "exit_long"}],
        "edges": [],
    }
    found = codes(validate(graph))
    assert "no_entry_signal" in found
    assert "missing_input" in found


def test_size_limits_are_enforced(make_graph: Callable[..., Graph]) -> None:
    many_nodes = {"nodes": [{"id": f"n{i}", "type": "price"} for i in range(MAX_NODES + 1)]}
    assert codes(validate(many_nodes)) == ["too_many_nodes"]
    many_edges = base(make_graph)
    many_edges["edges"] = [{"from": "a.out", "to": "b.in"}] * (MAX_EDGES + 1)
    assert codes(validate(many_edges)) == ["too_many_edges"]
    padded = base(make_graph)
    padded["meta"] = {"notes": "x" * MAX_GRAPH_BYTES}
    assert codes(validate(padded)) == ["graph_too_large"]
    assert codes(validate(orjson.dumps(padded))) == ["graph_too_large"]
    params = base(make_graph)
    params["parameters"] = {f"p{i}": {"default": 1, "min": 0, "max": 2} for i in range(101)}
    assert codes(validate(params)) == ["too_many_parameters"]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        42,
        "not json",
        b"{",
        b"\xff\xfe",
        "\ud800",
        b"[" * 100_000,
        b'{"nodes": NaN}',
        b'{"nodes": [1e400]}',
        b'{"nodes": [{"id": 1e999999}]}',
        {"nodes": None},
        {"nodes": "abc"},
        {"nodes": [None, 1, "x", [], {"id": None}, {"id": "ok", "type": 5, "params": []}]},
        {"nodes": [{"id": "a", "type": "sma", "params": {"period": {"$param": {"x": 1}}}}]},
        {"nodes": [{"id": "a", "type": "sma", "params": {1: 2, None: 3}}]},
        {"nodes": [], "edges": [None, {"from": 1, "to": []}, {"from": "a.b"}], "parameters": []},
        {"nodes": [], "parameters": {"p": None, "q": {"default": "x", "min": [], "max": {}}}},
        {"nodes": [], "parameters": {"p": {"default": 10**400, "min": -(10**400), "max": 1}}},
        {"nodes": [], "parameters": {"p": {"default": math.nan, "min": 0, "max": 1}}},
        {3: 4, "nodes": []},
    ],
)
def test_hostile_input_becomes_problems_never_an_exception(raw: Any) -> None:
    problems = validate(raw)
    assert problems
    for problem in problems:
        assert isinstance(problem.code, ProblemCode)
        assert len(problem.message) < 600
    assert orjson.dumps([p.as_dict() for p in problems])


def test_deeply_nested_python_data_is_handled() -> None:
    deep: Any = {}
    for _ in range(50_000):
        deep = {"x": deep}
    problems = validate({"nodes": [], "meta": deep})
    assert "invalid_shape" in codes(problems) or "no_entry_signal" in codes(problems)
    nested_params: Any = [1]
    for _ in range(5000):
        nested_params = [nested_params]
    problems = validate(
        {"nodes": [{"id": "a", "type": "sma", "params": {"period": nested_params}}]}
    )
    assert "param_wrong_type" in codes(problems)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
node_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["a", "b", "c", "1x", ""]) | json_values,
        "type": st.sampled_from(["sma", "price", "gt", "enter_long", "macd", "lag"]) | json_values,
        "params": st.dictionaries(
            st.sampled_from(["period", "n", "field", "value", "fast", "x"]),
            json_values | st.fixed_dictionaries({"$param": st.sampled_from(["p", "q"])}),
            max_size=3,
        )
        | json_values,
    },
)
edge_like = st.fixed_dictionaries(
    {},
    optional={
        "from": st.sampled_from(["a.out", "b.out", "c.macd", "a.in", "zz.out"]) | json_values,
        "to": st.sampled_from(["a.in", "b.a", "c.b", "b.in", "a"]) | json_values,
    },
)
graph_like = st.fixed_dictionaries(
    {},
    optional={
        "nodes": st.lists(node_like, max_size=6) | json_values,
        "edges": st.lists(edge_like, max_size=6) | json_values,
        "parameters": st.dictionaries(
            st.sampled_from(["p", "q", "bad name"]),
            st.fixed_dictionaries(
                {}, optional={"default": json_values, "min": json_values, "max": json_values}
            )
            | json_values,
            max_size=2,
        )
        | json_values,
        "meta": json_values,
    },
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(graph_like | json_values)
def test_random_documents_never_raise(raw: Any) -> None:
    snapshot = copy.deepcopy(raw)
    problems = validate(raw)
    assert all(isinstance(p, Problem) for p in problems)
    assert raw == snapshot  # validation never mutates its input
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError:
        return
    assert all(isinstance(p, Problem) for p in validate(encoded))
