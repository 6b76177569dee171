"""Benchmark of forward-test sessions: many live sessions of one plan in one process.

Run: ``uv run --frozen python bench/bench_live.py`` (``--quick``: 1,000 sessions).
A 20-node strategy (`algotrade_testkit.graphs.twenty_nodes`) is warmed up on 300 real daily
bars, then restored into N sessions (10,000 by default). Each timed bar applies one new bar to
every session and takes its snapshot (what a forward-test worker stores per bar). Prints the
time per bar for all sessions and per session (median, p99 over bars), the memory a running
session holds (tracemalloc), the snapshot size and the restore time, and compares a session's
bar with the cost per bar of the vectorized backtest of the same plan (`run_backtest` over 100k
bars), measured in this process. Goals from the issue: < 250 ms per bar for 10,000 sessions
(25 us per session), < 20 KB per running session.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

from algotrade.engine import Bars, compile_graph
from algotrade.simulation.live import LiveBar, LiveSession, LiveTemplate
from algotrade_testkit.graphs import twenty_nodes
from backtesting_service.backtest import BacktestConfig, run_backtest

DATA = Path(__file__).resolve().parents[1] / "data" / "spy-1d.csv"
GOAL_BAR_MS = 250.0
GOAL_SESSION_BYTES = 20_000
GOAL_SNAPSHOT_BYTES = 20_000


def live_bars(bars: Bars) -> list[LiveBar]:
    fields = ("open", "high", "low", "close", "volume")
    columns = (bars.ts.tolist(), *(bars.field(name).tolist() for name in fields))
    return [LiveBar(*row) for row in zip(*columns, strict=True)]


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def synthetic(count: int) -> Bars:
    rng = np.random.default_rng(1)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, count)))
    opens = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.005, count)) * close
    return Bars.from_arrays(
        ts=np.arange(count, dtype=np.int64) * 86_400_000,
        open=opens,
        high=np.maximum(opens, close) + spread,
        low=np.minimum(opens, close) - spread,
        close=close,
        volume=rng.integers(1_000, 100_000, count).astype(np.float64),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 sessions, 5 bars")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--bars", type=int, default=None, help="timed bars")
    args = parser.parse_args()
    sessions_n = args.sessions or (1_000 if args.quick else 10_000)
    timed_bars = args.bars or (5 if args.quick else 11)

    plan = compile_graph(twenty_nodes())
    spy = Bars.from_csv(DATA)
    config = BacktestConfig(fee_bps=5.0).resolve_market(timeframe="1d", calendar="xnys")
    rows = live_bars(spy)
    warm, later = rows[:300], rows[300 : 300 + timed_bars]
    template = LiveTemplate(plan, config)
    seed = template.start()
    for bar in warm:  # also compiles (or loads) the kernels before anything is timed
        seed.apply(bar)
    saved = seed.snapshot()
    print(f"plan: {len(plan.steps)} steps of a 20-node graph, warm-up {plan.warmup} bars")
    print(f"sessions: {sessions_n:,}; timed bars: {timed_bars}")

    # Restore: N sessions from their snapshots (one template: the program is built once).
    restore_s = []
    sessions: list[LiveSession] = []
    for _ in range(3):
        gc.collect()
        started = time.perf_counter()
        sessions = [template.restore(saved) for _ in range(sessions_n)]
        restore_s.append(time.perf_counter() - started)
    restore = statistics.median(restore_s)
    started = time.perf_counter()
    for _ in range(200):
        LiveSession.restore(plan, config, saved)
    cold = (time.perf_counter() - started) / 200
    print(
        f"restore {sessions_n:,} sessions: {restore * 1e3:.1f} ms median "
        f"({restore / sessions_n * 1e6:.2f} us each); "
        f"LiveSession.restore(plan, config, bytes) alone: {cold * 1e6:.1f} us"
    )

    # Memory a running session holds: its arrays and objects, measured by tracemalloc.
    del sessions
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sessions = [template.restore(saved) for _ in range(sessions_n)]
    for session in sessions:
        session.apply(later[0])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_session = held / sessions_n
    memory_goal = "met" if per_session < GOAL_SESSION_BYTES else "NOT met"
    snapshot_goal = "met" if len(saved) < GOAL_SNAPSHOT_BYTES else "NOT met"
    print(f"memory per running session: {per_session / 1024:.2f} KiB (goal < 20 KB: {memory_goal})")
    print(f"snapshot: {len(saved):,} bytes per session (goal < 20 KB: {snapshot_goal})")

    # One bar for every session, apply + snapshot, bar after bar.
    apply_only, with_snapshot = [], []
    for bar in later[1:]:
        gc.collect()
        started = time.perf_counter()
        for session in sessions:
            session.apply(bar)
        middle = time.perf_counter()
        for session in sessions:
            session.snapshot()
        ended = time.perf_counter()
        apply_only.append(middle - started)
        with_snapshot.append(ended - started)
    bar_ms = statistics.median(with_snapshot) * 1e3
    per_us = bar_ms * 1e3 / sessions_n
    print(
        f"one bar, {sessions_n:,} sessions, apply + snapshot: {bar_ms:.1f} ms median, "
        f"p99 {percentile(with_snapshot, 99) * 1e3:.1f} ms; {per_us:.2f} us per session "
        f"(apply alone {statistics.median(apply_only) * 1e6 / sessions_n:.2f} us)"
    )
    scaled = per_us * 10_000 / 1e3
    print(
        f"  scaled to 10,000 sessions: {scaled:.0f} ms per bar "
        f"(goal < {GOAL_BAR_MS:.0f} ms: {'met' if scaled < GOAL_BAR_MS else 'NOT met'})"
    )

    # Baseline: the vectorized backtest of the same plan, per bar.
    bars = synthetic(100_000)
    backtest_config = BacktestConfig(fee_bps=5.0)
    run_backtest(plan, bars, backtest_config)
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        run_backtest(plan, bars, backtest_config)
        samples.append(time.perf_counter() - started)
    backtest_us = statistics.median(samples) / len(bars) * 1e6
    print(
        f"baseline, vectorized backtest of the same plan: {backtest_us:.3f} us per bar "
        f"(100k bars in {statistics.median(samples) * 1e3:.1f} ms)"
    )
    print(
        f"summary: live bar (apply + snapshot) per session = {per_us / backtest_us:.0f}x a "
        f"backtest's bar; {sessions_n:,} sessions {bar_ms:.1f} ms per bar; "
        f"{per_session / 1024:.2f} KiB and {len(saved):,} snapshot bytes per session"
    )


if __name__ == "__main__":
    main()
