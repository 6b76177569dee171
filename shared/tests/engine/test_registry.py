from __future__ import annotations

import orjson
import pytest

from algotrade.engine import NODE_TYPES, get_node_type, node_types_catalog
from algotrade.engine.specs import RISK_KINDS, SIGNAL_KINDS

REQUIRED_TYPES = {
    "price", "constant",
    "sma", "ema", "wma", "dema", "tema", "rsi", "macd", "bbands", "atr", "stoch", "roc", "mom",
    "stddev", "cci", "willr", "adx", "obv", "vwap", "donchian", "highest", "lowest",
    "add", "sub", "mul", "div", "abs", "min", "max", "lag", "change", "pct_change",
    "gt", "gte", "lt", "lte", "cross_above", "cross_below", "between",
    "and", "or", "not", "xor",
    "enter_long", "exit_long", "enter_short", "exit_short",
    "stop_loss", "take_profit", "trailing_stop", "position_size",
}  # fmt: skip


def test_registry_has_every_required_node_type() -> None:
    assert set(NODE_TYPES) >= REQUIRED_TYPES
    assert len(NODE_TYPES) >= 35
    assert get_node_type("sma") is NODE_TYPES["sma"]
    assert get_node_type("nope") is None


def test_catalog_is_json_ready_and_describes_ports_params_and_warmup() -> None:
    catalog = node_types_catalog()
    assert orjson.loads(orjson.dumps(catalog)) == catalog
    assert [entry["type"] for entry in catalog] == list(NODE_TYPES)
    for entry in catalog:
        assert set(entry) >= {"type", "category", "doc", "inputs", "outputs", "params", "warmup"}
        assert entry["doc"] and "\n" not in entry["doc"]
        assert entry["outputs"], entry["type"]
        for port in entry["inputs"] + entry["outputs"]:
            assert port["type"] in ("float", "bool")
        for param in entry["params"]:
            assert param["type"] in ("int", "float", "choice")
            if param["type"] == "choice":
                assert param["default"] in param["choices"]
            elif param["default"] is not None:
                assert param["min"] <= param["default"] <= param["max"]


@pytest.mark.parametrize("node_type", list(NODE_TYPES.values()), ids=list(NODE_TYPES))
def test_default_params_give_a_non_negative_warmup(node_type: object) -> None:
    from algotrade.engine.specs import NodeType

    assert isinstance(node_type, NodeType)
    params = node_type.default_params()
    if node_type.name == "constant":
        params["value"] = 1.0
    assert node_type.lookback(params) >= 0
    assert len({p.type for p in node_type.outputs}) == 1, "one output type per node type"
    assert len(node_type.kernel_params(params)) <= 4


def test_sinks_are_signals_taking_bools_and_risk_nodes_producing_floats() -> None:
    for kind in SIGNAL_KINDS:
        node_type = NODE_TYPES[kind]
        assert node_type.is_sink
        assert [p.type for p in node_type.inputs] == ["bool"]
    for kind in RISK_KINDS:
        node_type = NODE_TYPES[kind]
        assert node_type.is_sink
        assert [p.type for p in node_type.outputs] == ["float"]


def test_shift_nodes_cannot_look_forward() -> None:
    for name in ("lag", "change", "pct_change"):
        (n,) = NODE_TYPES[name].params
        assert n.min == 1
