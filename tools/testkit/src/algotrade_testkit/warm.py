"""Compile the numba kernels once, before the test run: ``python -m algotrade_testkit.warm``.

On a fresh clone numba's on-disk cache (``NUMBA_CACHE_DIR``) is empty, and every process that
first needs a kernel compiles it; the test run's two workers, its services and their worker
processes would each pay for the same compilations at the same time. `make test` runs this
beside the linters instead: one process compiles every node type's kernel (vectorized and
streaming), the backtest's and the live session's fill models, and the numba functions of
vectorbt that the cross-engine tests use, and writes them to the cache every later process
loads from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from algotrade.engine import NODE_TYPES, Bars, compile_graph
from algotrade.simulation import BacktestConfig
from algotrade.simulation.live import LiveBar, LiveSession
from algotrade.simulation.live_book import LiveBook, apply_many

DATA = Path(__file__).resolve().parents[4] / "data" / "spy-1d.csv"


def every_node_graph() -> dict[str, Any]:
    """A valid graph with one node of every type: float inputs from the close, bool inputs
    from a comparison, every parameter at its default (1.0 where there is none)."""
    nodes: list[dict[str, Any]] = [
        {"id": "close", "type": "price"},
        {"id": "avg", "type": "sma", "params": {"period": 5}},
        {"id": "above", "type": "gt"},
    ]
    edges = [
        {"from": "close.out", "to": "avg.in"},
        {"from": "close.out", "to": "above.a"},
        {"from": "avg.out", "to": "above.b"},
    ]
    for spec in NODE_TYPES.values():
        node_id = f"n_{spec.name}"
        params = {p.name: 1.0 for p in spec.params if p.required}
        nodes.append({"id": node_id, "type": spec.name, "params": params})
        for port in spec.inputs:
            source = "above.out" if port.type == "bool" else "close.out"
            edges.append({"from": source, "to": f"{node_id}.{port.name}"})
    return {"nodes": nodes, "edges": edges}


def warm_engine() -> None:
    from backtesting_service.backtest import run_backtest

    bars = Bars.from_csv(DATA).slice(0, 400)
    plan = compile_graph(every_node_graph())
    plan.evaluate(bars)
    stream = plan.stream()
    for row in bars.rows():
        stream.update(row)
    for costs in (BacktestConfig(), BacktestConfig(units="whole", fee_bps=5.0)):
        run_backtest(plan, bars, costs)
    config = BacktestConfig().resolve_market(timeframe="1d", calendar="24x7")
    session = LiveSession.start(plan, config)
    for row in list(bars.rows())[:120]:
        session.apply(
            LiveBar(
                int(row["ts"]), row["open"], row["high"], row["low"], row["close"], row["volume"]
            )
        )
    restored = LiveSession.restore(plan, config, session.snapshot())
    restored.metrics()
    book = LiveBook(restored.template)  # the forward-test worker's batched path
    apply_many(
        [book.restore(session.snapshot())], LiveBar(int(bars.ts[120]), 1.0, 2.0, 0.5, 1.5, 1.0)
    )


def warm_vectorbt() -> None:
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(np.linspace(100.0, 120.0, 50) + np.sin(np.arange(50)))
    entries = pd.Series(np.arange(50) % 10 == 0)
    exits = pd.Series(np.arange(50) % 10 == 5)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, init_cash=1_000.0, freq="1D")
    portfolio.stats()
    portfolio.trades.records_readable  # noqa: B018 (computes the trade records)


def main() -> None:
    for step in (warm_engine, warm_vectorbt):
        started = time.perf_counter()
        step()
        print(f"warm: {step.__name__} in {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
