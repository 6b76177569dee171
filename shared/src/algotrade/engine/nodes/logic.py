"""Boolean logic nodes."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import bool_out, flag
from algotrade.engine.specs import NodeType


def _logic(name: str, op: kernels.LogicOp, doc: str) -> NodeType:
    return NodeType(
        name=name,
        category="logic",
        doc=doc,
        kernel=kernels.k_logic,
        inputs=(flag("a", "first condition"), flag("b", "second condition")),
        outputs=(bool_out(),),
        kernel_params=lambda p: (float(op),),
    )


AND = _logic("and", kernels.LogicOp.AND, "a and b.")
OR = _logic("or", kernels.LogicOp.OR, "a or b.")
XOR = _logic("xor", kernels.LogicOp.XOR, "Exactly one of a and b.")
NOT = NodeType(
    name="not",
    category="logic",
    doc="The negation of the input.",
    kernel=kernels.k_logic,
    inputs=(flag(),),
    outputs=(bool_out(),),
    kernel_params=lambda p: (float(kernels.LogicOp.NOT),),
)

NODE_TYPES = (AND, OR, NOT, XOR)
