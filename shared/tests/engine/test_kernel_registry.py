"""The kernel registry is complete and each kernel keeps to the state layout it declares.

Every node type runs a registered kernel, every `Op` has exactly one kernel, `run_bar`'s
generated dispatch reaches each of them, and each kernel, run by the Python interpreter over
real bars, reads and writes only inside its declared state layout and uses every slot of it.
"""

from __future__ import annotations

import math
import operator
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from algotrade.engine import NODE_TYPES, Bars, kernels
from algotrade.engine.kernels import KERNELS, Kernel, Op
from algotrade.engine.specs import NodeType, ParamSpec

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Case = tuple[str, Kernel, tuple[float, ...]]


def _param_variants(node_type: NodeType) -> list[dict[str, Any]]:
    """Defaults, short windows (rings wrap often), and each choice of every choice parameter."""

    def short(spec: ParamSpec) -> Any:
        if spec.kind == "int":
            assert spec.min is not None
            return int(spec.min) + 2
        return spec.default if spec.default is not None else 1.5

    defaults = {p.name: p.default if p.default is not None else 1.5 for p in node_type.params}
    variants = [defaults, {p.name: short(p) for p in node_type.params}]
    for spec in node_type.params:
        if spec.kind == "choice":
            variants += [{**variants[1], spec.name: choice} for choice in spec.choices]
    return variants


def _cases() -> Iterator[Case]:
    for node_type in NODE_TYPES.values():
        for params in _param_variants(node_type):
            yield node_type.name, node_type.kernel, node_type.kernel_params(params)


CASES = list(_cases())


def _case_id(case: Case) -> str:
    name, _, params = case
    return f"{name}{list(params)}"


@pytest.fixture(scope="module")
def inputs(load_bars: Callable[[str], Bars]) -> tuple[FloatArray, ...]:
    """Real hourly high, low, close and volume with NaN holes, as kernel inputs a-d."""
    bars = load_bars("spy-1h").slice(5_000, 5_400)
    columns = [bars.field(name).copy() for name in ("high", "low", "close", "volume")]
    for column, hole in zip(columns, (37, 38, 150, 151), strict=True):
        column[hole] = np.nan
    return tuple(columns)


def test_every_node_type_runs_a_registered_kernel() -> None:
    for node_type in NODE_TYPES.values():
        assert KERNELS.get(node_type.kernel.op) is node_type.kernel, node_type.name


def test_every_op_has_one_kernel_and_every_kernel_a_node_type() -> None:
    assert list(KERNELS) == sorted(Op)
    assert all(op is entry.op for op, entry in KERNELS.items())
    used = {node_type.kernel.op for node_type in NODE_TYPES.values()}
    assert used == set(Op), f"kernels no node type runs: {sorted(set(Op) - used)}"


def test_a_second_kernel_for_an_op_is_refused() -> None:
    with pytest.raises(ValueError, match="already has a kernel"):
        kernels.kernel(Op.SMA)(lambda *args: None)


def test_state_slot_names_are_unique() -> None:
    with pytest.raises(ValueError, match="more than once"):
        kernels.StateLayout.of("count head", kernels.Slot("head"))


def test_generated_dispatch_has_one_branch_per_kernel() -> None:
    source = kernels.dispatch_source(KERNELS)
    for op in Op:
        assert source.count(f"op == Op.{op.name}:") == 1, op


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_run_bar_dispatches_to_the_kernel(case: Case, inputs: tuple[FloatArray, ...]) -> None:
    """One streamed step per bar through `run_bar` equals the kernel over the whole arrays."""
    _, entry, params = case
    n = len(inputs[0])
    expected = [np.full(n, -7.0) for _ in range(kernels.MAX_OUTPUTS)]
    entry.fn(*inputs, *expected, np.array(entry.init_state(params)), np.array(params))

    state = np.array(entry.init_state(params))
    row = [0] * kernels.PROGRAM_COLUMNS
    row[kernels.COL_OP] = entry.op
    row[kernels.COL_IN0 : kernels.COL_IN3 + 1] = [0, 1, 2, 3]
    row[kernels.COL_OUT0 : kernels.COL_OUT2 + 1] = [4, 5, 6]
    row[kernels.COL_N_OUT] = kernels.MAX_OUTPUTS
    row[kernels.COL_STATE_LEN] = len(state)
    row[kernels.COL_PARAM_LEN] = len(params)
    program = np.array([row], dtype=np.int64)
    values = np.empty(7)
    streamed = np.empty((n, kernels.MAX_OUTPUTS))
    for i in range(n):
        values[:4] = [column[i] for column in inputs]
        values[4:] = -7.0  # a branch-less dispatch would leave this in place
        kernels.run_bar(program, np.array(params), state, values, i)
        streamed[i] = values[4:]

    assert not np.all(streamed[:, 0] == -7.0), "run_bar did not run the kernel"
    for port in range(kernels.MAX_OUTPUTS):
        np.testing.assert_array_equal(streamed[:, port], expected[port])


class TrackedState:
    """A kernel's state that refuses indexes outside its layout and records those used."""

    def __init__(self, initial: list[float]) -> None:
        self.values = [np.float64(x) for x in initial]
        self.touched: set[int] = set()

    def _check(self, index: Any) -> int:
        position = operator.index(index)
        if not 0 <= position < len(self.values):
            raise IndexError(f"state index {position} outside the {len(self.values)} declared")
        self.touched.add(position)
        return position

    def __getitem__(self, index: Any) -> np.float64:
        return self.values[self._check(index)]

    def __setitem__(self, index: Any, value: float) -> None:
        self.values[self._check(index)] = np.float64(value)


def _interpreted(entry: Kernel) -> Callable[..., None]:
    """The kernel as plain Python, numba helpers included, so its state can be watched."""
    namespace = dict(vars(kernels))
    for name, value in vars(kernels).items():
        if isinstance(value, numba.core.dispatcher.Dispatcher):
            namespace[name] = types.FunctionType(value.py_func.__code__, namespace, name)
    py_func = entry.fn.py_func  # type: ignore[attr-defined]
    return types.FunctionType(py_func.__code__, namespace, py_func.__name__)


def _touched_slots(case: Case, inputs: tuple[FloatArray, ...]) -> dict[str, bool]:
    """Run a case with a tracked state; for each slot, whether every one of its values was used."""
    _, entry, params = case
    state = TrackedState(entry.init_state(params))
    outputs = [np.empty(len(inputs[0])) for _ in range(kernels.MAX_OUTPUTS)]
    with np.errstate(all="ignore"):
        _interpreted(entry)(*inputs, *outputs, state, np.array(params))
    spans = entry.state.spans(params)
    return {name: set(span) <= state.touched for name, span in spans.items()}


def test_kernels_stay_inside_their_state_layout_and_use_all_of_it(
    inputs: tuple[FloatArray, ...],
) -> None:
    """Out-of-layout indexes raise; a slot no case ever fills is a layout that drifted."""
    fully_used: dict[Op, dict[str, bool]] = {}
    for case in CASES:
        entry = case[1]
        try:
            used = _touched_slots(case, inputs)
        except IndexError as exc:
            pytest.fail(f"{_case_id(case)}: {exc}")
        merged = fully_used.setdefault(entry.op, dict.fromkeys(used, False))
        for name, complete in used.items():
            merged[name] = merged[name] or complete
    unused = {op.name: [n for n, ok in slots.items() if not ok] for op, slots in fully_used.items()}
    assert not {op: names for op, names in unused.items() if names}


def test_initial_state_follows_the_layout() -> None:
    cross = kernels.k_cross.init_state((0.0,))
    assert cross[0] == 0.0
    assert math.isnan(cross[1])
    assert math.isnan(cross[2])
    assert len(kernels.k_sma.init_state((20.0,))) == 3 + 20
    # highs and lows of 5, then slow %K's count, head, total and ring of 3, then slow %D's.
    assert kernels.k_stoch.state.spans((5.0, 3.0, 4.0))["slow_d_ring"] == range(25, 29)


def test_numba_caches_under_numba_cache_dir_not_beside_the_sources() -> None:
    """``cache=True`` kernels follow NUMBA_CACHE_DIR (the Makefile's .algotrade/numba)."""
    cache_dir = numba.config.CACHE_DIR
    if not cache_dir:
        pytest.skip("NUMBA_CACHE_DIR is not set (make exports it as .algotrade/numba)")
    sources = Path(kernels.__file__).resolve().parent
    dispatchers = [entry.fn for entry in KERNELS.values()] + [kernels.run_bar]
    for dispatcher in dispatchers:
        cache_path = Path(dispatcher._cache._cache_path).resolve()  # type: ignore[attr-defined]
        assert cache_path.is_relative_to(Path(cache_dir).resolve()), cache_path
        assert not cache_path.is_relative_to(sources), cache_path
