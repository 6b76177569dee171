"""What a node type declares: typed ports, a parameter schema, its warm-up and its kernel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from algotrade.engine.kernels import Kernel

PortType = Literal["float", "bool"]
ParamKind = Literal["int", "float", "choice"]
Category = Literal["source", "indicator", "math", "compare", "logic", "signal", "risk"]
BarField = Literal["open", "high", "low", "close", "volume"]
ParamValue = int | float | str
ResolvedParams = Mapping[str, ParamValue]

BAR_FIELDS: tuple[BarField, ...] = ("open", "high", "low", "close", "volume")
# A step input naming a bar column rather than another step's output, e.g. "@close".
BAR_SOURCE_PREFIX = "@"

SIGNAL_KINDS = ("enter_long", "exit_long", "enter_short", "exit_short")
ENTRY_SIGNAL_KINDS = ("enter_long", "enter_short")
RISK_KINDS = ("stop_loss", "take_profit", "trailing_stop", "position_size")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """An input port. With ``default_field`` set it is optional and reads that bar field."""

    name: str
    type: PortType
    doc: str = ""
    default_field: BarField | None = None

    @property
    def required(self) -> bool:
        return self.default_field is None


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    type: PortType
    doc: str = ""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A node parameter. ``default is None`` means the author must give it."""

    name: str
    kind: ParamKind
    doc: str
    default: ParamValue | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def tunable(self) -> bool:
        """Numeric parameters may reference a graph-level tunable (``{"$param": name}``)."""
        return self.kind != "choice"

    def as_catalog(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.kind, "doc": self.doc}
        entry["required"] = self.required
        entry["default"] = self.default
        if self.kind != "choice":
            entry["min"] = self.min
            entry["max"] = self.max
        else:
            entry["choices"] = list(self.choices)
        return entry


def _no_lookback(params: ResolvedParams) -> int:
    return 0


def no_implicit_inputs(params: ResolvedParams) -> tuple[BarField, ...]:
    return ()


def _no_kernel_params(params: ResolvedParams) -> tuple[float, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class NodeType:
    """A node type: its contract (ports, params, warm-up) and how it runs (kernel)."""

    name: str
    category: Category
    doc: str
    kernel: Kernel
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    lookback: Callable[[ResolvedParams], int] = _no_lookback
    warmup_doc: str = "0 bars"
    # Numeric parameters in the order the kernel reads them from its ``params`` array.
    kernel_params: Callable[[ResolvedParams], tuple[float, ...]] = _no_kernel_params
    # Bar fields read without an edge (the `price` source), appended after the inputs.
    implicit_inputs: Callable[[ResolvedParams], tuple[BarField, ...]] = no_implicit_inputs
    param_index: Mapping[str, ParamSpec] = field(init=False, repr=False, compare=False)
    input_index: Mapping[str, InputSpec] = field(init=False, repr=False, compare=False)
    output_index: Mapping[str, OutputSpec] = field(init=False, repr=False, compare=False)
    output_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_names", tuple(p.name for p in self.outputs))
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})
        object.__setattr__(self, "input_index", {p.name: p for p in self.inputs})
        object.__setattr__(self, "output_index", {p.name: p for p in self.outputs})

    @property
    def is_signal(self) -> bool:
        return self.category == "signal"

    @property
    def is_risk(self) -> bool:
        return self.category == "risk"

    @property
    def is_sink(self) -> bool:
        """Sinks end the graph: their outputs are read by executors, never wired onward."""
        return self.category in ("signal", "risk")

    @property
    def output_type(self) -> PortType:
        """All outputs of one node type share a type (the executors rely on it)."""
        return self.outputs[0].type

    def default_params(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.params if p.default is not None}

    def as_catalog(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "category": self.category,
            "doc": self.doc,
            "inputs": [
                {
                    "name": p.name,
                    "type": p.type,
                    "required": p.required,
                    "default_source": p.default_field,
                    "doc": p.doc,
                }
                for p in self.inputs
            ],
            "outputs": [{"name": p.name, "type": p.type, "doc": p.doc} for p in self.outputs],
            "params": [p.as_catalog() for p in self.params],
            "warmup": self.warmup_doc,
            "sink": self.is_sink,
        }
