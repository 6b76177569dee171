"""The chaos run: the embedded stack under steady load while every process is killed in turn.

One run per module (`chaos_run`), several tests reading its evidence. The load is what users
and agents do: an agent pushes bars (one a bar, each with a new open time), a user submits
backtests and polls them, reads the latest window and follows a forward-test session that
trades the pushed bars. Each answer is recorded with the fault
in progress when the request left. The faults come one after another: ``kill -9`` of each
service and of the backtest worker, each time waiting for the supervisor to bring it back,
then ``kill -9`` of Redis, PostgreSQL and the Kafka broker, which the stack starts again on the
same port and data (`algotrade_devstack.stack.Stack.supervise_infra`). Then the load stops,
the platform is given time to catch up, and the evidence is gathered: history, the topics,
the jobs, the session next to a backtest of the bars it traded, and, once the stack has
stopped, what processes are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from algotrade.backtest_events import BacktestCompleted, BacktestFailed
from algotrade.bars import MarketBarsPayload
from algotrade.events import default_registry
from algotrade_devstack.infra import tail
from algotrade_devstack.stack import SERVICES
from algotrade_testkit.kafka import read_all
from algotrade_testkit.stack import RunningStack, start_stack

REPO = Path(__file__).resolve().parents[2]

SYMBOL = f"CHAOS-{uuid.uuid4().hex[:6].upper()}"
TIMEFRAME = "1m"
SEED_BARS = 300  # history the backtests run over, pushed before the faults
FIRST_OPEN = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
PUSH_EVERY = 0.2  # seconds between bar pushes: one agent's steady feed
SUBMIT_EVERY = 2.0  # seconds between backtest submissions
READ_EVERY = 0.5  # seconds between reads of the window and of a job

BACK_WITHIN = 60.0  # a killed process must be back (and ready) within this
CATCH_UP_WITHIN = 90.0  # after the load stops: jobs finished, events on Kafka
REQUEST_TIMEOUT = 10.0
SESSION_CONFIG = {"fee_bps": 1.0, "slippage_bps": 1.0, "calendar": "24x7"}
CAPITAL = 100_000

# The load spends more than one user's default budget (300 writes, 30 submissions a minute).
# Limits are not what this suite is about; their fail-open/closed policies stay as shipped.
RATE_LIMITS = {
    "read": {"limit": 6000, "period_seconds": 60, "fail_open": True},
    "write": {"limit": 6000, "period_seconds": 60, "fail_open": True},
    "backtest_submit": {"limit": 600, "period_seconds": 60, "fail_open": False},
}

PROBLEM_JSON = "application/problem+json"


def bar_open(index: int) -> int:
    return FIRST_OPEN + 60 * index


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar(index: int) -> dict[str, Any]:
    close = 100.0 + 10.0 * ((index * 7919) % 97) / 97  # a deterministic zig-zag
    return {
        "ts": iso(bar_open(index)),
        "open": close - 0.5,
        "high": close + 1.0,
        "low": close - 1.0,
        "close": close,
        "volume": 10.0,
    }


@dataclass(frozen=True)
class Exchange:
    """One request of the load and what came back (``status`` None: no HTTP answer)."""

    phase: str  # the fault in progress when the request left
    answered_in: str  # ... and when its answer (or its failure) came
    method: str
    route: str
    status: int | None
    content_type: str
    detail: str  # the problem's code and detail, or the transport error


@dataclass
class ChaosRun:
    """What the run saw, for the tests to judge."""

    symbol: str
    exchanges: list[Exchange]
    accepted_bars: dict[str, str]  # open times of the bars answered ``accepted``: their phase
    accepted_jobs: set[str]
    faults: list[tuple[str, float]]  # each fault and how long until it was healed
    job_statuses: dict[str, str]
    history: set[str]
    kafka_bars: set[str]
    completions: dict[str, set[str]]  # job id -> ids of its backtest.completed events
    completion_records: Counter[str]  # job id -> backtest.completed records (with redeliveries)
    failures: dict[str, str]  # job id -> the error of a backtest.failed event
    session: dict[str, Any]  # the forward-test session once it applied the last stored bar
    session_expected_bars: int  # the bars it should have applied: warm-up and every later one
    session_trades: list[dict[str, Any]]
    session_bars: set[str]  # open times of the bars it applied (its equity curve)
    replayed: dict[str, Any]  # a backtest of the bars the session traded
    replayed_trades: list[dict[str, Any]]
    exit_code: int
    output_tail: str
    leftovers: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # seconds since the test began
    waits: dict[str, float] = field(default_factory=dict)  # how long each catch-up took


class Load:
    """The steady load, as concurrent loops on one HTTP client through the gateway."""

    def __init__(
        self, gateway: str, token: str, strategy: dict[str, Any], session: dict[str, Any]
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=gateway,
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT,
            # Idle connections are dropped before uvicorn's 5 s keep-alive ends them: a request
            # sent on one just as the server closes it fails with no answer, in any weather.
            limits=httpx.Limits(keepalive_expiry=2.0),
        )
        self.strategy = strategy
        self.session = session
        self.phase = "warm-up"
        self.exchanges: list[Exchange] = []
        self.accepted_bars: dict[str, str] = {}
        self.accepted_jobs: list[str] = []
        self.next_bar = SEED_BARS
        self.stopping = asyncio.Event()

    async def send(self, method: str, url: str, route: str, **kwargs: Any) -> httpx.Response | None:
        phase = self.phase
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.exchanges.append(
                Exchange(phase, self.phase, method, route, None, "", type(exc).__name__)
            )
            return None
        content_type = response.headers.get("content-type", "")
        detail = ""
        if response.status_code >= 400:
            detail = response.text[:300]
            if content_type.startswith(PROBLEM_JSON):
                with contextlib.suppress(ValueError):
                    problem = response.json()
                    detail = f"{problem.get('code')}: {problem.get('detail')}"
        self.exchanges.append(
            Exchange(phase, self.phase, method, route, response.status_code, content_type, detail)
        )
        return response

    async def every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            await step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), max(0.0, seconds - (time.monotonic() - started))
                )

    async def push_bar(self) -> None:
        index, self.next_bar = self.next_bar, self.next_bar + 1
        body = {"symbol": SYMBOL, "timeframe": TIMEFRAME, "bars": [bar(index)]}
        response = await self.send("POST", "/api/market/bars", "POST /api/market/bars", json=body)
        accepted = response is not None and response.status_code == 200
        if accepted and response.json()["statuses"] == ["accepted"]:  # type: ignore[union-attr]
            self.accepted_bars[iso(bar_open(index))] = self.phase

    async def submit_backtest(self) -> None:
        response = await self.send(
            "POST", "/api/backtests", "POST /api/backtests", json=backtest_request(self.strategy)
        )
        if response is not None and response.status_code == 202:
            self.accepted_jobs.append(response.json()["id"])

    async def read(self) -> None:
        await self.send(
            "GET",
            f"/api/market/symbols/{SYMBOL}/latest",
            "GET /api/market/symbols/{symbol}/latest",
            params={"timeframe": TIMEFRAME, "limit": 50},
        )
        if self.accepted_jobs:
            job = self.accepted_jobs[len(self.exchanges) % len(self.accepted_jobs)]
            await self.send("GET", f"/api/backtests/{job}", "GET /api/backtests/{id}")
        await self.send("GET", f"/api/sessions/{self.session['id']}", "GET /api/sessions/{id}")

    async def run(self) -> None:
        await asyncio.gather(
            self.every(PUSH_EVERY, self.push_bar),
            self.every(SUBMIT_EVERY, self.submit_backtest),
            self.every(READ_EVERY, self.read),  # the forward-test session's state too
        )


def backtest_request(strategy: dict[str, Any]) -> dict[str, Any]:
    return {
        "strategy_id": strategy["id"],
        "version": strategy["current_version"],
        "symbol": SYMBOL,
        "timeframe": TIMEFRAME,
        "start": iso(bar_open(0)),
        "end": iso(bar_open(SEED_BARS)),
        "config": {"initial_capital": 100_000, "fee_bps": 1.0, "slippage_bps": 1.0},
    }


async def until(
    what: str, check: Callable[[], Awaitable[bool]], within: float, context: Callable[[], str]
) -> float:
    """Poll ``check`` until it holds; return how long that took, or fail naming ``what``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"{what} not within {within:.0f}s\n{context()}")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


class Faults:
    """Kills the stack's processes one at a time, from the pids in its status file."""

    def __init__(self, stack: RunningStack, load: Load) -> None:
        self.stack = stack
        self.load = load
        self.healed: list[tuple[str, float]] = []
        self.seen_pids: set[int] = set()

    def context(self) -> str:
        return f"status: {json.dumps(self.stack.status(), indent=1)}\n{tail(self.stack.output, 30)}"

    def note_pids(self) -> None:
        """Everything of the stack alive now, so that what outlives it can be named later;
        taken before each kill, while a worker's pool processes are still its children."""
        self.seen_pids |= self.stack.children()
        for piece in self.stack.status()["infrastructure"]:
            if (pid := piece.get("pid")) is not None:
                self.seen_pids.add(pid)
                with contextlib.suppress(psutil.Error):
                    kids = psutil.Process(pid).children(recursive=True)
                    self.seen_pids |= {kid.pid for kid in kids}

    async def kill_child(self, name: str) -> None:
        before = next(c for c in self.stack.status()["children"] if c["name"] == name)
        want = "running" if before["url"] == "(worker)" else "ready"

        async def back() -> bool:
            child = next(c for c in self.stack.status()["children"] if c["name"] == name)
            return (
                child["restarts"] > before["restarts"]
                and child["pid"] != before["pid"]
                and child["state"] == want
            )

        await self.kill(f"kill -9 {name}", before["pid"], back)

    async def kill_infra(self, name: str) -> None:
        before = next(p for p in self.stack.status()["infrastructure"] if p["name"] == name)

        async def back() -> bool:
            piece = next(p for p in self.stack.status()["infrastructure"] if p["name"] == name)
            return piece["restarts"] > before["restarts"] and piece["state"] == "running"

        await self.kill(f"kill -9 {name}", before["pid"], back)
        await until(
            f"every service ready after {name} came back", self.all_ready, BACK_WITHIN, self.context
        )

    async def kill(self, fault: str, pid: int | None, back: Callable[[], Awaitable[bool]]) -> None:
        assert pid is not None, f"{fault}: no pid in the status file"
        self.note_pids()
        self.load.phase = fault
        os.kill(pid, signal.SIGKILL)
        took = await until(f"{fault}: back", back, BACK_WITHIN, self.context)
        self.healed.append((fault, round(took, 1)))
        self.load.phase = f"after {fault}"

    async def all_ready(self) -> bool:
        async with httpx.AsyncClient(timeout=2.0) as http:
            for name in SERVICES:
                try:
                    if (await http.get(f"{self.stack.url(name)}/readyz")).status_code != 200:
                        return False
                except httpx.HTTPError:
                    return False
        return True

    async def run(self) -> None:
        for name in SERVICES:
            await self.kill_child(name)
        workers = [c["name"] for c in self.stack.status()["children"] if c["url"] == "(worker)"]
        for name in workers:
            await self.kill_child(name)
        for name in ("redis", "postgres", "kafka"):
            await self.kill_infra(name)


async def patiently(http: httpx.AsyncClient, url: str, **kwargs: Any) -> Any:
    """GET that waits out a platform still recovering (5xx or no answer) for a while."""
    deadline = time.monotonic() + 30
    while True:
        try:
            response = await http.get(url, **kwargs)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"GET {url} kept failing: {last}")
        await asyncio.sleep(0.5)


async def sign_up(http: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new user with a strategy, SEED_BARS of history and a forward-test session trading
    SYMBOL: the token, the strategy and the session."""
    email, password = f"chaos-{uuid.uuid4().hex[:8]}@example.com", f"Pw-{uuid.uuid4().hex}"
    credentials = {"email": email, "password": password}
    (await http.post("/api/auth/register", json=credentials)).raise_for_status()
    login = await http.post("/api/auth/login", json=credentials)
    login.raise_for_status()
    token = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    seeded = await http.post(
        "/api/market/bars",
        headers=headers,
        json={"symbol": SYMBOL, "timeframe": TIMEFRAME, "bars": [bar(i) for i in range(SEED_BARS)]},
    )
    assert seeded.status_code == 200, seeded.text
    assert seeded.json()["counts"]["accepted"] == SEED_BARS, seeded.text
    created = await http.post(
        "/api/strategies/templates/sma_cross/instantiate",
        headers=headers,
        json={"name": "chaos SMA cross", "parameters": {"fast": 5, "slow": 20}},
    )
    assert created.status_code == 201, created.text
    strategy = created.json()
    session = await http.post(
        "/api/sessions",
        headers=headers,
        json={
            "strategy_id": strategy["id"],
            "symbol": SYMBOL,
            "timeframe": TIMEFRAME,
            "capital": CAPITAL,
            "config": SESSION_CONFIG,
        },
    )
    assert session.status_code == 201, session.text
    return token, strategy, session.json()


async def gather_evidence(
    stack: RunningStack, load: Load, timings: dict[str, float]
) -> dict[str, Any]:
    """After the load: wait for the jobs and the events to catch up, then read everything."""
    bootstrap = next(p["url"] for p in stack.status()["infrastructure"] if p["name"] == "kafka")
    http = load.http
    jobs = set(load.accepted_jobs)
    statuses: dict[str, str] = {}
    unfinished: dict[str, str] = {}

    async def jobs_done() -> bool:
        for job in jobs - statuses.keys():
            answer = await patiently(http, f"/api/backtests/{job}")
            if answer["status"] in ("completed", "failed", "cancelled"):
                statuses[job] = answer["status"]
                unfinished.pop(job, None)
            else:
                unfinished[job] = answer["status"]
        return statuses.keys() >= jobs

    def pending() -> str:
        return f"not finished (job: status): {unfinished}\n{tail(stack.output, 20)}"

    timings["jobs_finished_after"] = await until(
        "every accepted job finished", jobs_done, CATCH_UP_WITHIN, pending
    )

    history: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"timeframe": TIMEFRAME, "start": iso(bar_open(0)), "limit": 10_000}
        if cursor:
            params["cursor"] = cursor
        page = await patiently(http, f"/api/market/symbols/{SYMBOL}/bars", params=params)
        history |= {b["ts"] for b in page["bars"]}
        cursor = page["next_cursor"]
        if not cursor:
            break

    session_part = await follow_session(http, load, history, timings)

    kafka_bars: set[str] = set()

    async def bars_published() -> bool:
        kafka_bars.clear()
        for record in await read_all(bootstrap, "market.bars.v1"):
            _, payload = default_registry.decode(record.value)
            if isinstance(payload, MarketBarsPayload) and payload.symbol == SYMBOL:
                kafka_bars.update(iso(int(b.ts.timestamp())) for b in payload.bars)
        return load.accepted_bars.keys() <= kafka_bars

    with contextlib.suppress(pytest.fail.Exception):  # the test names what is missing
        timings["bars_on_kafka_after"] = await until(
            "every accepted bar on Kafka", bars_published, CATCH_UP_WITHIN, str
        )

    completions: dict[str, set[str]] = {}
    completion_records: Counter[str] = Counter()
    failures: dict[str, str] = {}

    async def completions_published() -> bool:
        completions.clear()
        completion_records.clear()
        for record in await read_all(bootstrap, "backtest.events.v1"):
            envelope, payload = default_registry.decode(record.value)
            if isinstance(payload, BacktestCompleted):
                completions.setdefault(payload.job_id, set()).add(envelope.id)
                completion_records[payload.job_id] += 1
            elif isinstance(payload, BacktestFailed):
                failures[payload.job_id] = payload.error
        done = {job for job, status in statuses.items() if status == "completed"}
        return done <= completions.keys()

    with contextlib.suppress(pytest.fail.Exception):
        timings["completions_on_kafka_after"] = await until(
            "every completion on Kafka", completions_published, CATCH_UP_WITHIN, str
        )
    await asyncio.sleep(2)  # a late second completion would show up now
    await completions_published()
    return session_part | {
        "job_statuses": statuses,
        "history": history,
        "kafka_bars": kafka_bars,
        "completions": completions,
        "completion_records": completion_records,
        "failures": failures,
    }


async def follow_session(
    http: httpx.AsyncClient, load: Load, history: set[str], timings: dict[str, float]
) -> dict[str, Any]:
    """Once the session applied the last stored bar: its state and trades, and a backtest of
    exactly the bars it should have traded (its warm-up, then every bar stored after it)."""
    created = load.session
    path = f"/api/sessions/{created['id']}"
    last = max(history)
    warmup = created["bars_applied"]  # the newest seed bars, applied when it was created
    first = iso(bar_open(SEED_BARS - warmup))
    expected = sum(1 for ts in history if ts >= first)
    session: dict[str, Any] = {}

    async def caught_up() -> bool:
        session.update(await patiently(http, path))
        applied = session["last_bar_time"]
        return session["status"] != "running" or (
            applied is not None and iso(int(moment(applied).timestamp())) == last
        )

    timings["session_caught_up_after"] = await until(
        f"the session applied the last stored bar {last}",
        caught_up,
        CATCH_UP_WITHIN,
        lambda: json.dumps(session),
    )
    request = backtest_request(load.strategy) | {
        "start": first,
        "end": iso(int(moment(last).timestamp()) + 60),
        "config": SESSION_CONFIG | {"initial_capital": CAPITAL},
    }
    submitted = await http.post("/api/backtests", json=request)
    assert submitted.status_code == 202, submitted.text
    replayed: dict[str, Any] = {}

    async def replay_done() -> bool:
        replayed.update(await patiently(http, f"/api/backtests/{submitted.json()['id']}"))
        return replayed["status"] in ("completed", "failed")

    await until("the backtest of the session's bars", replay_done, CATCH_UP_WITHIN, str)
    limit = {"limit": 1000}
    replayed_trades = (
        await patiently(http, f"/api/backtests/{replayed['id']}/trades", params=limit)
        if replayed["status"] == "completed"
        else {"trades": []}
    )
    session_trades = await patiently(http, f"{path}/trades", params=limit)
    curve = await patiently(http, f"{path}/equity", params={"points": 1000})
    assert curve["method"] == "all", "more applied bars than one equity read returns"
    return {
        "session_bars": {iso(int(moment(point["ts"]).timestamp())) for point in curve["points"]},
        "session": session,
        "session_expected_bars": expected,
        "session_trades": session_trades["trades"],
        "replayed": replayed,
        "replayed_trades": replayed_trades["trades"],
    }


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def chaos(stack: RunningStack) -> tuple[Load, Faults, dict[str, Any], dict[str, float]]:
    timings: dict[str, float] = {}
    waits: dict[str, float] = {}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.url(), timeout=30.0) as http:
        token, strategy, session = await sign_up(http)
    load = Load(stack.url(), token, strategy, session)
    faults = Faults(stack, load)
    running = asyncio.create_task(load.run())
    try:
        await asyncio.sleep(2)  # steady state first: the answers the faults are compared with
        load.phase = "steady"
        await asyncio.sleep(2)
        timings["faults_started"] = time.monotonic() - started
        await faults.run()
        timings["faults_done"] = time.monotonic() - started
        load.phase = "recovered"
        await asyncio.sleep(3)
    finally:
        load.stopping.set()
        await running
    try:
        evidence = await gather_evidence(stack, load, waits)
    finally:
        await load.http.aclose()
    faults.note_pids()
    timings["evidence"] = time.monotonic() - started
    evidence["waits"] = {k: round(v, 1) for k, v in waits.items()}
    return load, faults, evidence, timings


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRun]:
    began = time.monotonic()
    stack = start_stack(
        tmp_path_factory.mktemp("chaos"), cwd=REPO, env={"RATE_LIMITS": json.dumps(RATE_LIMITS)}
    )
    try:
        load, faults, evidence, timings = asyncio.run(chaos(stack))
    finally:
        exit_code = stack.stop()
    timings = {"stack_ready": round(stack.ready_after, 1)} | {
        k: round(v + stack.ready_after, 1) for k, v in timings.items()
    }
    timings["stopped"] = round(time.monotonic() - began, 1)
    run = ChaosRun(
        symbol=SYMBOL,
        exchanges=load.exchanges,
        accepted_bars=load.accepted_bars,
        accepted_jobs=set(load.accepted_jobs),
        faults=faults.healed,
        exit_code=exit_code,
        output_tail=tail(stack.output, 60),
        leftovers=stack.leftovers(faults.seen_pids),
        timings=timings,
        **evidence,
    )
    print(
        f"\nchaos run: {len(run.exchanges)} requests, {len(run.accepted_bars)} bars and "
        f"{len(run.accepted_jobs)} backtests accepted; healed: {run.faults}; "
        f"timings (s): {run.timings}; catch-up waits (s): {run.waits}"
    )
    by_phase: dict[str, Counter[int | None]] = {}
    for exchange in run.exchanges:
        by_phase.setdefault(exchange.phase, Counter())[exchange.status] += 1
    for phase, statuses in by_phase.items():
        print(f"  {phase:<36} {dict(sorted(statuses.items(), key=lambda kv: kv[0] or 0))}")
    yield run
