"""The first user journey, driven only through the gateway as a new user would.

register -> login -> node types -> strategy from the SMA-cross template -> import a CSV of bars
-> backtest -> poll -> summary, trades, equity -> 20-combination sweep -> ranked results, then
(with ``forward_csv``) forward testing: import hourly bars, backtest their last N, replay the
same N bars at max speed into a ``.R`` target with a session on it, and compare the session's
trades and equity with the backtest's (docs/forward-testing.md, "Replay ≡ backtest").

One implementation serves two callers: ``make demo`` (``algotrade demo``), which narrates each
step, and the end-to-end test, which asserts on what `Journey.run` returns.
"""

from __future__ import annotations

import csv
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
        return ForwardResult(
            imported=imported,
            target=target,
            bars=len(times),
            warmup=warmup,
            backtest=backtest,
            backtest_trades=[t for t in expected if not t["is_open"]],
            session=session,
            session_trades=got,
        )

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
            timings=timings,
        )
