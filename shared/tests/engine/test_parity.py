"""The two executors agree, and no output reads a later bar.

Streaming (with a JSON checkpoint/restore midway) equals vectorized evaluation for every node
type and for random valid graphs; evaluating a prefix of the bars gives a prefix of the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algotrade.engine import NODE_TYPES, BarRejected, Bars, StateMismatch, compile_graph
from algotrade.engine.specs import NodeType, ParamSpec
from algotrade_testkit.random_graphs import random_bars, random_graphs

Outputs = list[dict[str, float | bool]]

FLOAT_SOURCES = ["src_close.out", "src_ema.out", "src_hl2.out", "src_sma.out"]
BOOL_SOURCES = ["src_up.out", "src_down.out"]
SOURCE_NODES = [
    {"id": "src_close", "type": "price"},
    {"id": "src_hl2", "type": "price", "params": {"field": "hl2"}},
    {"id": "src_high", "type": "price", "params": {"field": "high"}},
    {"id": "src_ema", "type": "ema", "params": {"period": 7}},
    {"id": "src_sma", "type": "sma", "params": {"period": 4}},
    {"id": "src_up", "type": "gt"},
    {"id": "src_down", "type": "lt"},
]
SOURCE_EDGES = [
    ("src_close.out", "src_ema.in"),
    ("src_high.out", "src_sma.in"),
    ("src_close.out", "src_up.a"),
    ("src_ema.out", "src_up.b"),
    ("src_hl2.out", "src_down.a"),
    ("src_sma.out", "src_down.b"),
]


def run_with_checkpoint(plan: Any, bars: Bars, at: int) -> Outputs:
    """Stream ``bars``, checkpoint after ``at`` bars through JSON, resume in a new stream."""
    rows = list(bars.rows())
    stream = plan.stream()
    outputs = [stream.update(row) for row in rows[:at]]
    saved = json.loads(json.dumps(stream.state(), allow_nan=False))
    resumed = plan.stream()
    resumed.restore(saved)
    outputs += [resumed.update(row) for row in rows[at:]]
    return outputs


def _param_variants(node_type: NodeType) -> list[dict[str, Any]]:
    def small(spec: ParamSpec) -> Any:
        if spec.kind == "int":
            assert spec.min is not None
            return int(spec.min) + 2
        if spec.kind == "float":
            return 1.7 if spec.name != "value" else -3.25
        return spec.default

    variants: list[dict[str, Any]] = [{p.name: small(p) for p in node_type.params}]
    for spec in node_type.params:
        if spec.kind == "choice":
            variants += [{**variants[0], spec.name: choice} for choice in spec.choices]
    return variants


def _wired_case(node_type: NodeType, params: dict[str, Any], wire_optional: bool) -> tuple:
    edges = []
    for index, spec in enumerate(node_type.inputs):
        if not spec.required and not wire_optional:
            continue
        pool = FLOAT_SOURCES if spec.type == "float" else BOOL_SOURCES
        edges.append((pool[index % len(pool)], f"node.{spec.name}"))
    return {"id": "node", "type": node_type.name, "params": params}, edges


def _cases() -> list[Any]:
    cases = []
    for node_type in NODE_TYPES.values():
        for v, params in enumerate(_param_variants(node_type)):
            for wire in (True, False) if any(not i.required for i in node_type.inputs) else (True,):
                node, edges = _wired_case(node_type, params, wire)
                label = f"{node_type.name}-{v}-{'wired' if wire else 'bar'}"
                cases.append(pytest.param(node, edges, id=label))
    return cases


@pytest.mark.parametrize(("node", "edges"), _cases())
def test_every_node_type_streams_exactly_as_it_evaluates(
    make_graph: Callable[..., dict[str, Any]],
    holey_bars: Bars,
    parity: Callable[..., None],
    node: dict[str, Any],
    edges: list[tuple[str, str]],
) -> None:
    extra = [{"id": "stop", "type": "stop_loss"}] if node["params"].get("mode") == "risk" else []
    graph = make_graph([*SOURCE_NODES, node, *extra], [*SOURCE_EDGES, *edges])
    plan = compile_graph(graph)
    vectorized = plan.evaluate(holey_bars)
    streamed = run_with_checkpoint(plan, holey_bars, at=len(holey_bars) // 2)
    parity(vectorized, streamed)
    assert any(not np.isnan(v).all() if v.dtype != np.bool_ else True for v in vectorized.values())


# --- random graphs (generators in algotrade_testkit.random_graphs) ---------------------------


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_graphs_stream_exactly_as_they_evaluate(
    data: st.DataObject, load_bars: Callable[[str], Bars], parity: Callable[..., None]
) -> None:
    graph = data.draw(random_graphs())
    bars = data.draw(random_bars(load_bars("btc-usd-4h")))
    plan = compile_graph(graph)
    checkpoint = data.draw(st.integers(0, len(bars)))
    parity(plan.evaluate(bars), run_with_checkpoint(plan, bars, checkpoint))


@settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(graph=random_graphs(), cut=st.integers(1, 299))
def test_no_output_depends_on_a_later_bar(
    load_bars: Callable[[str], Bars], graph: dict[str, Any], cut: int
) -> None:
    """Evaluating a prefix of the bars gives the same prefix of every output."""
    bars = load_bars("spy-1h").slice(5000, 5300)
    plan = compile_graph(graph)
    full = plan.evaluate(bars)
    prefix = plan.evaluate(bars.slice(0, cut))
    for key, values in prefix.items():
        np.testing.assert_array_equal(values, full[key][:cut], err_msg=key)


# --- stream behaviour ----------------------------------------------------------------------


def test_a_primed_stream_continues_like_one_that_saw_every_bar(
    crossover: dict[str, Any], spy_daily: Bars
) -> None:
    plan = compile_graph(crossover)
    history, recent = spy_daily.slice(0, 3000), spy_daily.slice(3000, 3200)
    full = plan.stream()
    for row in history.rows():
        full.update(row)
    primed = plan.stream(history)
    assert primed.bars_seen == full.bars_seen == 3000
    assert primed.state() == full.state()
    for row in recent.rows():
        assert primed.update(row) == full.update(row)


def test_stream_rejects_malformed_and_out_of_order_bars(crossover: dict[str, Any]) -> None:
    stream = compile_graph(crossover).stream()
    bar = {"ts": 1000, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0}
    stream.update(bar)
    for bad in (
        {**bar, "ts": 1000},
        {**bar, "ts": 999},
        {k: v for k, v in bar.items() if k != "close"},
        {**bar, "ts": 2000, "open": "x"},
        {**bar, "ts": "2000"},
    ):
        with pytest.raises(BarRejected):
            stream.update(bad)
    assert stream.bars_seen == 1
    stream.update({**bar, "ts": 2000})
    assert stream.bars_seen == 2


def test_restore_refuses_a_checkpoint_from_another_plan_or_damaged(
    crossover: dict[str, Any], spy_daily: Bars
) -> None:
    plan = compile_graph(crossover)
    stream = plan.stream(spy_daily.slice(0, 100))
    saved = stream.state()
    other = plan.with_params({"fast": 5}).stream()
    with pytest.raises(StateMismatch):
        other.restore(saved)
    damaged = json.loads(json.dumps(saved))
    damaged["nodes"]["slow"] = damaged["nodes"]["slow"][:-1]
    with pytest.raises(StateMismatch):
        plan.stream().restore(damaged)
    wrong_type = json.loads(json.dumps(saved))
    wrong_type["nodes"]["slow"][0] = "x"
    with pytest.raises(StateMismatch):
        plan.stream().restore(wrong_type)


def test_stream_state_stays_the_same_size_however_many_bars(
    make_graph: Callable[..., dict[str, Any]], spy_daily: Bars
) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "avg", "type": "sma", "params": {"period": 50}},
            {"id": "hi", "type": "highest", "params": {"period": 30}},
            {"id": "vw", "type": "vwap", "params": {"period": 40}},
        ],
        [("c.out", "avg.in"), ("c.out", "hi.in")],
    )
    plan = compile_graph(graph)
    short = plan.stream(spy_daily.slice(0, 60)).state()
    long = plan.stream(spy_daily).state()
    assert {k: len(v) for k, v in short["nodes"].items()} == {
        k: len(v) for k, v in long["nodes"].items()
    }
    # Rolling windows keep exactly their window of values next to a few scalars.
    assert len(long["nodes"]["avg"]) == 3 + 50
    assert len(long["nodes"]["hi"]) == 4 + 30
    assert len(long["nodes"]["vw"]) == 5 + 2 * 40
