"""Two forward-test worker processes in one consumer group on a real Apache Kafka broker; one
is killed with SIGKILL in the middle of the stream. The survivor takes its series over,
restores their sessions from the checkpoints, and every session still ends exactly as the
backtest of its bars."""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from algotrade.bars import series_key
from algotrade.engine import compile_graph
from algotrade.topics import ensure_topics
from algotrade_devstack.infra import spawn, terminate
from algotrade_testkit.kafka import wait_group
from algotrade_testkit.services import settings_env
from forward_test_service.config import Settings

from .conftest import Platform, btc_bars, session_body
from .test_replay import backtest_of, session_trades

WORKER_SCRIPT = Path(__file__).with_name("scale_out_worker.py")
SYMBOLS = ("FTKA", "FTKB", "FTKE", "FTKF")  # partitions 7, 3, 10 and 0 of 12
BARS = 200


def assigned(log: Path) -> set[int]:
    """The partitions of ``market.bars.v1`` the worker was given last."""
    lines = [line for line in log.read_text().splitlines() if "partitions assigned" in line]
    return {int(n) for n in re.findall(r"market\.bars\.v1\[(\d+)\]", lines[-1])} if lines else set()


def partition_of(symbol: str) -> int:
    """Where Kafka's default partitioner puts alice's series (as the producer does)."""
    key = series_key(symbol, "4h", "alice").encode()
    return int(DefaultPartitioner()(key, list(range(12)), list(range(12))))


@pytest.fixture
def settings(make_settings: Callable[..., Any], settings: Settings) -> Settings:
    """A consumer group of this test's own."""
    return settings.model_copy(update={"worker_group_id": f"fwd-{uuid.uuid4().hex[:8]}"})


async def test_two_workers_one_killed_mid_stream_every_session_equals_its_backtest(
    platform: Platform, graph: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    settings = platform.settings
    await ensure_topics(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    strategy = graph(5, 20)
    warmup = compile_graph(strategy).warmup
    strategy_id = await platform.save_strategy(strategy)
    series = {s: btc_bars(BARS, first=500 + 700 * k) for k, s in enumerate(SYMBOLS)}
    sessions = {}
    for symbol, bars in series.items():
        await platform.push(symbol, "4h", bars.slice(0, warmup))
        created = await platform.start(session_body(strategy_id, symbol))
        assert created.status_code == 201, created.text
        sessions[symbol] = created.json()["id"]

    env = {**os.environ, **settings_env(settings)}
    logs = {f"worker-{k}": tmp_path / f"worker-{k}.log" for k in (1, 2)}
    procs = {}
    try:
        for name, log in logs.items():
            procs[name] = spawn(
                [sys.executable, str(WORKER_SCRIPT)], log, env={**env, "WORKER_NAME": name}
            )
        await wait_group(settings.kafka_bootstrap, settings.worker_group_id, members=2, within=120)
        half = warmup + (BARS - warmup) // 2
        for start in range(warmup, half, 5):
            for symbol, bars in series.items():
                await platform.push(symbol, "4h", bars.slice(start, min(start + 5, half)))
        for symbol in SYMBOLS:
            await platform.wait_bars(sessions[symbol], half)
        # kill -9 a member that holds sessions: no commit, no checkpoint copy, no goodbye.
        wanted = {partition_of(symbol) for symbol in SYMBOLS}
        holding = {n: assigned(log) & wanted for n, log in logs.items()}
        assert all(holding.values()), f"both members should hold series: {holding}"
        doomed = "worker-1"
        survivor = "worker-2"
        restored_before = logs[survivor].read_bytes().count(b"restoring")
        os.killpg(procs[doomed].pid, signal.SIGKILL)
        procs[doomed].wait(10)
        for start in range(half, BARS, 5):
            for symbol, bars in series.items():
                await platform.push(symbol, "4h", bars.slice(start, min(start + 5, BARS)))
        for symbol in SYMBOLS:
            await platform.wait_bars(sessions[symbol], BARS, within=120)
        # The survivor restored the killed member's sessions from their checkpoints.
        assert logs[survivor].read_bytes().count(b"restoring") > restored_before
    finally:
        for proc in procs.values():
            terminate(proc)

    for symbol, bars in series.items():
        session = (await platform.get(f"/api/sessions/{sessions[symbol]}")).json()
        closed, final_equity, held = backtest_of(strategy, bars)
        assert await session_trades(platform, sessions[symbol]) == closed, symbol
        assert session["equity"] == final_equity, symbol
        assert session["position"] == held, symbol
        assert session["bars_applied"] == BARS and session["gaps"] == 0, symbol
