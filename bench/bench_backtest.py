"""Benchmark of the backtest engine, sweeps, memory, and a job end to end through the services.

Run: ``uv run --frozen python bench/bench_backtest.py`` (``--quick`` for fewer repeats,
``--skip-e2e`` without the service round trip, ``--only-e2e`` with nothing else). Prints
medians and p99s, and ratios against vectorbt measured in the same process on the same bars
and signals. The end-to-end part also fetches the job's bars both ways (JSON pages and the
Arrow answer) in one process, and prints submit -> completed median and p90.

Goals from the issue: on 1M one-minute bars with an SMA(10/30) crossover, >= 5x faster than
vectorbt's ``Portfolio.from_signals``; a sweep of 90 SMA combinations on 100k bars at
>= 1,000 combinations/s (vectorbt ~73/s); peak memory of a 1M-bar run under 500 MB; and the
latency of a 100k-bar backtest job through the HTTP service, Kafka, a worker and S3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from algotrade.engine import Bars, compile_graph
from algotrade.simulation import fills
from algotrade_testkit.graphs import sma_cross as sma_cross_graph
from backtesting_service.backtest import BacktestConfig, run_backtest
from backtesting_service.backtest.run import simulation_inputs, simulation_params
from backtesting_service.backtest.sweep import SearchSpace, combinations, run_sweep

ROOT = Path(__file__).resolve().parents[1]
BENCH_SECRET = "bench-backtest-" + "s" * 40


def bench_keys() -> Any:
    """Internal-token keys for this run (generated once; no key lives in the repository)."""
    from algotrade.keys import InstallationKeys

    global _KEYS
    if _KEYS is None:
        _KEYS = InstallationKeys.generate()
    return _KEYS


_KEYS: Any = None
FAST_PERIODS = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
SLOW_PERIODS = [60, 80, 100, 120, 140, 160, 180, 200, 220]


def synthetic_bars(count: int, seed: int = 7) -> Bars:
    """A geometric random walk of one-minute bars with plausible opens, highs and lows."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0007, count)))
    opens = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.0002, count))
    spread = np.abs(rng.normal(0.0, 0.0005, count)) * close
    return Bars.from_arrays(
        ts=1_577_836_800_000 + np.arange(count, dtype=np.int64) * 60_000,
        open=opens,
        high=np.maximum(opens, close) + spread,
        low=np.minimum(opens, close) - spread,
        close=close,
        volume=rng.integers(1_000, 100_000, count).astype(np.float64),
    )


def sma_cross(fast: int = 10, slow: int = 30) -> dict[str, Any]:
    """The shared SMA crossover, with the wider tunable bounds this bench has always used."""
    return sma_cross_graph(fast, slow, fast_max=500, slow_max=1000)


def timings(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def p99(samples: list[float]) -> float:
    return float(np.percentile(samples, 99))


def report(label: str, samples: list[float], *, per: int | None = None, what: str = "") -> float:
    median = statistics.median(samples)
    rate = f"  {per / median:>14,.0f} {what}/s" if per else ""
    print(
        f"  {label:<46} median {median * 1e3:9.2f} ms  p99 {p99(samples) * 1e3:9.2f} ms{rate}",
        flush=True,
    )
    return median


def import_vectorbt() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt
    return vbt


# ----------------------------------------------------------------------------- 1M bars


def bench_single(bars: Bars, repeat: int) -> None:
    import pandas as pd

    vbt = import_vectorbt()
    n = len(bars)
    print(f"\nSingle backtest: SMA(10/30) crossover on {n:,} one-minute bars, all-in, whole units")
    plan = compile_graph(sma_cross(10, 30))
    config = BacktestConfig(initial_capital=100_000, units="whole", calendar="24x7")
    result = run_backtest(plan, bars, config)
    outputs = plan.evaluate(bars)
    inputs = simulation_inputs(plan, outputs, n)
    params = simulation_params(config.resolve(bars.ts))

    def simulate() -> Any:
        return fills.simulate(
            bars.open, bars.high, bars.low, bars.close,
            inputs.enter_long, inputs.exit_long, inputs.enter_short, inputs.exit_short,
            inputs.stop, inputs.target, inputs.trail, inputs.size, inputs.modes, params, 0, n, True,
        )  # fmt: skip

    full = report(
        "engine run_backtest (signals+sim+metrics)",
        timings(lambda: run_backtest(plan, bars, config), repeat),
        per=n,
        what="bars",
    )
    sim = report(
        "engine simulation only (same signals)", timings(simulate, repeat), per=n, what="bars"
    )

    index = pd.date_range("2020-01-01", periods=n, freq="1min")
    close = pd.Series(bars.close, index=index)
    price = pd.Series(bars.open, index=index)
    # vectorbt fills at the bar it sees a signal: shift the signals one bar and fill at the open.
    entries = pd.Series(np.concatenate(([False], inputs.enter_long[:-1])), index=index)
    exits = pd.Series(np.concatenate(([False], inputs.exit_long[:-1])), index=index)

    def from_signals() -> Any:
        return vbt.Portfolio.from_signals(
            close, entries, exits, price=price, init_cash=100_000.0, size=np.inf,
            size_granularity=1.0, freq="1min",
        )  # fmt: skip

    pf = from_signals()
    value = pf.value().to_numpy()
    assert math.isclose(value[-1], result.equity[-1], rel_tol=1e-9), (value[-1], result.equity[-1])
    assert pf.trades.count() == len(result.trades)
    vb = report(
        "vectorbt Portfolio.from_signals", timings(from_signals, repeat), per=n, what="bars"
    )
    vb_value = report(
        "vectorbt from_signals + value()",
        timings(lambda: from_signals().value(), repeat),
        per=n,
        what="bars",
    )
    print(f"  same trades ({len(result.trades):,}) and final equity ({result.equity[-1]:,.2f})")
    print(f"  ratio from_signals / engine run_backtest:  {vb / full:6.1f}x   (goal >= 5x)")
    print(f"  ratio from_signals / engine simulation:    {vb / sim:6.1f}x")
    print(f"  ratio (from_signals+value) / run_backtest: {vb_value / full:6.1f}x")


# ----------------------------------------------------------------------------- sweep


def _sweep_part(graph: dict[str, Any], bars: Bars, combos: list[Any]) -> int:
    return len(run_sweep(compile_graph(graph), bars, BacktestConfig(calendar="24x7"), combos))


def bench_sweep(bars: Bars, repeat: int) -> None:
    import pandas as pd

    vbt = import_vectorbt()
    n = len(bars)
    plan = compile_graph(sma_cross())
    space = SearchSpace(parameters={"fast": FAST_PERIODS, "slow": SLOW_PERIODS})
    combos = combinations(plan, space)
    items = combos.slice(0, len(combos))
    count = len(items)
    config = BacktestConfig(calendar="24x7")
    print(
        f"\nSweep: {count} SMA combinations ({len(FAST_PERIODS)} fast x "
        f"{len(SLOW_PERIODS)} slow) on {n:,} bars"
    )
    one = report(
        "engine run_sweep, one process",
        timings(lambda: run_sweep(plan, bars, config, items), repeat),
        per=count,
        what="combos",
    )
    processes = os.cpu_count() or 1
    halves = [items[k::processes] for k in range(processes)]
    graph = sma_cross()
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_sweep_part, [graph] * processes, [bars] * processes, halves))

        def pooled() -> None:
            list(pool.map(_sweep_part, [graph] * processes, [bars] * processes, halves))

        many = report(
            f"engine run_sweep, pool of {processes} (as a worker)",
            timings(pooled, repeat),
            per=count,
            what="combos",
        )

    index = pd.date_range("2020-01-01", periods=n, freq="1min")
    close = pd.Series(bars.close, index=index)

    def vectorbt_sweep() -> Any:
        # vectorbt at its best here: each distinct moving average computed once (as the
        # engine shares them), then one from_signals and one Sharpe ratio per combination.
        averages = {p: close.rolling(p).mean().to_numpy() for p in FAST_PERIODS + SLOW_PERIODS}
        price = pd.Series(bars.open, index=index)
        sharpes = []
        for _, values in items:
            f, s = averages[int(values["fast"])], averages[int(values["slow"])]
            above = np.zeros(n, dtype=bool)
            below = np.zeros(n, dtype=bool)
            above[1:] = (f[1:] > s[1:]) & (f[:-1] <= s[:-1])
            below[1:] = (f[1:] < s[1:]) & (f[:-1] >= s[:-1])
            entries = pd.Series(np.concatenate(([False], above[:-1])), index=index)
            exits = pd.Series(np.concatenate(([False], below[:-1])), index=index)
            pf = vbt.Portfolio.from_signals(
                close, entries, exits, price=price, init_cash=100_000.0, size=np.inf,
                size_granularity=1.0, freq="1min",
            )  # fmt: skip
            sharpes.append(pf.sharpe_ratio())
        return sharpes

    vb = report(
        "vectorbt from_signals + sharpe per combination",
        timings(vectorbt_sweep, max(1, repeat // 2)),
        per=count,
        what="combos",
    )
    print(f"  ratio vectorbt / engine (one process): {vb / one:6.1f}x")
    print(f"  ratio vectorbt / engine (pool):        {vb / many:6.1f}x   (goal: >= 1,000 combos/s)")


# ----------------------------------------------------------------------------- memory

MEMORY_PROBE = """
import sys, tracemalloc
sys.path.insert(0, {bench!r})
from bench_backtest import synthetic_bars, sma_cross
from backtesting_service.backtest import BacktestConfig, run_backtest
from algotrade.engine import compile_graph
bars = synthetic_bars({n})
plan = compile_graph(sma_cross())
config = BacktestConfig(units="whole", calendar="24x7")
def high_water_kb():
    # VmHWM, not getrusage: ru_maxrss survives exec and would report the parent's peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
run_backtest(plan, synthetic_bars(1000), config)  # kernels loaded before measuring
before = high_water_kb()
tracemalloc.start()
result = run_backtest(plan, bars, config)
current, peak = tracemalloc.get_traced_memory()
after = high_water_kb()
print(peak, before, after, len(result.trades))
"""


def bench_memory(n: int) -> None:
    print(f"\nPeak memory of one {n:,}-bar run (separate process)")
    code = MEMORY_PROBE.format(bench=str(Path(__file__).parent), n=n)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    peak, before, after = int(out[0]), int(out[1]), int(out[2])
    print(f"  allocated by run_backtest at its peak (tracemalloc): {peak / 2**20:8.1f} MB")
    print(f"  process peak RSS (VmHWM) with the bars, before:      {before / 1024:8.1f} MB")
    print(f"  process peak RSS (VmHWM) after the run:              {after / 1024:8.1f} MB")
    print("  (goal: under 500 MB)")


# ----------------------------------------------------------------------------- end to end


@contextlib.contextmanager
def stack(state: Path) -> Iterator[dict[str, str]]:
    """Embedded infrastructure plus the market data service, the backtesting service and a
    worker, each its own process (as ``algotrade dev up`` runs them)."""
    from algotrade.topics import ensure_topics
    from algotrade_devstack.infra import (
        drop_database,
        free_port,
        provide_kafka,
        provide_postgres,
        provide_redis,
        provide_s3,
        spawn,
        tail,
        terminate,
        wait_tcp,
    )
    from algotrade_devstack.stack import ensure_database

    provided = []
    children = []
    database_name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        provided.append(provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True))
        provided.append(provide_redis(state, os.environ.get("REDIS_URL"), allow_local=True))
        provided.append(
            provide_kafka(state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade")
        )
        provided.append(provide_s3(state, os.environ.get("S3_ENDPOINT")))
        for item in provided:
            print(f"  {item.name:<9} {'STAND-IN: ' if item.stand_in else ''}{item.source}")
        database = asyncio.run(ensure_database(provided[0].url, database_name))
        topic_prefix = f"bench{uuid.uuid4().hex[:6]}."
        asyncio.run(ensure_topics(provided[2].url, topic_prefix))
        market_port, backtest_port = free_port(), free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "local",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": BENCH_SECRET,
            "DATABASE_URL": database,
            "REDIS_URL": provided[1].url,
            "KAFKA_BOOTSTRAP": provided[2].url,
            "S3_ENDPOINT": provided[3].url,
            "S3_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "MARKET_DATA_SERVICE_URL": f"http://127.0.0.1:{market_port}",
            "OUTBOX_POLL_SECONDS": "0.05",
        }
        logs = state / "logs"
        keys = bench_keys()
        commands = [
            ("market", ["market_data_service", "serve", "--migrate"], market_port, None),
            (
                "backtest",
                ["backtesting_service", "serve", "--migrate"],
                backtest_port,
                "backtesting",
            ),
        ]
        for name, args, port, role in commands:
            proc = spawn(
                [sys.executable, "-m", *args],
                logs / f"{name}.log",
                {**env, **keys.env(role), "PORT": str(port)},
            )
            children.append(proc)
            try:
                wait_tcp("127.0.0.1", port, 60, proc)
            except RuntimeError:
                print(tail(logs / f"{name}.log"))
                raise
        worker = spawn(
            [sys.executable, "-m", "backtesting_service", "worker", "--processes", "2"],
            logs / "worker.log",
            {**env, **keys.env("backtesting"), "LOG_LEVEL": "INFO"},
        )
        children.append(worker)
        yield {
            "market": f"http://127.0.0.1:{market_port}",
            "backtest": f"http://127.0.0.1:{backtest_port}",
            "log": str(logs / "worker.log"),
        }
    finally:
        for proc in reversed(children):
            terminate(proc)
        if provided:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(provided[0].url, database_name))
        for item in reversed(provided):
            item.stop()


async def json_pages_fetch(client: Any, url: str, params: dict[str, Any], page_size: int) -> Bars:
    """The worker's old way: JSON pages of ``page_size`` bars followed by cursor, transposed
    into columns and turned into `Bars` (what ``HttpBarSource`` did before the Arrow answer)."""
    from operator import itemgetter

    import orjson

    fields = itemgetter("ts", "open", "high", "low", "close", "volume")
    pages: list[tuple[tuple[Any, ...], ...]] = []
    cursor = None
    while True:
        query = {**params, "limit": page_size, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers={"accept": "application/json"})
        page = orjson.loads(response.content)
        if page["bars"]:
            pages.append(tuple(zip(*map(fields, page["bars"]), strict=True)))
        cursor = page.get("next_cursor")
        if not cursor:
            break

    def column(k: int) -> list[Any]:
        return [value for page in pages for value in page[k]]

    stamps = [s[:-1] if s.endswith("Z") else s for s in column(0)]
    return Bars.from_arrays(
        ts=np.array(stamps, dtype="datetime64[ms]").astype(np.int64),
        open=column(1),
        high=column(2),
        low=column(3),
        close=column(4),
        volume=column(5),
    )


async def bench_fetch(urls: dict[str, str], bars: Bars, settings: Any, repeat: int) -> None:
    """The bars of the 100k-bar job, fetched from the market data service as the worker does,
    both ways in this process: JSON pages vs one Arrow answer."""
    from datetime import UTC, datetime

    import httpx

    from algotrade.auth import InternalTokens
    from algotrade.columnar import ARROW_STREAM
    from backtesting_service.bar_sources import HttpBarSource

    tokens = InternalTokens(settings, ttl_seconds=3600)
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    url = f"{urls['market']}/api/market/symbols/BENCH-USD/bars"
    params = {"timeframe": "1m", "start": start.isoformat(), "end": end.isoformat()}
    print(
        f"\nFetching the job's {len(bars):,} bars from the market data service (HTTP, one process)"
    )
    async with httpx.AsyncClient(timeout=60) as client:
        source = HttpBarSource(client, urls["market"], tokens, page_size=10_000, max_bars=5_000_000)
        client.headers["authorization"] = f"Bearer {tokens.for_user('bench-user', 'market:read')}"
        results: dict[str, list[float]] = {}

        async def arrow() -> Bars:
            return await source.bars("bench-user", "BENCH-USD", "1m", start, end)

        cases = {
            "JSON pages of 500 (the issue's figure)": lambda: json_pages_fetch(
                client, url, params, 500
            ),
            "JSON pages of 10,000 (the page maximum)": lambda: json_pages_fetch(
                client, url, params, 10_000
            ),
            "Arrow IPC, whole range (HttpBarSource)": arrow,
        }
        for label, fetch in cases.items():
            got = await fetch()  # warm-up, and a check that every way gives the same bars
            assert len(got) == len(bars) and np.array_equal(got.close, bars.close), label
            assert np.array_equal(got.ts, bars.ts), label
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                await fetch()
                samples.append(time.perf_counter() - started)
            results[label] = samples
            report(label, samples)
        # The service's own account of an Arrow answer: history read vs encoding.
        timings_ms: dict[str, list[float]] = {}
        for _ in range(repeat):
            answer = await client.get(url, params=params, headers={"accept": ARROW_STREAM})
            for item in answer.headers["server-timing"].split(","):
                name, _, value = item.strip().partition(";dur=")
                timings_ms.setdefault(name, []).append(float(value))
        print(
            "    market data service (Server-Timing): "
            + ", ".join(f"{k} median {statistics.median(v):.1f} ms" for k, v in timings_ms.items())
        )
    json_500, json_max, arrow_s = (statistics.median(v) for v in results.values())
    print(f"  ratio JSON(500) / Arrow:    {json_500 / arrow_s:6.1f}x   (goal: fetch under 50 ms)")
    print(f"  ratio JSON(10,000) / Arrow: {json_max / arrow_s:6.1f}x")
    print("  (before: ~1,060 ms fetching in the worker, from its log)")


async def e2e_round_trips(
    urls: dict[str, str], bars: Bars, jobs: int, fetch_repeat: int
) -> list[float]:
    import httpx

    from algotrade.config import ServiceSettings
    from algotrade_testkit.services import internal_token

    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        **{"jwt_secret": BENCH_SECRET, **bench_keys().settings_values("gateway")},
    )
    token = internal_token(settings, "bench-user", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        seconds = (bars.ts // 1000).tolist()
        for start in range(0, len(bars), 5_000):
            rows = [
                {"ts": seconds[i], "open": float(bars.open[i]), "high": float(bars.high[i]),
                 "low": float(bars.low[i]), "close": float(bars.close[i]),
                 "volume": float(bars.volume[i])}
                for i in range(start, min(start + 5_000, len(bars)))
            ]  # fmt: skip
            pushed = await client.post(
                f"{urls['market']}/api/market/bars",
                json={"symbol": "BENCH-USD", "timeframe": "1m", "bars": rows},
            )
            assert pushed.status_code == 200, pushed.text
        await bench_fetch(urls, bars, settings, fetch_repeat)
        body = {
            "graph": sma_cross(),
            "symbol": "BENCH-USD",
            "timeframe": "1m",
            "start": "2020-01-01T00:00:00Z",
            "end": "2030-01-01T00:00:00Z",
            "config": {"initial_capital": 100_000, "units": "whole"},
        }
        samples = []
        for k in range(jobs + 1):  # the first job also starts the worker's pool processes
            started = time.perf_counter()
            response = await client.post(f"{urls['backtest']}/api/backtests", json=body)
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            while True:
                job = (await client.get(f"{urls['backtest']}/api/backtests/{job_id}")).json()
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.01)
            assert job["status"] == "completed", job
            assert job["bars"] == len(bars)
            if k:
                samples.append(time.perf_counter() - started)
        return samples


def bench_e2e(n: int, jobs: int) -> None:
    print(
        f"\nEnd to end: a {n:,}-bar backtest job (HTTP -> outbox -> Kafka -> worker -> "
        "market data API (Arrow) -> S3 -> PostgreSQL), polled every 10 ms"
    )
    bars = synthetic_bars(n)
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp, stack(Path(tmp)) as urls:
        try:
            samples = asyncio.run(e2e_round_trips(urls, bars, jobs, fetch_repeat=jobs))
        except Exception:
            print(Path(urls["log"]).read_text()[-3000:])
            raise
        phases = worker_phases(Path(urls["log"]))[1:]  # without the warm-up job
    print(f"\n  {n:,}-bar job, submit -> completed")
    report("submit -> completed", samples)
    print(
        f"  {'':<46} p90    {float(np.percentile(samples, 90)) * 1e3:9.2f} ms"
        f"   (before: median 1,390 ms; goal: median under 300 ms)"
    )
    before = {"fetch_ms": "~1,060", "run_ms": "~57", "store_ms": "?"}
    for phase in ("fetch_ms", "run_ms", "store_ms"):
        values = [p[phase] for p in phases]
        if values:
            print(
                f"    worker {phase[:-3]:<6} (from its log)  "
                f"median {statistics.median(values):8.1f} ms   (before: {before[phase]} ms)"
            )
    print(f"  ({jobs} jobs after one warm-up job; one worker with a pool of 2 processes)")


def worker_phases(log: Path) -> list[dict[str, float]]:
    """The worker's per-job timings: fetch bars, run the backtest, store results."""
    import json

    phases = []
    for line in log.read_text(errors="replace").splitlines():
        if '"backtest stored"' in line:
            entry = json.loads(line)
            phases.append({k: float(entry[k]) for k in ("fetch_ms", "run_ms", "store_ms")})
    return phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--only-e2e", action="store_true", help="just the service round trip")
    args = parser.parse_args()
    repeat = 5 if args.quick else 15
    print(f"bench_backtest: {os.cpu_count()} CPUs, numpy {np.__version__}")
    if not args.only_e2e:
        bench_single(synthetic_bars(1_000_000), repeat)
        bench_sweep(synthetic_bars(100_000), repeat)
        bench_memory(1_000_000)
    if not args.skip_e2e:
        bench_e2e(100_000, 5 if args.quick else 10)


if __name__ == "__main__":
    main()
