"""The `algotrade` command line as a user runs it, as processes, against the embedded stack:
log in, import data, push a graph file, run a backtest and a sweep, watch a session take live
bars, and run the simulated agent through a command round trip."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from algotrade.engine import Bars, compile_graph
from algotrade_devstack.journey import Account, Journey
from algotrade_testkit.bars import push_rows
from algotrade_testkit.graphs import sma_cross

from .conftest import REPO, RunningStack

CLI = [sys.executable, "-m", "algotrade_devstack.cli"]


@pytest.fixture(scope="module")
def user(
    walk: Journey, stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    account = walk.new_account("cli")
    env = {
        **os.environ,
        "ALGOTRADE_URL": stack.url(),
        "ALGOTRADE_CONFIG_DIR": str(tmp_path_factory.mktemp("cli-config")),
    }
    env.pop("ALGOTRADE_API_KEY", None)
    user = {"account": account, "env": env}
    # Logged in once for the module: the tests may run in any order.
    login = cli(user, "login", "--email", account.email, "--password", account.password)
    assert login.returncode == 0, login.stdout + login.stderr
    return user


def push_bars(walk: Journey, account: Account, symbol: str, bars: Bars) -> None:
    walk.expect(
        walk.http.post(
            "/api/market/bars",
            headers=account.headers,
            json={"symbol": symbol, "timeframe": "4h", "bars": push_rows(bars)},
        ),
        200,
    )


def sma_cross_stored(walk: Journey, account: Account, name: str) -> tuple[str, int]:
    """A stored 5/20 moving-average cross: its id and warm-up."""
    graph = sma_cross(5, 20)
    strategy = walk.expect(
        walk.http.post(
            "/api/strategies", headers=account.headers, json={"name": name, "graph": graph}
        ),
        201,
    )
    return str(strategy["id"]), compile_graph(graph).warmup


def cli(user: dict[str, Any], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=user["env"], capture_output=True, text=True, timeout=timeout, check=False
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(300)
def test_a_user_logs_in_pushes_a_file_and_runs_a_backtest_and_a_sweep(
    user: dict[str, Any], tmp_path: Path
) -> None:
    account: Account = user["account"]
    stored = Path(user["env"]["ALGOTRADE_CONFIG_DIR"]) / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert account.password not in stored.read_text()
    assert ok_json(cli(user, "whoami", "--json"))["email"] == account.email

    imported = ok_json(
        cli(
            user,
            "data",
            "import",
            str(REPO / "data" / "spy-1d.csv"),
            "--symbol",
            "SPY",
            "--timeframe",
            "1d",
            "--json",
        )
    )
    assert imported["state"] == "completed" and imported["rows_rejected"] == 0

    graph_file = tmp_path / "cross.yaml"
    graph_file.write_text(yaml.safe_dump({"name": "cross", "graph": sma_cross(10, 30)}))
    pushed = ok_json(cli(user, "strategy", "push", str(graph_file), "--json"))
    strategy_id = pushed["id"]
    again = ok_json(cli(user, "strategy", "push", str(graph_file), "--id", strategy_id, "--json"))
    assert again["id"] == strategy_id and again["current_version"] == 2
    listed = ok_json(cli(user, "strategy", "list", "--json"))
    assert strategy_id in {s["id"] for s in listed}

    window = (
        "--symbol",
        "SPY",
        "--timeframe",
        "1d",
        "--start",
        "2010-01-01",
        "--end",
        "2020-01-01",
    )
    backtest = ok_json(cli(user, "backtest", "run", strategy_id, *window, "--json"))
    assert backtest["status"] == "completed"
    assert backtest["summary"]["metrics"]["trade_count"] > 0
    table = cli(user, "backtest", "run", str(graph_file), *window)  # an inline graph, for people
    assert table.returncode == 0 and "sharpe" in table.stdout

    sweep = ok_json(
        cli(
            user,
            "backtest",
            "sweep",
            strategy_id,
            *window,
            "--grid",
            "fast=5:15:5",
            "--grid",
            "slow=20:40:10",
            "--json",
        )
    )
    assert sweep["job"]["status"] == "completed"
    ranked = [row["metrics"]["sharpe"] for row in sweep["results"]]
    assert len(ranked) == 9 and ranked == sorted(ranked, reverse=True)

    missing = cli(user, "backtest", "run", "NO-SUCH-STRATEGY", *window)
    assert missing.returncode == 1 and "error 404" in missing.stdout


@pytest.mark.timeout(300)
def test_watch_shows_a_session_taking_live_bars(walk: Journey, user: dict[str, Any]) -> None:
    account: Account = user["account"]
    strategy_id, warmup = sma_cross_stored(walk, account, "w")
    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(1_000, 1_000 + warmup + 6)
    symbol = "BTC-CLI"
    push_bars(walk, account, symbol, bars.slice(0, warmup))
    started = ok_json(
        cli(
            user,
            "session",
            "start",
            strategy_id,
            "--symbol",
            symbol,
            "--timeframe",
            "4h",
            "--json",
        )
    )
    session_id = started["id"]
    watcher = subprocess.Popen(
        [*CLI, "session", "watch", session_id, "--bars", "3", "--json"],
        env=user["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # subscribed before the bars arrive (a snapshot covers a late start)
        push_bars(walk, account, symbol, bars.slice(warmup, warmup + 6))
        out, err = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, out + err
    assert '"session.equity"' in out
    listed = ok_json(cli(user, "session", "ls", "--json"))
    assert session_id in {s["id"] for s in listed}
    stopped = ok_json(cli(user, "session", "stop", session_id, "--json"))
    assert stopped["status"] == "stopped"


@pytest.mark.timeout(300)
def test_the_simulated_agent_executes_a_command_round_trip(
    walk: Journey, user: dict[str, Any], tmp_path: Path
) -> None:
    account: Account = user["account"]
    agent = subprocess.Popen(
        [
            *CLI,
            "agent",
            "run",
            "--simulate",
            "--price",
            "EURUSD=1.1",
            "--account",
            str(tmp_path / "account.json"),
            "--heartbeat-seconds",
            "1",
        ],
        env={**user["env"], "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert agent.stdout is not None
        line = agent.stdout.readline()
        assert "registered agent" in line, line
        agent_id = line.split("registered agent", 1)[1].split(";", 1)[0].strip()
        queued = walk.expect(
            walk.http.post(
                f"/api/agents/{agent_id}/commands",
                headers=account.headers,
                json={"kind": "open", "symbol": "EURUSD", "side": "buy", "volume": 0.1},
            ),
            201,
        )
        ended = walk.poll(
            f"/api/agents/{agent_id}/commands/{queued['id']}",
            account,
            lambda c: c["state"] in ("executed", "rejected", "failed", "expired"),
        )
        assert ended["state"] == "executed", ended
        assert ended["result"]["price"] == 1.1
    finally:
        agent.send_signal(signal.SIGINT)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()


@pytest.mark.timeout(300)
def test_a_session_in_agent_mode_trades_through_the_simulated_agent(
    walk: Journey, user: dict[str, Any], tmp_path: Path
) -> None:
    """Every order of a session started with --agent goes to the reference agent, which fills
    it on its simulated account at its own price; the terminal account the CLI shows is those
    fills: every trade opened and closed at that price, so no P&L, and nothing left pending."""
    account: Account = user["account"]
    strategy_id, warmup = sma_cross_stored(walk, account, "a")
    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(3_000, 3_000 + warmup + 150)
    symbol = "BTC-AGENT"
    push_bars(walk, account, symbol, bars.slice(0, warmup))
    agent = subprocess.Popen(
        [
            *CLI,
            "agent",
            "run",
            "--simulate",
            "--price",
            f"{symbol}=30000",
            "--account",
            str(tmp_path / "account.json"),
            "--heartbeat-seconds",
            "1",
        ],
        env={**user["env"], "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert agent.stdout is not None
        line = agent.stdout.readline()
        assert "registered agent" in line, line
        agent_id = line.split("registered agent", 1)[1].split(";", 1)[0].strip()
        started = ok_json(
            cli(
                user,
                "session",
                "start",
                strategy_id,
                "--symbol",
                symbol,
                "--timeframe",
                "4h",
                "--agent",
                agent_id,
                "--json",
            )
        )
        session_id = started["id"]
        assert (started["mode"], started["agent_id"]) == ("agent", agent_id)
        push_bars(walk, account, symbol, bars.slice(warmup, warmup + 150))
        walk.poll(
            f"/api/sessions/{session_id}", account, lambda s: s["bars_applied"] >= warmup + 150
        )
        orders = walk.expect(
            walk.http.get(
                f"/api/sessions/{session_id}/orders",
                headers=account.headers,
                params={"limit": 1000},
            ),
            200,
        )
        assert orders["total"] >= 2, "the strategy should have traded on these bars"
        walk.poll(
            f"/api/sessions/{session_id}/terminal",
            account,
            lambda v: v["account"]["orders"]["executed"] == orders["total"],
        )
        view = ok_json(cli(user, "session", "terminal", session_id, "--json"))
    finally:
        agent.send_signal(signal.SIGINT)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
    terminal = view["account"]
    assert terminal["orders"] == {"executed": orders["total"], "refused": 0, "pending": 0}
    assert terminal["realized_pnl"] == 0.0
    assert view["trades"] and all(
        (t["entry_price"], t["exit_price"], t["closed_by"]) == (30000.0, 30000.0, "order")
        for t in view["trades"]
    )
    entries = sum(o["reason"] == "entry" for o in orders["orders"])
    assert len(view["trades"]) + len(view["open"]) == entries
