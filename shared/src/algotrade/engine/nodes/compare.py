"""Comparison nodes: float series in, bool series out (any comparison with NaN is false)."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import bool_out, series
from algotrade.engine.specs import NodeType


def _compare(name: str, op: kernels.CompareOp, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="compare",
        doc=doc,
        kernel=kernels.k_compare,
        inputs=(series("a", "left operand"), series("b", "right operand")),
        outputs=(bool_out(),),
        kernel_params=lambda p: (float(op),),
    )


def _cross(name: str, direction: kernels.CrossDirection, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="compare",
        doc=doc,
        kernel=kernels.k_cross,
        inputs=(series("a", "the moving line"), series("b", "the line crossed")),
        outputs=(bool_out(),),
        lookback=lambda p: 1,
        warmup_doc="1 bar",
        kernel_params=lambda p: (float(direction),),
    )


GT = _compare("gt", kernels.CompareOp.GT, "a > b.")
GTE = _compare("gte", kernels.CompareOp.GTE, "a >= b.")
LT = _compare("lt", kernels.CompareOp.LT, "a < b.")
LTE = _compare("lte", kernels.CompareOp.LTE, "a <= b.")
CROSS_ABOVE = _cross(
    "cross_above",
    kernels.CrossDirection.ABOVE,
    "True on the bar where a goes above b (a > b now, a <= b one bar ago).",
)
CROSS_BELOW = _cross(
    "cross_below",
    kernels.CrossDirection.BELOW,
    "True on the bar where a goes below b (a < b now, a >= b one bar ago).",
)
BETWEEN = NodeType(
    name="between",
    category="compare",
    doc="lower <= in <= upper (inclusive).",
    kernel=kernels.k_between,
    inputs=(series(), series("lower", "lower bound"), series("upper", "upper bound")),
    outputs=(bool_out(),),
)

NODE_TYPES = (GT, GTE, LT, LTE, CROSS_ABOVE, CROSS_BELOW, BETWEEN)
