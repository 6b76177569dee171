"""Scale-out on a real Apache Kafka broker: a consumer group of backtest worker processes.

Three worker processes (``scale_out_worker.py``: the real `Worker`, bars from CSV) share a
sweep of 1,040 combinations in 26 chunks over the six partitions of ``backtest.jobs.v1``. One
of them is killed with SIGKILL while a chunk is in its hands; the group rebalances, a survivor
redoes that chunk from the last committed offset, and the ranking equals a one-worker run's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from algotrade.topics import ensure_topics
from algotrade_devstack.infra import spawn, terminate
from algotrade_testkit.kafka import wait_group
from algotrade_testkit.services import settings_env
from backtesting_service.config import Settings

from .conftest import Service

WORKER_SCRIPT = Path(__file__).with_name("scale_out_worker.py")
GRID = {"fast": list(range(2, 42)), "slow": list(range(50, 102, 2))}  # 40 x 26 = 1,040
CHUNK = 40
STORED = {"chunk stored", "chunk completed"}


@pytest.fixture
def settings(make_settings: Callable[..., Any], migrated: str) -> Settings:
    """This module's sweeps are cut into chunks of 40 combinations."""
    built: Settings = make_settings(
        Settings,
        sweep_chunk_size=CHUNK,
        worker_group_id=f"workers-{uuid.uuid4().hex[:8]}",
        strategy_service_url="http://strategy.test",
        market_data_service_url="http://market.test",
    )
    return built


def chunk_lines(log: Path, job_id: str) -> list[tuple[str, int]]:
    """``(message, chunk)`` of the worker's log lines about ``job_id``'s chunks, in order."""
    out = []
    if not log.exists():
        return out
    for line in log.read_bytes().splitlines():
        if not line.startswith(b"{"):
            continue
        entry = orjson.loads(line)
        if entry.get("job_id") == job_id and entry.get("message", "").startswith("chunk "):
            out.append((entry["message"], int(entry["chunk"])))
    return out


def in_flight(lines: list[tuple[str, int]]) -> int | None:
    """The chunk a worker started last and has not settled, if any."""
    open_chunks = {c for m, c in lines if m == "chunk started"}
    open_chunks -= {c for m, c in lines if m != "chunk started"}
    return max(open_chunks) if open_chunks else None


async def ranking(service: Service, job_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = (
            await service.get(
                f"/api/backtests/sweeps/{job_id}/results",
                params={"sort": "sharpe", "offset": len(rows), "limit": 1000},
            )
        ).json()
        rows.extend(page["results"])
        if len(rows) >= page["total"]:
            return rows


async def test_three_worker_processes_share_a_sweep_and_redo_the_chunk_of_a_killed_member(
    service: Service,
    settings: Settings,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    await ensure_topics(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    env = {**os.environ, **settings_env(settings), "FETCH_DELAY_MS": "300"}
    logs = {f"worker-{k}": tmp_path / f"worker-{k}.log" for k in (1, 2, 3)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    body = request_body(
        symbol="BTC-USD",
        timeframe="4h",
        start="2015-01-01T00:00:00Z",
        end="2030-01-01T00:00:00Z",
        search={"parameters": GRID},
        metric="sharpe",
    )
    try:
        for name, log in logs.items():
            procs[name] = spawn(
                [sys.executable, str(WORKER_SCRIPT)], log, env={**env, "WORKER_NAME": name}
            )
        await wait_group(settings.kafka_bootstrap, settings.worker_group_id, members=3, within=120)

        job = (await service.submit_sweep(body)).json()
        assert (job["combinations"], job["chunks_total"]) == (1040, 26)

        # Once every member has stored a chunk, kill one that holds an unsettled chunk.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        doomed, held = None, None
        while doomed is None:
            assert loop.time() < deadline, {n: chunk_lines(p, job["id"]) for n, p in logs.items()}
            lines = {name: chunk_lines(log, job["id"]) for name, log in logs.items()}
            if all(any(m in STORED for m, _ in ls) for ls in lines.values()):
                for name, ls in lines.items():
                    if (chunk := in_flight(ls)) is not None:
                        doomed, held = name, chunk
                        os.killpg(procs[name].pid, signal.SIGKILL)  # the worker and its pool
                        procs[name].wait(10)
                        break
            await asyncio.sleep(0.01)

        done = await service.wait_status(job["id"], "completed", "failed", within=120)
        assert done["status"] == "completed", done["error"]
    finally:
        for proc in procs.values():
            terminate(proc)

    lines = {name: chunk_lines(log, job["id"]) for name, log in logs.items()}
    # The killed member never settled the chunk it held; a survivor did.
    assert in_flight(lines[doomed]) == held, lines[doomed]
    redone_by = [
        n
        for n, ls in lines.items()
        if (m := [x for x, c in ls if c == held]) and any(x in STORED for x in m)
    ]
    assert redone_by and doomed not in redone_by
    # Every chunk's results were stored exactly once, by whichever member settled it.
    stored = Counter(c for ls in lines.values() for m, c in ls if m in STORED)
    assert stored == Counter(range(26)), stored
    assert all(any(m in STORED for m, _ in ls) for ls in lines.values())  # each member worked
    assert done["chunks_done"] == 26
    three = await ranking(service, job["id"])
    assert len(three) == 1040

    # The same sweep on one worker ranks the same combinations with the same metrics.
    alone = (await service.submit_sweep(body)).json()
    async with start_worker():
        reference = await service.wait_status(alone["id"], "completed", "failed", within=120)
    assert reference["status"] == "completed", reference["error"]
    one = await ranking(service, alone["id"])
    assert one == three
    assert reference["summary"]["best"] == done["summary"]["best"]


async def test_a_worker_killed_with_sigkill_leaves_no_pool_process_behind(
    settings: Settings, tmp_path: Path
) -> None:
    """Only the worker's own pid is killed, as the OOM killer or ``kill -9 <pid>`` would."""
    import psutil

    env = {**os.environ, **settings_env(settings)}
    proc = spawn([sys.executable, str(WORKER_SCRIPT)], tmp_path / "worker.log", env=env)
    try:
        await wait_group(settings.kafka_bootstrap, settings.worker_group_id, members=1, within=120)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 1  # the warm pool (and multiprocessing's resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    finally:
        terminate(proc)
