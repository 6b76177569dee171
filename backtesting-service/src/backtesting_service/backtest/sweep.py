"""Parameter sweeps: combinations of a plan's tunables, shared evaluation, walk-forward.

A sweep runs one plan with up to `MAX_COMBINATIONS` sets of tunable values (a grid or a
seeded random sample) over the same bars. Three things keep it fast without changing any
number a single `run_backtest` would produce:

- `SharedEvaluator` computes every distinct plan step once per bars and hands the arrays to
  every combination that needs them (ninety SMA-crossover combinations over ten fast and nine
  slow periods compute nineteen moving averages, not 180), freeing each when its last user is
  done.
- The simulation and the metrics are compiled numba loops; a combination costs no Python per
  bar.
- Combinations are independent, so a sweep splits into chunks (`combination_slice`) that
  workers run anywhere and in any order; results are keyed by combination index.

Walk-forward (`WalkForward`) cuts the bars into rolling train/test windows. Every combination
is simulated on every window (each window starts flat, indicators warmed up on all earlier
bars); `walk_forward_report` then picks, per fold, the best combination on the train window by
the sweep's metric and reports it on the test window.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from algotrade.engine import Bars, GraphInvalid, Plan, Step
from algotrade.engine.registry import NODE_TYPES
from algotrade.engine.specs import BAR_FIELDS, BAR_SOURCE_PREFIX, SIGNAL_KINDS
from algotrade.metrics import LOWER_IS_BETTER, RANKABLE_METRICS, Metrics, periods_per_year
from algotrade.simulation.config import BacktestConfig
from backtesting_service.backtest.errors import BacktestInvalid
from backtesting_service.backtest.run import (
    check_plan,
    simulate,
    simulation_inputs,
    simulation_params,
)

MAX_COMBINATIONS: Final = 10_000
Combination = dict[str, int | float]

_UNUSED = np.empty(0, dtype=np.float64)


class ValueRange(BaseModel):
    """Values ``min, min + step, ...`` up to ``max``; missing bounds or step come from the
    tunable's own declaration."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min: StrictFloat | None = None
    max: StrictFloat | None = None
    step: StrictFloat | None = Field(default=None, gt=0)


class SearchSpace(BaseModel):
    """Which combinations to run: the full grid, or ``samples`` drawn at random (seeded).

    ``parameters`` maps a tunable to a list of values or a `ValueRange`. With no entry at all,
    every tunable that declares a ``step`` spans its declared range; a tunable not named keeps
    its default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["grid", "random"] = "grid"
    parameters: dict[str, list[StrictFloat] | ValueRange] = Field(default_factory=dict)
    samples: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    seed: StrictInt = Field(default=0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _samples_for_random(self) -> SearchSpace:
        if self.method == "random" and self.samples is None:
            raise ValueError("a random search needs `samples`")
        if self.method == "grid" and self.samples is not None:
            raise ValueError("`samples` applies to random searches only")
        return self


class WalkForward(BaseModel):
    """Rolling windows of ``train_bars`` then ``test_bars``, advancing ``step_bars``
    (default: ``test_bars``, so test windows tile the range)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_bars: StrictInt = Field(ge=2, le=10_000_000)
    test_bars: StrictInt = Field(ge=1, le=10_000_000)
    step_bars: StrictInt | None = Field(default=None, ge=1, le=10_000_000)

    def windows(self, n: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """``((train_start, train_end), (test_start, test_end))`` folds that fit in ``n`` bars."""
        step = self.step_bars or self.test_bars
        folds = []
        start = 0
        while start + self.train_bars + self.test_bars <= n:
            split = start + self.train_bars
            folds.append(((start, split), (split, split + self.test_bars)))
            start += step
        return folds


class SweepSpec(BaseModel):
    """A sweep: the search, the metric that ranks combinations, optional walk-forward."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search: SearchSpace = Field(default_factory=SearchSpace)
    metric: str = "sharpe"
    walk_forward: WalkForward | None = None

    @model_validator(mode="after")
    def _known_metric(self) -> SweepSpec:
        if self.metric not in RANKABLE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(RANKABLE_METRICS)}")
        return self


# ----------------------------------------------------------------------------- combinations


@dataclass(frozen=True, slots=True)
class Combinations:
    """The combinations of a search, addressable by index without materialising a grid.

    A grid enumerates ``axes`` with the last name varying fastest; a random search holds its
    drawn ``samples``. A grid over no names is the one combination of the defaults.
    """

    names: tuple[str, ...]
    axes: tuple[tuple[int | float, ...], ...] = ()
    samples: tuple[tuple[int | float, ...], ...] | None = None

    def __len__(self) -> int:
        if self.samples is not None:
            return len(self.samples)
        return math.prod(len(axis) for axis in self.axes)

    def __getitem__(self, index: int) -> Combination:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self.samples is not None:
            return dict(zip(self.names, self.samples[index], strict=True))
        values: list[int | float] = []
        for axis in reversed(self.axes):
            index, digit = divmod(index, len(axis))
            values.append(axis[digit])
        return dict(zip(self.names, reversed(values), strict=True))

    def slice(self, start: int, stop: int) -> list[tuple[int, Combination]]:
        """``(index, params)`` for indices ``[start, stop)`` (clipped to the sweep)."""
        return [(i, self[i]) for i in range(max(start, 0), min(stop, len(self)))]


def combinations(plan: Plan, space: SearchSpace) -> Combinations:
    """The combinations ``space`` describes, checked against the plan's tunables.

    Raises `BacktestInvalid` naming every problem: unknown parameters, values outside a
    tunable's declared range (or fractional for an integer one), a range without a step, and
    more than `MAX_COMBINATIONS` combinations (counted before anything is expanded).
    """
    tunables = plan.parameters
    errors: list[dict[str, Any]] = []
    requested = dict(space.parameters)
    if not requested:
        requested = {name: ValueRange() for name, t in tunables.items() if t.step is not None}
        if not requested and tunables:
            raise _invalid(
                "no parameter to sweep: name values in search.parameters "
                "(the strategy's tunables declare no step)",
                [{"loc": ["search", "parameters"], "code": "nothing_to_sweep"}],
            )
    for name in requested:
        if name not in tunables:
            known = ", ".join(sorted(tunables)) or "none"
            errors.append(
                {
                    "loc": ["search", "parameters", name],
                    "code": "unknown_parameter",
                    "message": f"{name!r} is not a parameter of this strategy (it has: {known})",
                }
            )
    if errors:
        raise _invalid(errors[0]["message"], errors)

    names = tuple(requested)
    counts: list[int] = []
    for name in names:
        spec = requested[name]
        tunable = tunables[name]
        if isinstance(spec, list):
            if not spec:
                errors.append(_problem(name, "empty_values", f"{name}: give at least one value"))
            counts.append(len(spec))
            continue
        step = spec.step if spec.step is not None else tunable.step
        low = spec.min if spec.min is not None else tunable.min
        high = spec.max if spec.max is not None else tunable.max
        if step is None and space.method == "grid":
            errors.append(_problem(name, "step_required", f"{name}: a grid range needs a step"))
            counts.append(1)
            continue
        if high < low:
            errors.append(_problem(name, "empty_range", f"{name}: max is below min"))
            counts.append(0)
            continue
        counts.append(_range_count(low, high, step) if step is not None else 1)
    if errors:
        raise _invalid(errors[0]["message"], errors)
    total = math.prod(counts) if space.method == "grid" else (space.samples or 0)
    if total > MAX_COMBINATIONS:
        what = "samples" if space.method == "random" else "combinations"
        raise _invalid(
            f"the sweep has {total:,} {what}; at most {MAX_COMBINATIONS:,} are allowed",
            [
                {
                    "loc": ["search"],
                    "code": "too_many_combinations",
                    "message": f"{total} {what} > {MAX_COMBINATIONS}",
                }
            ],
        )

    axes: list[tuple[int | float, ...]] = []
    for name in names:
        spec = requested[name]
        tunable = tunables[name]
        if isinstance(spec, list):
            values = [float(v) for v in spec]
        else:
            step = spec.step if spec.step is not None else tunable.step
            low = spec.min if spec.min is not None else tunable.min
            high = spec.max if spec.max is not None else tunable.max
            if step is None:
                values = [float(low), float(high)]  # random: bounds of a continuous range
            else:
                values = [_round(low + k * step) for k in range(_range_count(low, high, step))]
        checked = _check_values(plan, name, values, tunable.integer, errors)
        axes.append(tuple(checked))
    if errors:
        raise _invalid(errors[0]["message"], errors)

    if space.method == "grid":
        return Combinations(names=names, axes=tuple(axes))
    return Combinations(names=names, samples=_sample(space, names, requested, axes, tunables))


def _sample(
    space: SearchSpace,
    names: tuple[str, ...],
    requested: Mapping[str, list[float] | ValueRange],
    axes: Sequence[tuple[int | float, ...]],
    tunables: Mapping[str, Any],
) -> tuple[tuple[int | float, ...], ...]:
    """``samples`` distinct draws (fewer if the space is smaller), reproducible from the seed."""
    rng = np.random.default_rng(space.seed)
    wanted = space.samples or 0
    seen: set[tuple[int | float, ...]] = set()
    rows: list[tuple[int | float, ...]] = []
    attempts = 0
    while len(rows) < wanted and attempts < wanted * 20:
        attempts += 1
        row: list[int | float] = []
        for name, axis in zip(names, axes, strict=True):
            spec = requested[name]
            continuous = isinstance(spec, ValueRange) and (spec.step or tunables[name].step) is None
            if continuous:
                low, high = float(axis[0]), float(axis[-1])
                if tunables[name].integer:
                    row.append(int(rng.integers(int(low), int(high) + 1)))
                else:
                    row.append(_round(float(rng.uniform(low, high))))
            else:
                row.append(axis[int(rng.integers(0, len(axis)))])
        key = tuple(row)
        if key not in seen:
            seen.add(key)
            rows.append(key)
    return tuple(rows)


def _range_count(low: float, high: float, step: float) -> int:
    # A hair of tolerance so 0.1-steps reach their max despite binary fractions.
    return math.floor((high - low) / step + 1e-9) + 1


def _round(value: float) -> float:
    return float(f"{value:.12g}")


def _check_values(
    plan: Plan,
    name: str,
    values: Sequence[float],
    integer: bool,
    errors: list[dict[str, Any]],
) -> list[int | float]:
    """Each distinct value as the engine accepts it (`Plan.with_params` decides)."""
    out: list[int | float] = []
    checked: dict[float, int | float] = {}
    for value in values:
        if value not in checked:
            try:
                plan.with_params({name: int(value) if integer and value.is_integer() else value})
            except GraphInvalid as exc:
                errors.append(_problem(name, "value_out_of_range", exc.problems[0].message))
                return out
            checked[value] = int(value) if integer else value
        out.append(checked[value])
    return out


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {"loc": ["search", "parameters", name], "code": code, "message": message}


def _invalid(detail: str, errors: list[dict[str, Any]]) -> BacktestInvalid:
    return BacktestInvalid(detail, errors=errors)


# ----------------------------------------------------------------------------- evaluation


def _step_identity(step: Step, identities: Mapping[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    sources = tuple(
        (source,)
        if source.startswith(BAR_SOURCE_PREFIX)
        else (identities[source.split(".", 1)[0]], source.split(".", 1)[1])
        for source in step.inputs
    )
    return (step.type, tuple(sorted(step.params.items())), sources, step.warmup)


class SharedEvaluator:
    """Evaluates many parameterisations of one plan over the same bars, each distinct step once.

    Produces exactly what `Plan.evaluate` does for each plan (the kernels run the same way as
    in `algotrade.engine.vectorized`); a step shared by several plans is kept only until its
    last user has been evaluated.
    """

    def __init__(self, bars: Bars) -> None:
        self._bars = bars
        self._columns = {f"{BAR_SOURCE_PREFIX}{f}": bars.field(f) for f in BAR_FIELDS}

    def evaluate_all(
        self, plans: Sequence[Plan]
    ) -> Iterator[tuple[int, dict[str, npt.NDArray[Any]]]]:
        """``(position in plans, outputs)`` in order, outputs keyed ``"node.port"``."""
        per_plan: list[list[tuple[Any, ...]]] = []
        remaining: dict[tuple[Any, ...], int] = {}
        for plan in plans:
            identities: dict[str, tuple[Any, ...]] = {}
            for step in plan.steps:
                identities[step.key] = _step_identity(step, identities)
            keys = [identities[step.key] for step in plan.steps]
            per_plan.append(keys)
            for key in set(keys):
                remaining[key] = remaining.get(key, 0) + 1
        cache: dict[tuple[Any, ...], list[npt.NDArray[Any]]] = {}
        for position, (plan, keys) in enumerate(zip(plans, per_plan, strict=True)):
            ports = {step.key: step.outputs for step in plan.steps}
            values: dict[str, npt.NDArray[Any]] = {}
            for step, key in zip(plan.steps, keys, strict=True):
                arrays = cache.get(key)
                if arrays is None:
                    arrays = self._run(step, values)
                    if remaining[key] > 1:
                        cache[key] = arrays
                for port, array in zip(step.outputs, arrays, strict=True):
                    values[f"{step.key}.{port}"] = array
            for key in set(keys):
                remaining[key] -= 1
                if remaining[key] == 0:
                    cache.pop(key, None)
            yield (
                position,
                {
                    f"{node_id}.{port}": values[f"{step_key}.{port}"]
                    for node_id, step_key in plan.aliases.items()
                    for port in ports[step_key]
                },
            )

    def _run(self, step: Step, values: Mapping[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        n = len(self._bars)
        kernel = NODE_TYPES[step.type].kernel
        inputs = [self._columns[s] if s in self._columns else values[s] for s in step.inputs]
        if step.type in SIGNAL_KINDS and step.lookback == 0 and inputs[0].dtype == np.bool_:
            # A signal sink outputs its bool input unchanged (false through the same warm-up),
            # so share the array instead of copying it.
            return [inputs[0]]
        dtype = np.bool_ if step.output_type == "bool" else np.float64
        outputs: list[npt.NDArray[Any]] = [np.empty(n, dtype=dtype) for _ in step.outputs]
        state = np.array(kernel.init_state(step.kernel_params), dtype=np.float64)
        params = np.array(step.kernel_params, dtype=np.float64)
        padded_in = inputs + [_UNUSED] * (4 - len(inputs))
        padded_out = outputs + [_UNUSED] * (3 - len(outputs))
        kernel.fn(*padded_in, *padded_out, state, params)
        if step.warmup:
            fill = False if step.output_type == "bool" else np.nan
            for array in outputs:
                array[: step.warmup] = fill
        return outputs


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class FoldResult:
    train: Metrics
    test: Metrics


@dataclass(frozen=True, slots=True)
class ComboResult:
    """One combination's metrics over the whole range, and per walk-forward fold."""

    index: int
    params: Combination
    metrics: Metrics
    folds: tuple[FoldResult, ...] = ()

    def as_dict(self, metric: str) -> dict[str, Any]:
        """JSON-ready; a fold keeps the train value of the ranking ``metric`` and all test
        metrics."""
        return {
            "index": self.index,
            "params": self.params,
            "metrics": self.metrics.as_dict(),
            "folds": [
                {"train": fold.train.as_dict()[metric], "test": fold.test.as_dict()}
                for fold in self.folds
            ],
        }


def run_sweep(
    plan: Plan,
    bars: Bars,
    config: BacktestConfig,
    combos: Sequence[tuple[int, Combination]],
    *,
    walk_forward: WalkForward | None = None,
) -> list[ComboResult]:
    """Backtest every ``(index, params)`` in ``combos`` on ``bars``; metrics only, no trades.

    Each combination's full-range metrics equal ``run_backtest(plan.with_params(params), bars,
    config).metrics``.
    """
    check_plan(plan, config)
    n = len(bars)
    resolved = config.resolve(bars.ts)
    periods = periods_per_year(resolved.timeframe, resolved.calendar)
    params = simulation_params(resolved)
    folds = walk_forward.windows(n) if walk_forward is not None else []
    if walk_forward is not None and not folds:
        raise _invalid(
            f"walk-forward needs at least {walk_forward.train_bars + walk_forward.test_bars} "
            f"bars (train + test); the range has {n}",
            [{"loc": ["walk_forward"], "code": "range_too_short", "message": f"{n} bars"}],
        )
    plans = [plan.with_params(values) for _, values in combos]
    evaluator = SharedEvaluator(bars)
    results: list[ComboResult] = []
    capital = config.initial_capital

    def measure(inputs: Any, start: int, end: int) -> Metrics:
        run = simulate(bars, inputs, params, start, end, record=False)
        return run.metrics(capital, periods)

    for position, outputs in evaluator.evaluate_all(plans):
        inputs = simulation_inputs(plans[position], outputs, n)
        index, values = combos[position]
        fold_results = tuple(
            FoldResult(train=measure(inputs, *train), test=measure(inputs, *test))
            for train, test in folds
        )
        results.append(ComboResult(index, values, measure(inputs, 0, n), fold_results))
    return results


# ----------------------------------------------------------------------------- ranking


def sort_key(metric: str) -> Any:
    """Key for `sorted` over result dicts (``{"metrics": {...}, "index": i}``): best first,
    undefined (null) values last, ties by combination index."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(row: Mapping[str, Any]) -> tuple[int, float, int]:
        value = row["metrics"].get(metric)
        if value is None:
            return (1, 0.0, int(row["index"]))
        return (0, sign * float(value), int(row["index"]))

    return key


def walk_forward_report(
    rows: Sequence[Mapping[str, Any]], metric: str, walk_forward: WalkForward, n: int
) -> dict[str, Any]:
    """Per fold, the best combination on train by ``metric`` and its test metrics.

    ``rows`` are `ComboResult.as_dict` outputs for every combination of the sweep. Also
    reports the out-of-sample return compounded over the test windows.
    """
    windows = walk_forward.windows(n)
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    folds = []
    compounded = 1.0
    for k, (train, test) in enumerate(windows):
        candidates = [row for row in rows if row["folds"][k]["train"] is not None]
        if not candidates:
            folds.append({"fold": k, "train": list(train), "test": list(test), "best": None})
            continue
        best = min(candidates, key=lambda r: (sign * float(r["folds"][k]["train"]), r["index"]))
        test_metrics = best["folds"][k]["test"]
        total = test_metrics.get("total_return")
        if total is not None:
            compounded *= 1.0 + float(total)
        folds.append(
            {
                "fold": k,
                "train": list(train),
                "test": list(test),
                "best": {
                    "index": best["index"],
                    "params": best["params"],
                    "train": best["folds"][k]["train"],
                    "test": test_metrics,
                },
            }
        )
    return {
        "metric": metric,
        "folds": folds,
        "out_of_sample_return": compounded - 1.0 if folds else None,
    }
