"""Sweep throughput with 1, 2 and 3 backtest worker processes in one consumer group.

Run: ``uv run --frozen python bench/bench_sweep_scaling.py [--runs 3] [--workers 3]``

A sweep of the SMA crossover (``algotrade_testkit.graphs.sma_cross``) over the 20k 4-hour
BTC-USD bars in ``data/`` is submitted to the backtesting service (its app in this process,
over ASGI: submission, outbox, relay), cut into chunks on ``backtest.jobs.v1`` (6 partitions)
and run by worker processes (the real `Worker` with CSV bars, one pool process each:
``backtesting-service/tests/scale_out_worker.py`` with no fetch delay) on the embedded Apache
Kafka broker, PostgreSQL and moto S3. Each figure is the time from submission to the job's
``completed`` status, the median of ``--runs`` sweeps after one uncounted warm-up sweep.

The baseline is the ceiling: `execution.run_combinations` called directly in this process over
the same chunks (no Kafka, no database), one process, and the same chunks spread over a pool of
one process per CPU. What limits the scaling shows in the CPU time each component used during
the timed sweeps (workers with their pool processes, broker, PostgreSQL, this process), in the
workers' own per-chunk timings (their JSON log lines) and in how the chunks fell on workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from algotrade.db import asyncpg_url
from algotrade.engine import Bars, compile_graph
from algotrade.keys import InstallationKeys
from algotrade.migrations import upgrade
from algotrade.topics import ensure_topics
from algotrade_devstack.infra import (
    Provided,
    drop_database,
    provide_kafka,
    provide_postgres,
    provide_s3,
    spawn,
    tail,
    terminate,
)
from algotrade_devstack.stack import ensure_database
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.kafka import wait_group
from algotrade_testkit.services import ALL_SCOPES, internal_token, serve_in_process, settings_env
from backtesting_service import execution
from backtesting_service.backtest import BacktestConfig
from backtesting_service.backtest.sweep import SearchSpace, combinations
from backtesting_service.bar_sources import CsvBarSource
from backtesting_service.config import Settings
from backtesting_service.main import create_app
from backtesting_service.strategies import StrategyVersion, unknown_strategy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
WORKER_SCRIPT = ROOT / "backtesting-service" / "tests" / "scale_out_worker.py"
FAST = list(range(2, 42))  # 40 values; the slow periods make up the requested count
CONFIG = {"initial_capital": 100_000, "fee_bps": 1}
STORED = {"chunk stored", "chunk completed"}
ISSUE_ONE, ISSUE_POOL = 1_550, 2_000  # combinations/s the issue reports on a quiet machine


class NoStoredStrategies:
    """The bench submits inline graphs; the strategy service is never asked."""

    async def version(self, user_id: str, strategy_id: str, version: int) -> StrategyVersion:
        raise unknown_strategy(strategy_id, version)


def sweep_grid(count: int) -> dict[str, list[int]]:
    slow = [50 + 2 * k for k in range(-(-count // len(FAST)))]
    return {"fast": FAST, "slow": slow}


def chunk_ranges(total: int, size: int) -> list[tuple[int, int]]:
    return [(first, min(first + size, total)) for first in range(0, total, size)]


# ----------------------------------------------------------------------------- the ceiling


def run_chunk(
    plan_bytes: bytes, bars: Bars, config_json: str, graph: dict[str, Any], grid: Any, span: Any
) -> int:
    """One chunk as a worker's pool process runs it (the combinations regenerated from the
    search space, as a worker does)."""
    plan = compile_graph(graph)
    combos = combinations(plan, SearchSpace(parameters=grid)).slice(*span)
    return len(execution.run_combinations(plan_bytes, bars, config_json, combos, None, "sharpe"))


@dataclass
class Ceiling:
    one: float  # combinations/s, chunks one after another in this process
    pooled: float  # combinations/s, chunks spread over a pool of one process per CPU
    rest_one: float  # cores the rest of the machine kept busy meanwhile
    rest_pooled: float


def ceiling(bars: Bars, grid: dict[str, list[int]], chunk: int, runs: int) -> Ceiling:
    """The chunks run one after another in this process, and spread over a pool of one process
    per CPU; no Kafka, no database."""
    graph = sma_cross()
    plan = compile_graph(graph)
    total = len(combinations(plan, SearchSpace(parameters=grid)))
    spans = chunk_ranges(total, chunk)
    config_json = BacktestConfig.model_validate({**CONFIG, "timeframe": "4h"}).model_dump_json()
    plan_bytes = plan.to_bytes()

    def one_process() -> None:
        for span in spans:
            run_chunk(plan_bytes, bars, config_json, graph, grid, span)

    meter = CpuMeter({"bench": lambda: with_children(os.getpid())})
    execution.warm_up()
    one_process()  # warm-up, not counted
    before = meter.snapshot()
    one = [timed(one_process) for _ in range(runs)]
    rest_one = meter.cores(before, sum(one))[REST]
    cpus = os.cpu_count() or 1
    with ProcessPoolExecutor(cpus, get_context("spawn"), initializer=execution.warm_up) as pool:

        def pooled() -> None:
            futures = [
                pool.submit(run_chunk, plan_bytes, bars, config_json, graph, grid, span)
                for span in spans
            ]
            assert sum(f.result() for f in futures) == total

        pooled()
        before = meter.snapshot()
        many = [timed(pooled) for _ in range(runs)]
        rest_pooled = meter.cores(before, sum(many))[REST]
    return Ceiling(
        total / statistics.median(one), total / statistics.median(many), rest_one, rest_pooled
    )


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- CPU accounting


REST = "rest of the machine"


class CpuMeter:
    """CPU seconds (user + system) each component's processes used, and what the rest of the
    machine used (other processes, the hypervisor's steal): a bench that shares its cores
    with a test run says so."""

    def __init__(self, components: dict[str, Callable[[], list[int]]]) -> None:
        self._components = components

    def snapshot(self) -> dict[str, float]:
        used = {name: _cpu_seconds(pids()) for name, pids in self._components.items()}
        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system
        busy += sum(getattr(machine, f, 0.0) for f in ("irq", "softirq", "steal"))
        used[REST] = busy - sum(used.values())
        return used

    def cores(self, before: dict[str, float], seconds: float) -> dict[str, float]:
        """Cores each component kept busy since ``before``, ``seconds`` of wall time ago."""
        after = self.snapshot()
        # Clamped: the machine's and the processes' counters are read a moment apart.
        return {k: max(0.0, after[k] - before[k]) / seconds for k in after}


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def with_children(pid: int) -> list[int]:
    try:
        proc = psutil.Process(pid)
        return [pid, *(child.pid for child in proc.children(recursive=True))]
    except psutil.Error:
        return []


def postgres_pids(state: Path) -> Callable[[], list[int]]:
    """The embedded server's postmaster and backends; else every ``postgres`` process here."""
    pid_file = state / "pgdata" / "postmaster.pid"

    def pids() -> list[int]:
        if pid_file.exists():
            return with_children(int(pid_file.read_text().split()[0]))
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]

    return pids


# ----------------------------------------------------------------------------- the platform


@dataclass
class Platform:
    """The infrastructure, the service app in this process and a client that calls it."""

    state: Path
    kafka: Provided
    postgres: Provided
    settings: Settings
    client: httpx.AsyncClient
    headers: dict[str, str]


async def start_platform(stack: contextlib.AsyncExitStack, chunk: int) -> Platform:
    """Embedded PostgreSQL (a fresh database, migrated), Kafka (the topic table under a fresh
    prefix) and S3, and the backtesting service app; ``stack`` stops all of it."""
    state = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    stack.callback(shutil.rmtree, state, ignore_errors=True)
    postgres = provide_postgres(state, os.environ.get("DATABASE_URL"), allow_local=True)
    stack.callback(postgres.stop)
    kafka = provide_kafka(state, os.environ.get("KAFKA_BOOTSTRAP"), cache_root=ROOT / ".algotrade")
    stack.callback(kafka.stop)
    s3 = provide_s3(state, os.environ.get("S3_ENDPOINT"))
    stack.callback(s3.stop)
    print(
        f"\nbroker:   {'STAND-IN, not the real broker: ' if kafka.stand_in else ''}{kafka.source}"
    )
    print(f"postgres: {postgres.source}")
    print(f"s3:       {s3.source}", flush=True)

    name = f"bench_sweep_{uuid.uuid4().hex[:8]}"
    database_url = asyncpg_url(await ensure_database(postgres.url, name))

    stack.push_async_callback(drop_database, postgres.url, name)
    await upgrade(database_url, "backtesting_service", "backtest")
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(kafka.url, prefix)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="local",
        log_level="WARNING",
        database_url=database_url,
        kafka_bootstrap=kafka.url,
        kafka_topic_prefix=prefix,
        s3_endpoint=s3.url,
        s3_bucket=f"bench-{uuid.uuid4().hex[:8]}",
        **InstallationKeys.generate().settings_values("gateway"),  # this run's own keys
        sweep_chunk_size=chunk,
        worker_group_id=f"bench-workers-{uuid.uuid4().hex[:8]}",
    )
    csv = CsvBarSource({("BTC-USD", "4h"): DATA / "btc-usd-4h.csv"})
    app = create_app(settings, strategies=NoStoredStrategies(), bars=csv)
    client = await stack.enter_async_context(serve_in_process(app, timeout_seconds=120))
    headers = {"Authorization": f"Bearer {internal_token(settings, 'bench', ALL_SCOPES)}"}
    return Platform(state, kafka, postgres, settings, client, headers)


class WorkerGroup:
    """Worker processes in the platform's consumer group, added one at a time."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._env = {**os.environ, **settings_env(platform.settings), "FETCH_DELAY_MS": "0"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    async def add(self) -> None:
        """Start one more worker and wait until the group is stable with all of them."""
        name = f"worker-{len(self.procs) + 1}"
        self.logs[name] = self._platform.state / "logs" / f"{name}.log"
        self.procs[name] = spawn(
            [sys.executable, str(WORKER_SCRIPT)],
            self.logs[name],
            env={**self._env, "WORKER_NAME": name},
        )
        settings = self._platform.settings
        try:
            await wait_group(
                settings.kafka_bootstrap,
                settings.worker_group_id,
                members=len(self.procs),
                within=180,
            )
        except AssertionError:
            print(tail(self.logs[name]))
            raise

    def stop(self) -> None:
        for proc in self.procs.values():
            terminate(proc)

    def pids(self) -> list[int]:
        return [pid for proc in self.procs.values() for pid in with_children(proc.pid)]

    async def chunk_lines(self, job_id: str, chunks: int) -> list[list[dict[str, Any]]]:
        """Per worker, its log lines about ``job_id``'s chunks (started, then stored with the
        chunk's fetch/run/store milliseconds); the last line may land a moment after the job
        shows completed."""
        deadline = time.monotonic() + 5
        while True:
            lines = [_chunk_lines(log, job_id) for log in self.logs.values()]
            stored = sum(1 for ls in lines for e in ls if e["message"] in STORED)
            if stored >= chunks or time.monotonic() > deadline:
                return lines
            await asyncio.sleep(0.05)


def _chunk_lines(log: Path, job_id: str) -> list[dict[str, Any]]:
    out = []
    if log.exists():
        for line in log.read_bytes().splitlines():
            if line.startswith(b"{") and job_id.encode() in line:
                entry = orjson.loads(line)
                if entry.get("job_id") == job_id and entry.get("message", "").startswith("chunk "):
                    entry["at"] = datetime.fromisoformat(entry["ts"]).timestamp()
                    out.append(entry)
    return out


@dataclass
class WorkerTimes:
    """Where a worker's time went, from its log lines over the timed sweeps."""

    run: list[float] = field(default_factory=list)  # ms computing a chunk (pool round trip)
    store: list[float] = field(default_factory=list)  # ms storing a chunk's results
    handled: list[float] = field(default_factory=list)  # ms from "started" to "stored"
    between: list[float] = field(default_factory=list)  # ms from one "stored" to next "started"
    busy: list[float] = field(default_factory=list)  # share of the wall from first to last chunk

    def add(self, lines: list[dict[str, Any]], wall: float) -> int:
        """One worker's lines of one sweep; returns how many chunks it stored."""
        started: float | None = None
        last_stored: float | None = None
        first = lines[0]["at"] if lines else None
        count = 0
        for entry in lines:
            if entry["message"] == "chunk started":
                started = entry["at"]
                if last_stored is not None:
                    self.between.append(1000 * (started - last_stored))
            elif entry["message"] in STORED and started is not None:
                count += 1
                last_stored = entry["at"]
                self.handled.append(1000 * (last_stored - started))
                self.run.append(float(entry["run_ms"]))
                self.store.append(float(entry["store_ms"]))
        if first is not None and last_stored is not None:
            self.busy.append((last_stored - first) / wall)
        return count


async def run_sweep(platform: Platform, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Submit ``body`` and poll every 20 ms until the job completes; seconds from submission."""
    client, headers = platform.client, platform.headers
    started = time.perf_counter()
    response = await client.post("/api/backtests/sweeps", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    while True:
        job: dict[str, Any] = (await client.get(f"/api/backtests/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        if time.perf_counter() - started > 600:
            raise TimeoutError(f"sweep {job_id} not done after 600 s: {job}")
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    assert job["status"] == "completed", job
    return elapsed, job


@dataclass
class Measured:
    rate: float  # combinations/s of the median run
    cores: dict[str, float]  # CPU cores each component kept busy during the timed runs
    times: WorkerTimes
    busiest: float  # median share of a sweep's chunks stored by the busiest worker


async def measure(
    platform: Platform, workers: WorkerGroup, meter: CpuMeter, body: dict[str, Any], args: Any
) -> Measured:
    total, chunks = body_size(body, args.chunk)
    await run_sweep(platform, body)  # warm-up (connections, caches), not counted
    seconds: list[float] = []
    busiest: list[float] = []
    times = WorkerTimes()
    before = meter.snapshot()
    for run in range(1, args.runs + 1):
        elapsed, job = await run_sweep(platform, body)
        assert (job["combinations"], job["chunks_done"]) == (total, chunks), job
        seconds.append(elapsed)
        lines = await workers.chunk_lines(job["id"], chunks)
        stored = [times.add(worker_lines, elapsed) for worker_lines in lines]
        busiest.append(max(stored) / chunks)
        print(
            f"  run {run}: {elapsed:6.2f} s  {total / elapsed:>7,.0f} combinations/s  "
            f"(chunks stored per worker: {'/'.join(map(str, stored))})",
            flush=True,
        )
    cores = meter.cores(before, sum(seconds))
    return Measured(total / statistics.median(seconds), cores, times, statistics.median(busiest))


def body_size(body: dict[str, Any], chunk: int) -> tuple[int, int]:
    grid = body["search"]["parameters"]
    total = len(grid["fast"]) * len(grid["slow"])
    return total, -(-total // chunk)


async def main(args: argparse.Namespace) -> None:
    cpus = os.cpu_count() or 1
    print(
        f"bench_sweep_scaling: os.cpu_count() = {cpus}, load average "
        f"{os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    bars = Bars.from_csv(DATA / "btc-usd-4h.csv")
    grid = sweep_grid(args.combinations)
    body = {
        "graph": sma_cross(),
        "symbol": "BTC-USD",
        "timeframe": "4h",
        "start": "2015-01-01T00:00:00Z",
        "end": "2030-01-01T00:00:00Z",
        "config": CONFIG,
        "search": {"parameters": grid},
        "metric": "sharpe",
    }
    total, chunks = body_size(body, args.chunk)
    print(
        f"sweep: sma_cross, {len(grid['fast'])} fast x {len(grid['slow'])} slow = {total:,} "
        f"combinations on {len(bars):,} 4h BTC-USD bars, chunks of {args.chunk} "
        f"({chunks} messages over the 6 partitions of backtest.jobs.v1)",
        flush=True,
    )

    top = ceiling(bars, grid, args.chunk, args.runs)
    one, pooled = top.one, top.pooled
    print(f"\nceiling: execution.run_combinations in this process, no Kafka/DB ({args.runs} runs)")
    print(
        f"  one process, chunk after chunk:    {one:>7,.0f} combinations/s  [per process]  "
        f"(rest of the machine busy meanwhile: {top.rest_one:.2f} cores)"
    )
    print(
        f"  pool of {cpus} processes, same chunks: {pooled:>7,.0f} combinations/s  "
        f"({pooled / one:.2f}x one process: this machine's ceiling)  (rest of the machine: "
        f"{top.rest_pooled:.2f} cores)"
    )
    print(
        f"  (the issue, on a quiet machine: ~{ISSUE_ONE:,}/s one process, ~{ISSUE_POOL:,}/s a "
        "pool of 2)",
        flush=True,
    )

    results: dict[int, Measured] = {}
    async with contextlib.AsyncExitStack() as stack:
        platform = await start_platform(stack, args.chunk)
        workers = WorkerGroup(platform)
        stack.callback(workers.stop)
        components: dict[str, Callable[[], list[int]]] = {"workers (+ pools)": workers.pids}
        broker = platform.kafka.handle  # the embedded broker's JVM, when this bench runs one
        if broker is not None:
            components["broker (JVM)"] = lambda: (
                with_children(broker.proc.pid) if broker.proc else []
            )
        components["postgres"] = postgres_pids(platform.state)
        components["service app + bench (this process)"] = lambda: [os.getpid()]
        meter = CpuMeter(components)
        most = args.workers
        if platform.kafka.stand_in:
            print("  the mock cluster runs one member per group: only 1 worker is measured")
            most = 1
        for count in range(1, most + 1):
            await workers.add()
            print(
                f"\n{count} worker process{'es' if count > 1 else ''}, pool of 1 each", flush=True
            )
            results[count] = measured = await measure(platform, workers, meter, body, args)
            print(
                f"  median: {measured.rate:>7,.0f} combinations/s  "
                f"({measured.rate / results[1].rate:.2f}x 1 worker, "
                f"{measured.rate / one:.2f}x the one-process ceiling)"
            )
            t = measured.times
            print(
                f"  per chunk (medians of the worker logs): handled in "
                f"{statistics.median(t.handled):.0f} ms (run {statistics.median(t.run):.0f}, store "
                f"{statistics.median(t.store):.0f}, the rest job checks), then "
                f"{statistics.median(t.between):.0f} ms to the next one (offset commit, next "
                f"message); a worker spent {statistics.fmean(t.busy):.0%} of the wall time "
                "between its first and last chunk"
            )
            ours = {k: v for k, v in measured.cores.items() if k != REST}
            print(
                "  CPU cores busy during the timed runs: "
                + ", ".join(f"{k} {v:.2f}" for k, v in ours.items())
                + f"; this bench in all {sum(ours.values()):.2f}, the rest of the machine "
                f"{measured.cores[REST]:.2f}, of {cpus}",
                flush=True,
            )

    print(f"\nsummary: {total:,} combinations, median of {args.runs} runs each")
    print(f"  {'in-process, one process (ceiling)':<40} {one:>7,.0f} combinations/s")
    print(f"  {f'in-process, pool of {cpus} (machine ceiling)':<40} {pooled:>7,.0f} combinations/s")
    for count, measured in results.items():
        label = f"{count} worker process{'es' if count > 1 else ''} via Kafka"
        print(
            f"  {label:<40} {measured.rate:>7,.0f} combinations/s  "
            f"({measured.rate / results[1].rate:.2f}x 1 worker)"
        )
    explain(cpus, one, pooled, results)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def explain(cpus: int, one: float, pooled: float, results: dict[int, Measured]) -> None:
    """What limits the scaling here, in figures just measured."""
    first, last = results[1], results[max(results)]
    ours = {k: v for k, v in last.cores.items() if k != REST}
    rest = sum(v for k, v in ours.items() if not k.startswith("workers"))
    count = max(results)
    cpu_line = (
        f"CPUs: os.cpu_count() is {cpus}. With {count} worker{'s' if count > 1 else ''} every "
        f"component together kept {sum(ours.values()):.2f} of {cpus} cores busy (workers "
        f"and their pools {last.cores['workers (+ pools)']:.2f}; broker, PostgreSQL and the "
        f"service app {rest:.2f}; the rest of the machine {last.cores[REST]:.2f} more)"
    )
    if count > 1:
        cpu_line += (
            f", and running a chunk took {statistics.median(last.times.run):.0f} ms against "
            f"{statistics.median(first.times.run):.0f} ms with one worker"
        )
    if count > cpus:
        cpu_line += f": workers beyond {cpus} time-slice the same cores"
    cpu_line += f"; nothing here can pass the in-process pool's {pooled:,.0f}/s."
    lines = [
        cpu_line,
        f"One worker with a pool of 1 reaches {first.rate / one:.0%} of the one-process ceiling: "
        "it handles one message at a time, so its pool idles while it stores a chunk "
        f"({statistics.median(first.times.store):.0f} ms) and checks the job, and between "
        f"chunks ({statistics.median(first.times.between):.0f} ms: offset commit, next "
        f"message), against {statistics.median(first.times.run):.0f} ms running one (pool "
        f"round trip included); outside its first-to-last chunk span "
        f"({1 - statistics.fmean(first.times.busy):.0%} of the wall) are submission, the "
        "outbox relay and Kafka delivering the first message, and the status poll.",
    ]
    if len(results) > 1:
        lines.append(
            "Chunks reach partitions by key hash, and a member only works its own partitions: "
            + ", ".join(
                f"with {n} workers the busiest stored {m.busiest:.0%} of the chunks "
                f"(caps the speed-up at {1 / m.busiest:.2f}x)"
                for n, m in results.items()
                if n > 1
            )
            + "."
        )
    lines.append(
        "A second machine brings its own cores: each worker there should add about the "
        f"one-worker rate ({first.rate:,.0f}/s) while there are partitions to spread (6, so at "
        "most 6 busy members) and the skew allows; the broker and PostgreSQL used "
        f"{last.cores.get('broker (JVM)', 0.0) + last.cores['postgres']:.2f} cores here, far "
        "from being the limit at this scale."
    )
    print("\nwhat limits it:")
    for line in lines:
        print(f"  - {line}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combinations", type=int, default=4000, help="sweep size (>= 2,000)")
    parser.add_argument("--chunk", type=int, default=100, help="combinations per message")
    parser.add_argument("--runs", type=int, default=3, help="timed sweeps per worker count")
    parser.add_argument("--workers", type=int, default=3, help="most worker processes")
    asyncio.run(main(parser.parse_args()))
