"""The vectorized executor: each plan step runs its kernel once over whole arrays.

Used for backtests and sweeps. Every output of every node is returned, keyed ``"node.port"``
(aliases of shared steps included); float series are NaN and bool series false before the
node's warm-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from algotrade.engine import kernels
from algotrade.engine.registry import NODE_TYPES
from algotrade.engine.specs import BAR_FIELDS, BAR_SOURCE_PREFIX

if TYPE_CHECKING:
    from algotrade.bars import Bars
    from algotrade.engine.compiler import Plan, Step

FloatArray = npt.NDArray[np.float64]

# Stands in for the kernel arguments a node does not use (never read or written).
_UNUSED: FloatArray = np.empty(0, dtype=np.float64)


class Workspace:
    """Output buffers reused across evaluations, e.g. the runs of a parameter sweep.

    Writing into fresh memory costs a page fault per 4 KiB, which on virtual machines can cost
    as much as the indicator arithmetic itself; a workspace keeps its arrays between calls.
    Arrays returned by an evaluation with a workspace are overwritten by the next evaluation
    with the same workspace: copy what must outlive it.
    """

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: dict[str, npt.NDArray[Any]] = {}

    def array(self, key: str, length: int, dtype: type[np.generic]) -> npt.NDArray[Any]:
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape[0] != length or buffer.dtype != dtype:
            buffer = np.empty(length, dtype=dtype)
            self._buffers[key] = buffer
        return buffer


def evaluate(
    plan: Plan, bars: Bars, workspace: Workspace | None = None
) -> dict[str, npt.NDArray[Any]]:
    """Run ``plan`` over ``bars``: float64 arrays for float ports, ``np.bool_`` for bool ports."""
    values = run_steps(plan.steps, bars, states=None, workspace=workspace)
    ports = {step.key: step.outputs for step in plan.steps}
    return {
        f"{node_id}.{port}": values[f"{step_key}.{port}"]
        for node_id, step_key in plan.aliases.items()
        for port in ports[step_key]
    }


def run_steps(
    steps: Sequence[Step],
    bars: Bars,
    states: Sequence[FloatArray] | None,
    workspace: Workspace | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Outputs of every step keyed ``"step.port"``; bool ports as ``np.bool_`` arrays.

    Kernels write booleans straight into bool arrays (numba compiles that variant once),
    which saves a conversion pass and seven eighths of the memory traffic.

    With ``states`` (one array per step, e.g. views into a stream's state), kernels start from
    and leave their state there; otherwise each starts fresh.
    """
    n = len(bars)
    columns = {f"{BAR_SOURCE_PREFIX}{name}": bars.field(name) for name in BAR_FIELDS}
    values: dict[str, npt.NDArray[Any]] = {}
    for index, step in enumerate(steps):
        kernel = NODE_TYPES[step.type].kernel
        inputs = [columns[s] if s in columns else values[s] for s in step.inputs]
        dtype: type[np.generic] = np.bool_ if step.output_type == "bool" else np.float64
        if workspace is None:
            outputs = [np.empty(n, dtype=dtype) for _ in step.outputs]
        else:
            outputs = [workspace.array(f"{step.key}.{port}", n, dtype) for port in step.outputs]
        if states is None:
            state = np.array(kernel.init_state(step.kernel_params), dtype=np.float64)
        else:
            state = states[index]
        params = np.array(step.kernel_params, dtype=np.float64)
        padded_in = inputs + [_UNUSED] * (kernels.MAX_INPUTS - len(inputs))
        padded_out = outputs + [_UNUSED] * (kernels.MAX_OUTPUTS - len(outputs))
        kernel.fn(*padded_in, *padded_out, state, params)
        if step.warmup:
            fill = False if step.output_type == "bool" else np.nan
            for array in outputs:
                array[: step.warmup] = fill
        for port, array in zip(step.outputs, outputs, strict=True):
            values[f"{step.key}.{port}"] = array
    return values
