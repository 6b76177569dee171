"""Source nodes: bar prices and constants."""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import float_out, number
from algotrade.engine.specs import BarField, NodeType, ParamSpec, ResolvedParams

PRICE_FIELDS: dict[str, tuple[BarField, ...]] = {
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
    "hl2": ("high", "low"),
    "hlc3": ("high", "low", "close"),
    "ohlc4": ("open", "high", "low", "close"),
}


def _price_fields(params: ResolvedParams) -> tuple[BarField, ...]:
    return PRICE_FIELDS[str(params["field"])]


PRICE = NodeType(
    name="price",
    category="source",
    doc="A bar field (open/high/low/close/volume) or a typical price (hl2, hlc3, ohlc4).",
    kernel=kernels.k_price,
    outputs=(float_out("out", "the chosen price of each bar"),),
    params=(
        ParamSpec(
            "field", "choice", "which price to read", default="close", choices=tuple(PRICE_FIELDS)
        ),
    ),
    implicit_inputs=_price_fields,
    kernel_params=lambda p: (float(len(_price_fields(p))),),
)

CONSTANT = NodeType(
    name="constant",
    category="source",
    doc="The same number on every bar, e.g. a threshold to compare against.",
    kernel=kernels.k_constant,
    outputs=(float_out("out", "the value on every bar"),),
    params=(ParamSpec("value", "float", "the constant", min=-1e12, max=1e12),),
    kernel_params=lambda p: (number(p, "value"),),
)

NODE_TYPES = (PRICE, CONSTANT)
