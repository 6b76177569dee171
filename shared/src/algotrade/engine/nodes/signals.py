"""Signal sinks: where a strategy says enter or exit. A signal on bar t's close fills at t+1."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import bool_out, flag
from algotrade.engine.specs import SIGNAL_KINDS, NodeType

_DOCS = {
    "enter_long": "Open (or add to) a long position when the input is true.",
    "exit_long": "Close the long position when the input is true.",
    "enter_short": "Open (or add to) a short position when the input is true.",
    "exit_short": "Close the short position when the input is true.",
}


def _signal(kind: str) -> NodeType:
    return NodeType(
        name=kind,
        category="signal",
        doc=_DOCS[kind],
        kernel=kernels.k_pass,
        inputs=(flag("in", "the condition"),),
        outputs=(bool_out("signal", "the condition, false during warm-up"),),
    )


NODE_TYPES = tuple(_signal(kind) for kind in SIGNAL_KINDS)
