from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from algotrade.engine import Bars, GraphInvalid, Plan, PlanDecodeError, compile_graph
from algotrade.errors import AlgoTradeError

Graph = dict[str, Any]


def test_plan_id_ignores_meta_key_order_whitespace_and_explicit_defaults(crossover: Graph) -> None:
    plan = compile_graph(crossover)
    assert len(plan.plan_id) == 64
    reordered = json.loads(json.dumps(crossover, sort_keys=True, indent=3))
    reordered["meta"] = {"name": "renamed", "author": "someone"}
    reordered["nodes"].reverse()
    reordered["edges"].reverse()
    explicit = json.loads(json.dumps(crossover))
    explicit["nodes"][0]["params"] = {"field": "close"}
    explicit["nodes"][7]["params"] = {"mode": "atr", "atr_multiple": 2.0, "atr_period": 14}
    floats = json.loads(json.dumps(crossover))
    floats["parameters"]["fast"] = {"default": 12.0, "min": 2.0, "max": 50.0, "step": 1.0}
    assert compile_graph(reordered).plan_id == plan.plan_id
    assert compile_graph(json.dumps(explicit, indent=2)).plan_id == plan.plan_id
    assert compile_graph(floats).plan_id == plan.plan_id


def test_plan_id_changes_with_anything_that_changes_results(crossover: Graph) -> None:
    plan = compile_graph(crossover)
    other_default = json.loads(json.dumps(crossover))
    other_default["parameters"]["fast"]["default"] = 13
    other_wiring = json.loads(json.dumps(crossover))
    other_wiring["edges"][0] = {"from": "close.out", "to": "slow.in"}
    other_wiring["edges"][1] = {"from": "close.out", "to": "fast.in"}
    other_literal = json.loads(json.dumps(crossover))
    other_literal["nodes"][7]["params"]["atr_multiple"] = 2.5
    ids = {compile_graph(g).plan_id for g in (other_default, other_literal)}
    assert plan.plan_id not in ids and len(ids) == 2
    assert compile_graph(other_wiring).plan_id == plan.plan_id  # same edge set, listed differently


def test_identical_subexpressions_are_computed_once_and_aliased(
    make_graph: Callable[..., Graph], spy_daily: Bars
) -> None:
    graph = make_graph(
        [
            {"id": "c1", "type": "price"},
            {"id": "c2", "type": "price", "params": {"field": "close"}},
            {"id": "sma_a", "type": "sma", "params": {"period": 20}},
            {"id": "sma_b", "type": "sma", "params": {"period": 20}},
            {"id": "sma_c", "type": "sma", "params": {"period": 21}},
            {"id": "diff", "type": "sub"},
        ],
        [
            ("c1.out", "sma_a.in"),
            ("c2.out", "sma_b.in"),
            ("c2.out", "sma_c.in"),
            ("sma_a.out", "diff.a"),
            ("sma_b.out", "diff.b"),
        ],
    )
    plan = compile_graph(graph)
    assert plan.aliases["sma_b"] == plan.aliases["sma_a"]
    assert plan.aliases["c2"] == plan.aliases["c1"] == plan.aliases["t_close"]
    assert plan.aliases["sma_c"] == "sma_c"
    assert sum(1 for s in plan.steps if s.type == "sma" and s.params["period"] == 20) == 1
    assert len(plan.steps) == plan.node_count - 3
    out = plan.evaluate(spy_daily)
    assert out["sma_a.out"] is out["sma_b.out"]
    np.testing.assert_array_equal(out["diff.out"][19:], 0.0)
    row = plan.stream().update(next(spy_daily.rows()))
    assert "sma_b.out" in row and "c2.out" in row


def test_warmup_is_the_longest_path_of_summed_lookbacks(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "s", "type": "sma", "params": {"period": 10}},  # 9
            {"id": "e", "type": "ema", "params": {"period": 5}},  # 4
            {"id": "l", "type": "lag", "params": {"n": 2}},  # 2
            {"id": "r", "type": "rsi", "params": {"period": 3}},  # 3
            {"id": "x", "type": "add"},
        ],
        [
            ("c.out", "s.in"),
            ("s.out", "e.in"),
            ("e.out", "l.in"),
            ("c.out", "r.in"),
            ("l.out", "x.a"),
            ("r.out", "x.b"),
        ],
    )
    plan = compile_graph(graph)
    assert plan.step_for("l").warmup == 15
    assert plan.step_for("r").warmup == 3
    assert plan.step_for("x").warmup == 15
    assert plan.warmup == 15


def test_outputs_are_nan_or_false_before_each_nodes_warmup(
    make_graph: Callable[..., Graph], spy_daily: Bars
) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "s", "type": "sma", "params": {"period": 30}},
            {"id": "above", "type": "gt"},
            {"id": "below", "type": "not"},
            {"id": "either", "type": "or"},
            {"id": "exit", "type": "exit_long"},
        ],
        [
            ("c.out", "s.in"),
            ("c.out", "above.a"),
            ("s.out", "above.b"),
            ("above.out", "below.in"),
            ("below.out", "either.a"),
            ("t_up.out", "either.b"),
            ("either.out", "exit.in"),
        ],
    )
    plan = compile_graph(graph)
    out = plan.evaluate(spy_daily)
    assert np.isnan(out["s.out"][:29]).all() and not np.isnan(out["s.out"][29:]).any()
    assert out["below.out"].dtype == np.bool_
    assert not out["below.out"][:29].any()  # `not` of a warming-up comparison stays false
    assert out["below.out"][29:].any()
    assert not out["exit.signal"][:29].any()
    assert plan.warmup == 29


def test_with_params_returns_a_new_plan_equal_to_compiling_the_new_defaults(
    crossover: Graph, spy_daily: Bars
) -> None:
    plan = compile_graph(crossover)
    tuned = plan.with_params({"fast": 5, "slow": 40})
    assert tuned.values == {"fast": 5, "slow": 40}
    assert plan.values == {"fast": 12, "slow": 26}
    assert tuned.plan_id != plan.plan_id
    assert tuned.warmup == 40  # slow EMA 39 + cross 1
    edited = json.loads(json.dumps(crossover))
    edited["parameters"]["fast"]["default"] = 5
    edited["parameters"]["slow"]["default"] = 40
    assert compile_graph(edited).plan_id == tuned.plan_id
    np.testing.assert_array_equal(
        tuned.evaluate(spy_daily)["fast.out"],
        compile_graph(edited).evaluate(spy_daily)["fast.out"],
    )
    same = tuned.with_params({"fast": 40})
    assert same.aliases["slow"] == same.aliases["fast"]  # now identical: shared


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"fast": 1}, "param_out_of_range"),
        ({"slow": 500}, "param_out_of_range"),
        ({"fast": 5.5}, "param_wrong_type"),
        ({"fast": "5"}, "param_wrong_type"),
        ({"fast": float("nan")}, "param_wrong_type"),
        ({"fast": True}, "param_wrong_type"),
        ({"nope": 3}, "unknown_parameter_ref"),
    ],
)
def test_with_params_checks_overrides_against_parameter_ranges(
    crossover: Graph, overrides: dict[str, Any], code: str
) -> None:
    plan = compile_graph(crossover)
    with pytest.raises(GraphInvalid) as caught:
        plan.with_params(overrides)
    assert [p.code.value for p in caught.value.problems] == [code]


def test_whole_float_overrides_are_accepted_for_integer_tunables(crossover: Graph) -> None:
    tuned = compile_graph(crossover).with_params({"fast": 8.0})
    assert tuned.values["fast"] == 8 and isinstance(tuned.values["fast"], int)
    assert tuned.step_for("fast").params["period"] == 8


def test_graph_invalid_is_an_algotrade_error_carrying_every_problem(
    make_graph: Callable[..., Graph],
) -> None:
    graph = make_graph([{"id": "x", "type": "nope"}, {"id": "y", "type": "sma"}], [])
    with pytest.raises(GraphInvalid) as caught:
        compile_graph(graph)
    error = caught.value
    assert isinstance(error, AlgoTradeError)
    assert error.status == 422 and error.code == "graph_invalid"
    assert error.errors is not None
    assert {e["code"] for e in error.errors} == {"unknown_node_type", "missing_input"}
    assert all(set(e) == {"node_id", "port", "code", "message"} for e in error.errors)


def test_plan_is_immutable(crossover: Graph) -> None:
    plan = compile_graph(crossover)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.warmup = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.aliases["fast"] = "slow"  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.steps[0].params["period"] = 3  # type: ignore[index]
    assert hash(plan) == hash(compile_graph(crossover))


def test_serialised_plan_loads_to_the_same_plan(crossover: Graph, spy_daily: Bars) -> None:
    plan = compile_graph(crossover)
    data = plan.to_bytes()
    loaded = Plan.from_bytes(data)
    assert loaded.plan_id == plan.plan_id
    assert loaded.steps == plan.steps
    assert loaded.summary() == plan.summary()
    assert dict(loaded.aliases) == dict(plan.aliases)
    a, b = plan.evaluate(spy_daily), loaded.evaluate(spy_daily)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.with_params({"fast": 7}).plan_id == plan.with_params({"fast": 7}).plan_id
    assert loaded.to_bytes() == data


@pytest.mark.parametrize(
    "data",
    [b"", b"null", b"{}", b'{"format": 999}', b"\x00\x01", b'{"format": 1, "steps": 3}'],
)
def test_garbage_is_not_loaded_as_a_plan(data: bytes) -> None:
    with pytest.raises(PlanDecodeError):
        Plan.from_bytes(data)


def test_a_damaged_graph_in_a_cached_plan_is_reported_when_needed(crossover: Graph) -> None:
    doc = orjson.loads(compile_graph(crossover).to_bytes())
    doc["nodes"][0][1] = "no_such_type"
    loaded = Plan.from_bytes(orjson.dumps(doc))  # steps are intact: still runnable
    with pytest.raises(PlanDecodeError):
        loaded.with_params({"fast": 5})


def test_summary_describes_plan_for_the_compile_api(crossover: Graph) -> None:
    summary = compile_graph(crossover).summary()
    assert orjson.loads(orjson.dumps(summary)) == summary
    assert summary["warmup"] == 26
    assert summary["node_count"] == 9
    assert summary["parameters"]["fast"] == {"default": 12, "min": 2, "max": 50, "step": 1}
    assert summary["signals"] == {"enter_long": ["buy.signal"], "exit_long": ["sell.signal"]}
    assert summary["risk"]["stop_loss"]["unit"] == "price"
    assert summary["risk"]["position_size"]["unit"] == "percent_of_equity_at_risk"


@pytest.mark.parametrize(
    ("node", "unit", "value"),
    [
        ({"type": "stop_loss", "params": {"percent": 1.5}}, "percent_of_price", 1.5),
        ({"type": "take_profit"}, "percent_of_price", 4.0),
        ({"type": "trailing_stop", "params": {"mode": "atr"}}, "price", None),
        ({"type": "position_size", "params": {"mode": "fixed", "quantity": 3}}, "quantity", 3.0),
        ({"type": "position_size"}, "percent_of_equity", 10.0),
    ],
)
def test_risk_bindings_say_what_a_consumer_reads(
    make_graph: Callable[..., Graph],
    spy_daily: Bars,
    node: dict[str, Any],
    unit: str,
    value: float | None,
) -> None:
    plan = compile_graph(make_graph([{"id": "risk", **node}], []))
    binding = plan.risk[node["type"]]
    assert binding.unit == unit and binding.node_id == "risk"
    series = plan.evaluate(spy_daily)[binding.output]
    if value is not None:
        np.testing.assert_array_equal(series, value)
    else:
        atr = compile_graph(make_graph([{"id": "atr", "type": "atr"}], [])).evaluate(spy_daily)[
            "atr.out"
        ]
        np.testing.assert_allclose(series, atr * 3.0, rtol=1e-12, equal_nan=True)


def test_a_workspace_reuses_buffers_and_gives_the_same_outputs(
    crossover: Graph, spy_daily: Bars
) -> None:
    from algotrade.engine import Workspace

    plan = compile_graph(crossover)
    workspace = Workspace()
    fresh = plan.evaluate(spy_daily)
    first = plan.evaluate(spy_daily, workspace)
    for key in fresh:
        np.testing.assert_array_equal(first[key], fresh[key])
    kept = first["fast.out"].copy()
    tuned = plan.with_params({"fast": 5})
    second = tuned.evaluate(spy_daily, workspace)
    assert second["fast.out"] is first["fast.out"]  # the same buffer, overwritten
    assert not np.array_equal(second["fast.out"], kept, equal_nan=True)
    np.testing.assert_array_equal(second["fast.out"], tuned.evaluate(spy_daily)["fast.out"])
