"""Graphs evaluated for research and charts: every node's series over bars, as arrays or a frame.

A strategy must have an entry signal to be run; a graph that only computes indicators (sources,
indicators, math, comparisons) need not. `evaluate_graph` compiles with
``purpose="indicators"`` — every other validation rule still applies — runs the vectorized
executor and keeps the bars' timestamps, so that the result can become a pandas DataFrame
indexed by UTC time. pandas is imported only by `Evaluation.to_pandas`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from algotrade import epoch
from algotrade.engine.compiler import Plan, compile_graph
from algotrade.engine.validation import RawGraph

if TYPE_CHECKING:
    import pandas as pd

    from algotrade.bars import Bars


class Evaluation(Mapping[str, npt.NDArray[Any]]):
    """The evaluated outputs of a graph: ``"node.port"`` -> one array per bar, in graph order.

    Float ports are float64 arrays (NaN before a node's warm-up), bool ports ``np.bool_``
    arrays. ``ts`` holds the bars' open times (epoch milliseconds) and ``plan`` what ran.
    """

    __slots__ = ("_series", "plan", "ts")

    def __init__(
        self, plan: Plan, ts: npt.NDArray[np.int64], series: Mapping[str, npt.NDArray[Any]]
    ) -> None:
        self.plan = plan
        self.ts = ts
        self._series = dict(series)

    def __getitem__(self, key: str) -> npt.NDArray[Any]:
        return self._series[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def __repr__(self) -> str:
        return f"Evaluation({len(self.ts)} bars, outputs {', '.join(self._series)})"

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with one column per output, indexed by UTC bar-open time (``ts``).

        Float columns are float64 and bool columns bool; the index matches
        `Bars.to_pandas`, so ``bars.to_pandas().join(evaluation.to_pandas())`` lines up.
        """
        import pandas as pd

        return pd.DataFrame(
            {key: array.copy() for key, array in self._series.items()},
            index=epoch.pandas_index_from_ms(self.ts),
            columns=list(self._series),
        )


def evaluate_graph(
    graph: RawGraph | Plan | Any, bars: Bars, *, outputs: str | Iterable[str] | None = None
) -> Evaluation:
    """Evaluate ``graph`` over ``bars``; no entry signal needed (it is not run as a strategy).

    ``graph`` is anything `compile_graph` takes (raises `GraphInvalid` with every problem), or
    an already compiled `Plan` to reuse across many bars. ``outputs`` limits the result to
    those outputs: a ``"node.port"``, or a node id for all of that node's ports, in the order
    given; an unknown name raises ``ValueError``. By default every output of every node is
    returned.
    """
    plan = graph if isinstance(graph, Plan) else compile_graph(graph, purpose="indicators")
    values = plan.evaluate(bars)
    series = values if outputs is None else _select(values, outputs)
    return Evaluation(plan, bars.ts.copy(), series)


def _select(
    values: Mapping[str, npt.NDArray[Any]], outputs: str | Iterable[str]
) -> dict[str, npt.NDArray[Any]]:
    names = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    by_node: dict[str, list[str]] = {}
    for key in values:
        by_node.setdefault(key.partition(".")[0], []).append(key)
    chosen: dict[str, npt.NDArray[Any]] = {}
    unknown: list[str] = []
    for name in names:
        keys = [name] if name in values else by_node.get(name)
        if keys is None:
            unknown.append(repr(name))
            continue
        for key in keys:
            chosen[key] = values[key]
    if unknown:
        raise ValueError(
            f"no output or node {', '.join(unknown)}; outputs: {', '.join(values) or 'none'}"
        )
    return chosen
