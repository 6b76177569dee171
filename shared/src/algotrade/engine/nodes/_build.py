"""Shorthands the node modules use to declare ports and parameters."""

from __future__ import annotations

from algotrade.engine.specs import BarField, InputSpec, OutputSpec, ParamSpec, ResolvedParams

MAX_PERIOD = 5000


def series(name: str = "in", doc: str = "input series") -> InputSpec:
    return InputSpec(name, "float", doc)


def bar_series(name: BarField) -> InputSpec:
    """An optional float input that reads the bar's own field when left unwired."""
    return InputSpec(name, "float", f"defaults to the bar's {name}", default_field=name)


def flag(name: str = "in", doc: str = "input condition") -> InputSpec:
    return InputSpec(name, "bool", doc)


def float_out(name: str = "out", doc: str = "") -> OutputSpec:
    return OutputSpec(name, "float", doc)


def bool_out(name: str = "out", doc: str = "") -> OutputSpec:
    return OutputSpec(name, "bool", doc)


def period(default: int, *, minimum: int = 2, name: str = "period", doc: str = "") -> ParamSpec:
    return ParamSpec(
        name, "int", doc or "window length in bars", default=default, min=minimum, max=MAX_PERIOD
    )


def integer(params: ResolvedParams, name: str) -> int:
    """A resolved int parameter (validation guarantees its type)."""
    value = params[name]
    assert isinstance(value, int)
    return value


def number(params: ResolvedParams, name: str) -> float:
    value = params[name]
    assert isinstance(value, int | float)
    return float(value)
