"""Comparison nodes: float series in, bool series out (any comparison with NaN is false)."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import bool_out, series
from algotrade.engine.specs import NodeType


def _compare(name: str, op: int, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="compare",
        doc=doc,
        kernel=kernels.COMPARE,
        inputs=(series("a", "left operand"), series("b", "right operand")),
        outputs=(bool_out(),),
        kernel_params=lambda p: (float(op),),
    )


def _cross(name: str, below: bool, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="compare",
        doc=doc,
        kernel=kernels.CROSS,
        inputs=(series("a", "the moving line"), series("b", "the line crossed")),
        outputs=(bool_out(),),
        lookback=lambda p: 1,
        warmup_doc="1 bar",
        kernel_params=lambda p: (1.0 if below else 0.0,),
    )


GT = _compare("gt", kernels.COMPARE_GT, "a > b.")
GTE = _compare("gte", kernels.COMPARE_GTE, "a >= b.")
LT = _compare("lt", kernels.COMPARE_LT, "a < b.")
LTE = _compare("lte", kernels.COMPARE_LTE, "a <= b.")
CROSS_ABOVE = _cross(
    "cross_above", False, "True on the bar where a goes above b (a > b now, a <= b one bar ago)."
)
CROSS_BELOW = _cross(
    "cross_below", True, "True on the bar where a goes below b (a < b now, a >= b one bar ago)."
)
BETWEEN = NodeType(
    name="between",
    category="compare",
    doc="lower <= in <= upper (inclusive).",
    kernel=kernels.BETWEEN,
    inputs=(series(), series("lower", "lower bound"), series("upper", "upper bound")),
    outputs=(bool_out(),),
)

NODE_TYPES = (GT, GTE, LT, LTE, CROSS_ABOVE, CROSS_BELOW, BETWEEN)
