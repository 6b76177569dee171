"""The first user journey, driven only through the gateway as a new user would.

register -> login -> node types -> strategy from the SMA-cross template -> import a CSV of bars
-> backtest -> poll -> summary, trades, equity -> 20-combination sweep -> ranked results, then
(with ``forward_csv``) forward testing: import hourly bars, backtest their last N, replay the
same N bars at max speed into a ``.R`` target with a session on it, and compare the session's
trades and equity with the backtest's (docs/forward-testing.md, "Replay ≡ backtest"), and
last an execution agent (docs/agents.md): the user registers one, the SDK's reference agent runs
in-process with its key on a simulated account, and an open, a modify and a close queued by the
user are executed by it, after which its trade sync, connection state and health are read.

One implementation serves two callers: ``make demo`` (``algotrade demo``), which narrates each
step, and the end-to-end test, which asserts on what `Journey.run` returns.
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from algotrade.engine import compile_graph
from algotrade_sdk.account import SimulatedAccount
from algotrade_sdk.agent import AgentConfig, ReferenceAgent

Say = Callable[[str], None]
# Called on every poll of the forward step: the replay's status and the session's (None
# before the session exists). The demo draws progress bars from them; the test passes none.
Watch = Callable[[dict[str, Any], dict[str, Any] | None], None]

SWEEP_GRID = {"fast": [5, 10, 15, 20, 25], "slow": [40, 60, 100, 150]}  # 20 combinations
# Fixed rather than "auto" so the backtest of the imported symbol and the session on its replay
# target cannot resolve to different markets (symbol calendars are configured per symbol).
FORWARD_CONFIG = {"fee_bps": 1.0, "slippage_bps": 1.0, "calendar": "xnys"}
FORWARD_CAPITAL = 100_000
TRADE_FIELDS = ("side", "quantity", "entry_price", "exit_price", "fees", "pnl", "exit_reason")
AGENT_HEARTBEAT_SECONDS = 1.0
AGENT: dict[str, Any] = {
    "name": "demo desk",
    "platform": "other",
    "account_number": "SIM-1",
    "broker": "AlgoTrade simulator",
    "currency": "USD",
    "heartbeat_seconds": AGENT_HEARTBEAT_SECONDS,
}
AGENT_PRICES = {"EURUSD": 1.1}  # the simulated account fills at this fixed price
AGENT_WAIT_SECONDS = 30.0  # bounds each wait of the agent step
COMMAND_ENDED = ("executed", "rejected", "failed", "expired")


class JourneyFailed(RuntimeError):
    """A step answered something other than what a working platform answers."""


@dataclass
class Account:
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def trade_key(trade: dict[str, Any]) -> tuple[Any, ...]:
    """What must match between a session's trade and the backtest's: times and every figure."""
    times = (moment(trade["entry_time"]), moment(trade["exit_time"]))
    return (*times, *(trade[name] for name in TRADE_FIELDS))


def last_bar_times(csv_path: Path, count: int) -> list[datetime]:
    """Open times of the last ``count`` rows of a bars CSV (the platform's format)."""
    with csv_path.open(newline="") as rows:
        tail = deque(csv.DictReader(rows), maxlen=count)
    return [moment(row["timestamp"]) for row in tail]


@dataclass
class ForwardResult:
    """A session on a replay of ``bars`` hourly bars next to a backtest of the same bars."""

    imported: dict[str, Any]
    target: str
    bars: int
    warmup: int
    backtest: dict[str, Any]
    backtest_trades: list[dict[str, Any]]  # closed ones: a session lists only closed trades
    session: dict[str, Any]
    session_trades: list[dict[str, Any]]
    comparison: dict[str, Any] | None = None
    """The analytics service's backtest-vs-live report of the two (its ``divergence``)."""
    tear_sheet: str | None = None
    """The same comparison as the HTML tear sheet."""

    @property
    def trades_equal(self) -> bool:
        return [trade_key(t) for t in self.session_trades] == [
            trade_key(t) for t in self.backtest_trades
        ]

    @property
    def equity_equal(self) -> bool:
        return bool(self.session["equity"] == self.backtest["summary"]["metrics"]["final_equity"])

    @property
    def equal(self) -> bool:
        return self.trades_equal and self.equity_equal


@dataclass
class AgentCommand:
    """A command as the user queued it and as it ended, with the time from the queueing
    request to the first poll that saw it ended (polled every 50 ms)."""

    queued: dict[str, Any]
    ended: dict[str, Any]
    seconds: float


@dataclass
class AgentResult:
    """The agent step: the registered agent (without its key), its commands, the trade sync
    read after the last of them, its line of ``GET /api/agents/status`` and ``GET
    /api/agents/{id}`` (connection state, health score and components)."""

    registered: dict[str, Any]
    commands: list[AgentCommand]
    sync: dict[str, Any] | None
    status: dict[str, Any] | None
    agent: dict[str, Any]

    @property
    def executed(self) -> bool:
        return len(self.commands) == 3 and all(
            c.ended["state"] == "executed" for c in self.commands
        )

    @property
    def state(self) -> str | None:
        connection = self.agent.get("connection") or {}
        return connection.get("state")

    @property
    def health(self) -> int | None:
        health = self.agent.get("health") or {}
        return health.get("score")

    @property
    def ok(self) -> bool:
        synced = self.sync is not None and self.sync["conflicts"] == 0
        return self.executed and synced and self.state == "healthy" and self.health is not None


class AgentThread:
    """Runs a `ReferenceAgent` on an event loop of its own in a thread, beside the journey's
    synchronous client; `stop` asks it to stop from this thread and waits (bounded)."""

    def __init__(self, agent: ReferenceAgent) -> None:
        self.agent = agent
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="demo-agent", daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self.agent.run()

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by `start`/`stop`, in the journey's thread
            self.error = exc
        finally:
            self._ready.set()

    def start(self, within: float) -> None:
        """Start the agent; return once its first heartbeat was answered."""
        self._thread.start()
        deadline = time.monotonic() + within
        while not self.agent.connected:
            if not self._thread.is_alive():
                raise JourneyFailed(f"the agent stopped before it connected: {self.error!r}")
            if time.monotonic() > deadline:
                raise JourneyFailed(f"the agent did not connect within {within:.0f}s")
            time.sleep(0.05)

    def stop(self, within: float) -> None:
        self._ready.wait(within)
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.agent.stop)
        self._thread.join(within)
        if self._thread.is_alive():
            raise JourneyFailed(f"the agent did not stop within {within:.0f}s")
        if self.error is not None:
            raise JourneyFailed(f"the agent failed: {self.error!r}")


@dataclass
class JourneyResult:
    account: Account
    node_types: list[dict[str, Any]]
    strategy: dict[str, Any]
    imported: dict[str, Any]
    backtest: dict[str, Any]
    trades: dict[str, Any]
    equity: dict[str, Any]
    sweep: dict[str, Any]
    ranked: dict[str, Any]
    forward: ForwardResult | None = None
    agent: AgentResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Journey:
    """Walks the journey against a gateway URL; ``say`` narrates, ``poll_seconds`` bounds waits.
    ``local_address`` is the address its connections come from (the gateway counts sign-ins
    per client address): tests sharing one stack each take their own loopback address."""

    def __init__(
        self,
        gateway_url: str,
        *,
        say: Say = print,
        watch: Watch | None = None,
        poll_seconds: float = 180.0,
        local_address: str | None = None,
    ) -> None:
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.gateway_url = gateway_url
        self.local_address = local_address
        self.http = httpx.Client(base_url=gateway_url, timeout=30.0, transport=transport)
        self.say = say
        self.watch = watch
        self.poll_seconds = poll_seconds

    def close(self) -> None:
        self.http.close()

    def expect(self, response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise JourneyFailed(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def new_account(self, prefix: str = "demo") -> Account:
        account = Account(
            email=f"{prefix}-{uuid.uuid4().hex[:8]}@example.com",
            password=f"Pw-{uuid.uuid4().hex}",  # a fresh, strong password every run
        )
        self.expect(
            self.http.post(
                "/api/auth/register", json={"email": account.email, "password": account.password}
            ),
            201,
        )
        self.login(account)
        return account

    def login(self, account: Account) -> None:
        tokens = self.expect(
            self.http.post(
                "/api/auth/login", json={"email": account.email, "password": account.password}
            ),
            200,
        )
        account.access_token = tokens["access_token"]
        account.refresh_token = tokens["refresh_token"]

    def poll(self, path: str, account: Account, done: Callable[[dict[str, Any]], bool]) -> Any:
        deadline = time.monotonic() + self.poll_seconds
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.expect(self.http.get(path, headers=account.headers), 200)
            if last.get("status") == "failed" or last.get("state") == "failed":
                raise JourneyFailed(f"{path} failed: {last.get('error') or last.get('message')}")
            if done(last):
                return last
            time.sleep(0.25)
        raise JourneyFailed(f"{path} not done after {self.poll_seconds:.0f}s: {last}")

    def import_csv(
        self, account: Account, csv_path: Path, symbol: str, timeframe: str
    ) -> dict[str, Any]:
        self.say(f"import {csv_path.name} as {symbol} {timeframe} bars")
        with csv_path.open("rb") as upload:
            job = self.expect(
                self.http.post(
                    "/api/market/imports",
                    headers=account.headers,
                    files={"file": (csv_path.name, upload, "text/csv")},
                    data={"symbol": symbol, "timeframe": timeframe},
                ),
                202,
            )
        imported: dict[str, Any] = self.poll(
            f"/api/market/imports/{job['id']}", account, lambda j: j["state"] == "completed"
        )
        self.say(
            f"  {imported['rows_read']:,} rows read: {imported['accepted']:,} new, "
            f"{imported['duplicate']:,} already known, {imported['rows_rejected']} rejected"
        )
        return imported

    def all_trades(self, path: str, account: Account) -> list[dict[str, Any]]:
        """Every trade of a backtest or session, page by page."""
        trades: list[dict[str, Any]] = []
        while True:
            page = self.expect(
                self.http.get(
                    path, headers=account.headers, params={"offset": len(trades), "limit": 500}
                ),
                200,
            )
            trades.extend(page["trades"])
            if not page["trades"] or len(trades) >= page["total"]:
                return trades

    def replay(
        self,
        account: Account,
        body: dict[str, Any],
        session: dict[str, Any] | None = None,
        until_bars: int = 0,
    ) -> dict[str, Any]:
        """Start a replay and wait for it to complete; with ``session``, also until that
        session has applied ``until_bars`` bars. Each poll goes to ``watch``."""
        started = self.expect(
            self.http.post("/api/market/replays", headers=account.headers, json=body), 201, 202
        )
        deadline = time.monotonic() + self.poll_seconds
        while time.monotonic() < deadline:
            status = self.expect(
                self.http.get(f"/api/market/replays/{started['id']}", headers=account.headers),
                200,
            )
            if status["state"] not in ("pending", "running", "completed"):
                raise JourneyFailed(f"replay {started['id']} ended {status['state']}: {status}")
            if session is not None:
                session = self.expect(
                    self.http.get(f"/api/sessions/{session['id']}", headers=account.headers),
                    200,
                )
                if session["status"] == "failed":
                    raise JourneyFailed(f"session {session['id']} failed: {session}")
            if self.watch is not None:
                self.watch(status, session)
            if status["state"] == "completed" and (
                session is None or session["bars_applied"] >= until_bars
            ):
                return session if session is not None else dict(status)
            time.sleep(0.25)
        raise JourneyFailed(f"replay {started['id']} not done after {self.poll_seconds:.0f}s")

    def forward(
        self,
        account: Account,
        strategy: dict[str, Any],
        csv_path: Path,
        bars: int,
        *,
        symbol: str = "SPY",
        timeframe: str = "1h",
    ) -> ForwardResult:
        """Backtest the last ``bars`` bars of ``csv_path``, then replay the same bars at max
        speed into a ``.R`` target: the warm-up first, a session on the target, then the rest."""
        imported = self.import_csv(account, csv_path, symbol, timeframe)
        times = last_bar_times(csv_path, bars)
        start, end = times[0], times[-1] + timedelta(seconds=1)  # the window is [start, end)
        detail = self.expect(
            self.http.get(f"/api/strategies/{strategy['id']}", headers=account.headers), 200
        )
        warmup = compile_graph(detail["graph"]).warmup
        if warmup >= len(times):
            raise JourneyFailed(f"{len(times)} bars do not cover the warm-up of {warmup}")

        window = f"{start:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} UTC"
        self.say(f"backtest the last {len(times):,} {symbol} {timeframe} bars ({window})")
        submitted = self.expect(
            self.http.post(
                "/api/backtests",
                headers=account.headers,
                json={
                    "strategy_id": strategy["id"],
                    "version": detail["current_version"],
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "config": {**FORWARD_CONFIG, "initial_capital": FORWARD_CAPITAL},
                },
            ),
            202,
        )
        backtest: dict[str, Any] = self.poll(
            f"/api/backtests/{submitted['id']}", account, lambda j: j["status"] == "completed"
        )
        expected = self.all_trades(f"/api/backtests/{backtest['id']}/trades", account)

        target = f"{symbol}.RDEMO"
        replay = {"symbol": symbol, "timeframe": timeframe, "speed": "max", "target_symbol": target}
        self.say(f"replay the {warmup} warm-up bars into {target}")
        self.replay(
            account, {**replay, "start": start.isoformat(), "end": times[warmup].isoformat()}
        )
        session = self.expect(
            self.http.post(
                "/api/sessions",
                headers=account.headers,
                json={
                    "strategy_id": strategy["id"],
                    "version": detail["current_version"],
                    "symbol": target,
                    "timeframe": timeframe,
                    "capital": FORWARD_CAPITAL,
                    "config": FORWARD_CONFIG,
                },
            ),
            201,
        )
        self.say(
            f"forward session {session['id']} on {target}: {session['bars_applied']} bars "
            f"applied, warmed up: {session['warmed_up']}"
        )
        self.say(f"replay the other {len(times) - warmup:,} bars at max speed")
        session = self.replay(
            account,
            {**replay, "start": times[warmup].isoformat(), "end": end.isoformat()},
            session=session,
            until_bars=len(times),
        )
        got = self.all_trades(f"/api/sessions/{session['id']}/trades", account)
        self.say("ask analytics for the backtest against the session (from the events)")
        path = f"/api/analytics/strategies/{strategy['id']}/versions/{detail['current_version']}"
        query = {"backtest": backtest["id"]}
        comparison = self.when_analysed(
            f"{path}/comparison",
            account,
            query,
            lambda r: any(
                s["session"] == session["id"] and s["bars"] >= len(times) - warmup
                for s in r["divergence"].get("sessions", [])
            ),
        )
        sheet = self.http.get(
            f"/api/analytics/reports/comparison/{strategy['id']}.html",
            headers=account.headers,
            params={**query, "version": detail["current_version"]},
        )
        return ForwardResult(
            imported=imported,
            target=target,
            bars=len(times),
            warmup=warmup,
            backtest=backtest,
            backtest_trades=[t for t in expected if not t["is_open"]],
            session=session,
            session_trades=got,
            comparison=comparison,
            tear_sheet=sheet.text if sheet.status_code == 200 else None,
        )

    def when_analysed(
        self,
        path: str,
        account: Account,
        params: dict[str, Any],
        done: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
        """``path`` of the analytics service once it has consumed enough events (it answers
        404 until it has heard of the runs)."""
        deadline = time.monotonic() + self.poll_seconds
        last = ""
        while time.monotonic() < deadline:
            answer = self.http.get(path, headers=account.headers, params=params)
            if answer.status_code == 200:
                report: dict[str, Any] = answer.json()
                if done(report):
                    return report
            elif answer.status_code != 404:
                raise JourneyFailed(f"{path} answered {answer.status_code}: {answer.text[:300]}")
            last = answer.text[:300]
            time.sleep(0.25)
        raise JourneyFailed(f"{path} not analysed after {self.poll_seconds:.0f}s: {last}")

    def enqueue(self, account: Account, agent_id: str, **body: Any) -> AgentCommand:
        """Queue a command for the agent and wait (bounded) until it ended."""
        queued_at = time.monotonic()
        queued = self.expect(
            self.http.post(f"/api/agents/{agent_id}/commands", headers=account.headers, json=body),
            201,
        )
        path = f"/api/agents/{agent_id}/commands/{queued['id']}"
        deadline = queued_at + AGENT_WAIT_SECONDS
        while time.monotonic() < deadline:
            ended = self.expect(self.http.get(path, headers=account.headers), 200)
            if ended["state"] in COMMAND_ENDED:
                return AgentCommand(queued, ended, time.monotonic() - queued_at)
            time.sleep(0.05)
        raise JourneyFailed(
            f"{body['kind']} command {queued['id']} not ended after {AGENT_WAIT_SECONDS:.0f}s"
        )

    def agents(self, account: Account) -> AgentResult:
        """Register an agent, run the SDK's reference agent with its key, and have it open,
        modify and close a EURUSD position queued by the user (docs/agents.md)."""
        created = self.expect(
            self.http.post("/api/agents", headers=account.headers, json=AGENT), 201
        )
        registered = {k: v for k, v in created.items() if k != "api_key"}  # shown once, kept out
        agent_id = created["id"]
        self.say(f"agent {agent_id} registered; its key is shown once, to the agent")
        config = AgentConfig(
            url=self.gateway_url,
            agent_id=agent_id,
            api_key=created["api_key"],
            heartbeat_seconds=AGENT_HEARTBEAT_SECONDS,
            sync_seconds=1.0,
            poll_wait_seconds=5.0,
            backoff_initial_seconds=0.1,
            backoff_max_seconds=1.0,
            refused_wait_seconds=1.0,
            request_timeout_seconds=10.0,
        )
        transport = (
            httpx.AsyncHTTPTransport(local_address=self.local_address)
            if self.local_address
            else None
        )
        with tempfile.TemporaryDirectory(prefix="algotrade-demo-agent-") as folder:
            account_file = SimulatedAccount.open_file(Path(folder) / "account.json")
            agent = ReferenceAgent(
                config, account_file, prices=AGENT_PRICES.get, transport=transport
            )
            runner = AgentThread(agent)
            try:
                runner.start(within=AGENT_WAIT_SECONDS)
                self.say("the reference agent is connected (simulated account, EURUSD at 1.1)")
                opened = self.enqueue(
                    account, agent_id, kind="open", symbol="EURUSD", side="buy", volume=0.1,
                    sl=1.09, tp=1.12, idempotency_key=f"demo-{uuid.uuid4().hex[:12]}",
                )  # fmt: skip
                ticket = (opened.ended.get("result") or {}).get("ticket")
                commands = [opened]
                if opened.ended["state"] == "executed" and ticket is not None:
                    commands.append(self.enqueue(account, agent_id, kind="modify",
                                                 ticket=ticket, sl=1.095))  # fmt: skip
                    commands.append(self.enqueue(account, agent_id, kind="close", ticket=ticket))
                self.say(
                    "commands: "
                    + ", ".join(f"{c.ended['kind']} {c.ended['state']}" for c in commands)
                )
                sync = self.synced_after(agent, time.monotonic())
                deadline = time.monotonic() + AGENT_WAIT_SECONDS
                while agent.stats.heartbeats < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)  # the health score's regularity needs a few heartbeats
                status = self.expect(
                    self.http.get("/api/agents/status", headers=account.headers), 200
                )
                detail = self.expect(
                    self.http.get(f"/api/agents/{agent_id}", headers=account.headers), 200
                )
            finally:
                runner.stop(within=AGENT_WAIT_SECONDS)
        mine = [a for a in status["agents"] if a["id"] == agent_id]
        return AgentResult(
            registered=registered,
            commands=commands,
            sync=sync,
            status=mine[0] if mine else None,
            agent=detail,
        )

    def synced_after(self, agent: ReferenceAgent, since: float) -> dict[str, Any] | None:
        """The report of the agent's first trade sync that read the account after ``since``
        (``time.monotonic()``), or None if none came within the bound."""
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while time.monotonic() < deadline:
            read_at = agent.stats.last_sync_read_at
            if read_at is not None and read_at > since and agent.stats.last_sync is not None:
                return dict(agent.stats.last_sync)
            time.sleep(0.05)
        return None

    def run(
        self,
        csv_path: Path,
        *,
        symbol: str = "SPY",
        timeframe: str = "1d",
        forward_csv: Path | None = None,
        forward_bars: int = 2_000,
    ) -> JourneyResult:
        timings: dict[str, float] = {}
        started = time.monotonic()

        def step(name: str) -> None:
            timings[name] = time.monotonic() - started

        self.say("register a new user and log in")
        account = self.new_account()
        step("login")

        node_types = self.expect(
            self.http.get("/api/strategies/node-types", headers=account.headers), 200
        )["data"]
        self.say(f"the palette has {len(node_types)} node types")

        strategy = self.expect(
            self.http.post(
                "/api/strategies/templates/sma_cross/instantiate",
                headers=account.headers,
                json={"name": "SPY SMA cross", "parameters": {"fast": 10, "slow": 30}},
            ),
            201,
        )
        self.say(f"strategy {strategy['id']} from the SMA-cross template (fast 10, slow 30)")
        step("strategy")

        imported = self.import_csv(account, csv_path, symbol, timeframe)
        step("import")

        request = {
            "strategy_id": strategy["id"],
            "version": strategy["current_version"],
            "symbol": symbol,
            "timeframe": timeframe,
            "start": "1998-01-01T00:00:00Z",
            "end": "2021-04-01T00:00:00Z",
            "config": {"initial_capital": 100_000, "fee_bps": 1.0, "slippage_bps": 1.0},
        }
        submitted = self.expect(
            self.http.post("/api/backtests", headers=account.headers, json=request), 202
        )
        self.say(f"backtest {submitted['id']} queued; waiting for a worker")
        backtest = self.poll(
            f"/api/backtests/{submitted['id']}", account, lambda j: j["status"] == "completed"
        )
        step("backtest")
        trades = self.expect(
            self.http.get(
                f"/api/backtests/{backtest['id']}/trades",
                headers=account.headers,
                params={"limit": 20},
            ),
            200,
        )
        equity = self.expect(
            self.http.get(
                f"/api/backtests/{backtest['id']}/equity",
                headers=account.headers,
                params={"points": 200},
            ),
            200,
        )
        self.say(
            f"  {trades['total']} trades; equity curve of {equity['total_points']:,} bars "
            f"down-sampled to {len(equity['points'])} points"
        )

        sweep_request = {
            **request,
            "search": {"method": "grid", "parameters": SWEEP_GRID},
            "metric": "sharpe",
        }
        submitted = self.expect(
            self.http.post("/api/backtests/sweeps", headers=account.headers, json=sweep_request),
            202,
        )
        self.say(f"sweep {submitted['id']} of {submitted['combinations']} combinations queued")
        sweep = self.poll(
            f"/api/backtests/sweeps/{submitted['id']}",
            account,
            lambda j: j["status"] == "completed",
        )
        ranked = self.expect(
            self.http.get(
                f"/api/backtests/sweeps/{sweep['id']}/results",
                headers=account.headers,
                params={"sort": "sharpe", "limit": 5},
            ),
            200,
        )
        step("sweep")
        forward = None
        if forward_csv is not None:
            forward = self.forward(account, strategy, forward_csv, forward_bars, symbol=symbol)
            step("forward")
        agent = self.agents(account)
        step("agent")
        return JourneyResult(
            account=account,
            node_types=node_types,
            strategy=strategy,
            imported=imported,
            backtest=backtest,
            trades=trades,
            equity=equity,
            sweep=sweep,
            ranked=ranked,
            forward=forward,
            agent=agent,
            timings=timings,
        )
