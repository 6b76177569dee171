"""The streaming executor: one bar at a time, O(1) state per node, checkpointable.

Used for forward tests. `Stream.update` feeds one bar through every step with a single call
into the compiled `kernels.run_bar` interpreter, which runs the very kernels the vectorized
executor runs, so both produce the same values. `Stream.state` returns a JSON-serialisable
checkpoint and `Stream.restore` resumes from one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from algotrade.engine import kernels
from algotrade.engine.errors import BarRejected, StateMismatch
from algotrade.engine.registry import NODE_TYPES
from algotrade.engine.specs import BAR_FIELDS, BAR_SOURCE_PREFIX
from algotrade.engine.vectorized import run_steps

if TYPE_CHECKING:
    from algotrade.bars import Bars
    from algotrade.engine.compiler import Plan

FloatArray = npt.NDArray[np.float64]
STATE_FORMAT: Final = 1
_SCRATCH_SLOT: Final = len(BAR_FIELDS)  # where unused kernel arguments point
_FIRST_OUTPUT_SLOT: Final = _SCRATCH_SLOT + 1


def _encode(value: float) -> float | str | None:
    """A float as JSON can carry it: NaN becomes null, infinities strings."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _decode(value: Any) -> float:
    if value is None:
        return math.nan
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateMismatch(f"state value {value!r} is not a number")
    return float(value)


class Stream:
    """Bar-by-bar execution of a plan (see the module docstring)."""

    __slots__ = (
        "_bars_seen",
        "_bool_items",
        "_float_items",
        "_last_ts",
        "_layout",
        "_params",
        "_plan",
        "_program",
        "_state",
        "_values",
    )

    def __init__(self, plan: Plan, history: Bars | None = None) -> None:
        self._plan = plan
        slots: dict[str, int] = {
            f"{BAR_SOURCE_PREFIX}{name}": i for i, name in enumerate(BAR_FIELDS)
        }
        next_slot = _FIRST_OUTPUT_SLOT
        rows: list[list[int]] = []
        params: list[float] = []
        state: list[float] = []
        layout: list[tuple[str, int, int]] = []
        for step in plan.steps:
            kernel = NODE_TYPES[step.type].kernel
            out_slots = list(range(next_slot, next_slot + len(step.outputs)))
            for port, slot in zip(step.outputs, out_slots, strict=True):
                slots[f"{step.key}.{port}"] = slot
            next_slot += len(step.outputs)
            in_slots = [slots[source] for source in step.inputs]
            initial = kernel.init_state(step.kernel_params)
            layout.append((step.key, len(state), len(initial)))
            row = [0] * kernels.PROGRAM_COLUMNS
            row[kernels.COL_OP] = kernel.op
            padded_in = in_slots + [_SCRATCH_SLOT] * (kernels.MAX_INPUTS - len(in_slots))
            padded_out = out_slots + [_SCRATCH_SLOT] * (kernels.MAX_OUTPUTS - len(out_slots))
            row[kernels.COL_IN0 : kernels.COL_IN3 + 1] = padded_in
            row[kernels.COL_OUT0 : kernels.COL_OUT2 + 1] = padded_out
            row[kernels.COL_N_OUT] = len(out_slots)
            row[kernels.COL_STATE_OFF] = len(state)
            row[kernels.COL_STATE_LEN] = len(initial)
            row[kernels.COL_PARAM_OFF] = len(params)
            row[kernels.COL_PARAM_LEN] = len(step.kernel_params)
            row[kernels.COL_WARMUP] = step.warmup
            row[kernels.COL_BOOL] = 1 if step.output_type == "bool" else 0
            rows.append(row)
            state.extend(initial)
            params.extend(step.kernel_params)
        self._program = np.array(rows, dtype=np.int64).reshape(-1, kernels.PROGRAM_COLUMNS)
        self._params = np.array(params, dtype=np.float64)
        self._state = np.array(state, dtype=np.float64)
        self._values = np.full(next_slot, np.nan, dtype=np.float64)
        self._layout = tuple(layout)
        float_items: list[tuple[str, int]] = []
        bool_items: list[tuple[str, int]] = []
        steps = {step.key: step for step in plan.steps}
        for node_id, step_key in plan.aliases.items():
            step = steps[step_key]
            for port in step.outputs:
                item = (f"{node_id}.{port}", slots[f"{step_key}.{port}"])
                (bool_items if step.output_type == "bool" else float_items).append(item)
        self._float_items = tuple(float_items)
        self._bool_items = tuple(bool_items)
        self._bars_seen = 0
        self._last_ts: int | None = None
        if history is not None and len(history):
            self._prime(history)

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def bars_seen(self) -> int:
        return self._bars_seen

    def update(self, bar: Mapping[str, Any]) -> dict[str, float | bool]:
        """Feed one bar (open/high/low/close/volume, optional ts); return every output."""
        try:
            o = float(bar["open"])
            h = float(bar["high"])
            lo = float(bar["low"])
            c = float(bar["close"])
            v = float(bar["volume"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BarRejected(f"a bar needs numeric open, high, low, close, volume: {exc}") from exc
        ts = bar.get("ts")
        if ts is not None:
            if isinstance(ts, bool) or not isinstance(ts, int):
                raise BarRejected("ts must be an integer (epoch milliseconds)")
            if self._last_ts is not None and ts <= self._last_ts:
                raise BarRejected(f"bar ts {ts} is not after the last bar ({self._last_ts})")
        values = self._values
        values[0] = o
        values[1] = h
        values[2] = lo
        values[3] = c
        values[4] = v
        kernels.run_bar(self._program, self._params, self._state, values, self._bars_seen)
        self._bars_seen += 1
        if ts is not None:
            self._last_ts = ts
        current = values.tolist()
        out: dict[str, float | bool] = {key: current[slot] for key, slot in self._float_items}
        for key, slot in self._bool_items:
            out[key] = current[slot] != 0.0
        return out

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable checkpoint of everything the stream remembers."""
        flat = self._state.tolist()
        return {
            "format": STATE_FORMAT,
            "plan_id": self._plan.plan_id,
            "bars_seen": self._bars_seen,
            "last_ts": self._last_ts,
            "nodes": {
                key: [_encode(x) for x in flat[start : start + size]]
                for key, start, size in self._layout
            },
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from a checkpoint taken by `state` on a stream of the same plan."""
        if state.get("format") != STATE_FORMAT:
            raise StateMismatch(f"unknown stream state format {state.get('format')!r}")
        if state.get("plan_id") != self._plan.plan_id:
            raise StateMismatch("the checkpoint belongs to another plan")
        bars_seen = state.get("bars_seen")
        last_ts = state.get("last_ts")
        nodes = state.get("nodes")
        if isinstance(bars_seen, bool) or not isinstance(bars_seen, int) or bars_seen < 0:
            raise StateMismatch("bars_seen must be a non-negative integer")
        if last_ts is not None and (isinstance(last_ts, bool) or not isinstance(last_ts, int)):
            raise StateMismatch("last_ts must be an integer or null")
        if not isinstance(nodes, Mapping):
            raise StateMismatch("nodes must be an object")
        restored = np.empty_like(self._state)
        for key, start, size in self._layout:
            saved = nodes.get(key)
            if not isinstance(saved, list) or len(saved) != size:
                raise StateMismatch(f"state for step {key!r} is missing or has the wrong size")
            restored[start : start + size] = [_decode(x) for x in saved]
        self._state[:] = restored
        self._bars_seen = bars_seen
        self._last_ts = last_ts

    def _prime(self, history: Bars) -> None:
        """Advance the state over past bars with the vectorized kernels (fast warm start)."""
        views = [self._state[start : start + size] for _, start, size in self._layout]
        run_steps(self._plan.steps, history, states=views)
        self._bars_seen = len(history)
        self._last_ts = int(history.ts[-1])
