"""Load (or compile) the live engine's numba kernels before the first session needs them.

On a machine whose kernel cache is cold, the first `LiveSession.apply` compiles the streaming
executor and the fill model's step, and a worker's first bar `live_book.apply_many`: tens of
seconds. The app starts this in a worker thread as it starts (readiness does not wait for it),
so the first ``POST /api/sessions`` finds the kernels loaded instead of compiling them inside a
request the gateway would time out, and the worker finds them in numba's on-disk cache.
"""

from __future__ import annotations

import asyncio
import logging
import time

from algotrade.engine import compile_graph
from algotrade.simulation import BacktestConfig
from algotrade.simulation.live import LiveBar, LiveSession
from algotrade.simulation.live_book import LiveBook, apply_many

logger = logging.getLogger(__name__)

_GRAPH = {
    "nodes": [
        {"id": "close", "type": "price"},
        {"id": "avg", "type": "sma", "params": {"period": 2}},
        {"id": "up", "type": "cross_above"},
        {"id": "down", "type": "cross_below"},
        {"id": "buy", "type": "enter_long"},
        {"id": "sell", "type": "exit_long"},
    ],
    "edges": [
        {"from": "close.out", "to": "avg.in"},
        {"from": "close.out", "to": "up.a"},
        {"from": "avg.out", "to": "up.b"},
        {"from": "close.out", "to": "down.a"},
        {"from": "avg.out", "to": "down.b"},
        {"from": "up.out", "to": "buy.in"},
        {"from": "down.out", "to": "sell.in"},
    ],
}


def warm_up() -> float:
    """Run a tiny session over six bars, alone and in a book (entry, exit, snapshot, restore);
    the seconds taken."""
    started = time.perf_counter()
    plan = compile_graph(_GRAPH)
    config = BacktestConfig().resolve_market(timeframe="1m", calendar="24x7")
    session = LiveSession.start(plan, config)
    booked = LiveBook(session.template).start()  # the worker's batched path (`apply_many`)
    for i, price in enumerate((1.0, 2.0, 1.0, 2.0, 1.0, 2.0)):
        bar = LiveBar(60_000 * i, price, price, price, price, 1.0)
        session.apply(bar)
        apply_many([booked], bar)
    LiveSession.restore(plan, config, session.snapshot()).metrics()
    return time.perf_counter() - started


async def warm_up_in_background() -> None:
    """`warm_up` in a worker thread; a failure is logged, never raised (it only costs speed)."""
    try:
        seconds = await asyncio.to_thread(warm_up)
    except Exception:
        logger.exception("live engine warm-up failed; the first session will compile it")
    else:
        logger.info("live engine ready in %.1fs", seconds)
