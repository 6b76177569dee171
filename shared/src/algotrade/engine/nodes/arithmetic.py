"""Math nodes: element-wise arithmetic and bar shifts (never forward: n >= 1 bars back)."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import MAX_PERIOD, float_out, integer, series
from algotrade.engine.specs import NodeType, ParamSpec, ResolvedParams


def _binary(name: str, op: kernels.BinaryOp, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="math",
        doc=doc,
        kernel=kernels.k_binary,
        inputs=(series("a", "left operand"), series("b", "right operand")),
        outputs=(float_out(),),
        kernel_params=lambda p: (float(op),),
    )


def _bars_back(default: int = 1) -> ParamSpec:
    # The minimum of 1 is what makes look-ahead impossible: no node can read bar t+k.
    return ParamSpec("n", "int", "bars back (>= 1)", default=default, min=1, max=MAX_PERIOD)


def _n(p: ResolvedParams) -> int:
    return integer(p, "n")


ADD = _binary("add", kernels.BinaryOp.ADD, "a + b.")
SUB = _binary("sub", kernels.BinaryOp.SUB, "a - b.")
MUL = _binary("mul", kernels.BinaryOp.MUL, "a * b.")
DIV = _binary("div", kernels.BinaryOp.DIV, "a / b; NaN where b is 0 (never an error).")
MIN = _binary("min", kernels.BinaryOp.MIN, "The smaller of a and b (NaN if either is NaN).")
MAX = _binary("max", kernels.BinaryOp.MAX, "The larger of a and b (NaN if either is NaN).")

ABS = NodeType(
    name="abs",
    category="math",
    doc="Absolute value.",
    kernel=kernels.k_abs,
    inputs=(series(),),
    outputs=(float_out(),),
)

LAG = NodeType(
    name="lag",
    category="math",
    doc="The input n bars ago (n >= 1).",
    kernel=kernels.k_lag,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(_bars_back(),),
    lookback=_n,
    warmup_doc="n bars",
    kernel_params=lambda p: (float(_n(p)),),
)

CHANGE = NodeType(
    name="change",
    category="math",
    doc="Difference from n bars ago: x - x[n].",
    kernel=kernels.k_change,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(_bars_back(),),
    lookback=_n,
    warmup_doc="n bars",
    kernel_params=lambda p: (float(_n(p)), float(kernels.ChangeMode.DIFFERENCE)),
)

PCT_CHANGE = NodeType(
    name="pct_change",
    category="math",
    doc="Relative change from n bars ago as a fraction: x / x[n] - 1 (NaN if x[n] is 0).",
    kernel=kernels.k_change,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(_bars_back(),),
    lookback=_n,
    warmup_doc="n bars",
    kernel_params=lambda p: (float(_n(p)), float(kernels.ChangeMode.RELATIVE)),
)

NODE_TYPES = (ADD, SUB, MUL, DIV, ABS, MIN, MAX, LAG, CHANGE, PCT_CHANGE)
