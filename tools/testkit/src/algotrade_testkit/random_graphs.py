"""Hypothesis strategies for random valid strategy graphs and real bars with holes.

The streaming-vs-vectorized parity tests and the live-vs-backtest parity tests draw from the
same generators, so both properties cover the same space of graphs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from algotrade.engine import NODE_TYPES, Bars
from algotrade.engine.specs import ParamSpec

SIGNALS = ("enter_long", "exit_long", "enter_short", "exit_short")
BUILDING_BLOCKS = [t for t in NODE_TYPES.values() if not t.is_sink]


@st.composite
def param_values(draw: st.DrawFn, spec: ParamSpec) -> Any:
    if spec.kind == "choice":
        return draw(st.sampled_from(spec.choices))
    assert spec.min is not None and spec.max is not None
    if spec.kind == "int":
        return draw(st.integers(int(spec.min), min(int(spec.max), int(spec.min) + 12)))
    high = min(spec.max, spec.min + 10) if spec.name != "value" else 100.0
    return draw(st.floats(spec.min, high, allow_nan=False, allow_infinity=False))


@st.composite
def random_graphs(draw: st.DrawFn) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "price"}]
    edges: list[dict[str, str]] = []
    outputs: dict[str, list[str]] = {"float": ["n0.out"], "bool": []}
    for index in range(1, draw(st.integers(3, 18)) + 1):
        node_type = draw(st.sampled_from(BUILDING_BLOCKS))
        needs_bool = any(i.type == "bool" for i in node_type.inputs)
        if needs_bool and not outputs["bool"]:
            node_type = NODE_TYPES["gt"]
        node_id = f"n{index}"
        params = {
            p.name: draw(param_values(p))
            for p in node_type.params
            if p.required or draw(st.booleans())  # otherwise the default applies
        }
        nodes.append({"id": node_id, "type": node_type.name, "params": params})
        for spec in node_type.inputs:
            if spec.required or draw(st.booleans()):
                source = draw(st.sampled_from(outputs[spec.type]))
                edges.append({"from": source, "to": f"{node_id}.{spec.name}"})
        for port in node_type.outputs:
            outputs[port.type].append(f"{node_id}.{port.name}")
    if not outputs["bool"]:
        nodes.append({"id": "cmp", "type": "gt"})
        edges += [
            {"from": "n0.out", "to": "cmp.a"},
            {"from": outputs["float"][-1], "to": "cmp.b"},
        ]
        outputs["bool"].append("cmp.out")
    kinds = ["enter_long", *draw(st.lists(st.sampled_from(SIGNALS), max_size=3))]
    for index, kind in enumerate(kinds):
        nodes.append({"id": f"sig{index}", "type": kind})
        edges.append({"from": draw(st.sampled_from(outputs["bool"])), "to": f"sig{index}.in"})
    for kind in draw(st.sets(st.sampled_from(["stop_loss", "take_profit", "trailing_stop"]))):
        risk = NODE_TYPES[kind]
        nodes.append(
            {
                "id": kind,
                "type": kind,
                "params": {p.name: draw(param_values(p)) for p in risk.params},
            }
        )
    return {"nodes": nodes, "edges": edges}


@st.composite
def random_bars(draw: st.DrawFn, base: Bars) -> Bars:
    length = draw(st.integers(40, 400))
    start = draw(st.integers(0, len(base) - length))
    window = base.slice(start, start + length)
    columns = {
        name: window.field(name).copy() for name in ("open", "high", "low", "close", "volume")
    }
    holes = draw(
        st.lists(st.tuples(st.integers(0, length - 1), st.sampled_from(list(columns))), max_size=6)
    )
    for index, name in holes:
        columns[name][index] = np.nan
    for index in draw(st.lists(st.integers(0, length - 1), max_size=4)):
        columns["volume"][index] = 0.0
    return Bars.from_arrays(ts=window.ts, **columns)
