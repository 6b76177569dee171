"""The first user journey, driven only through the gateway as a new user would.

register -> login -> node types -> strategy from the SMA-cross template -> import a CSV of bars
-> backtest -> poll -> summary, trades, equity -> 20-combination sweep -> ranked results.

One implementation serves two callers: ``make demo`` (``algotrade demo``), which narrates each
step, and the end-to-end test, which asserts on what `Journey.run` returns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

Say = Callable[[str], None]

SWEEP_GRID = {"fast": [5, 10, 15, 20, 25], "slow": [40, 60, 100, 150]}  # 20 combinations


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
    timings: dict[str, float] = field(default_factory=dict)


class Journey:
    """Walks the journey against a gateway URL; ``say`` narrates, ``poll_seconds`` bounds waits."""

    def __init__(self, gateway_url: str, *, say: Say = print, poll_seconds: float = 180.0) -> None:
        self.http = httpx.Client(base_url=gateway_url, timeout=30.0)
        self.say = say
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

    def run(self, csv_path: Path, *, symbol: str = "SPY", timeframe: str = "1d") -> JourneyResult:
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
        imported = self.poll(
            f"/api/market/imports/{job['id']}", account, lambda j: j["state"] == "completed"
        )
        self.say(
            f"  {imported['rows_read']:,} rows read: {imported['accepted']:,} new, "
            f"{imported['duplicate']:,} already known, {imported['rows_rejected']} rejected"
        )
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
            timings=timings,
        )
