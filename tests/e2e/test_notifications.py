"""WebSocket notifications end to end, through the gateway's ``/ws`` on the embedded stack, with
real WebSocket clients: a running forward session and a backtest stream their events in order
after a snapshot; a client that reconnects with ``resume_from`` receives exactly what an
always-connected client received; another user's channel is refused on that channel alone; a
family switched rest -> shadow -> live -> rest is announced to a connected client at once; a bar
pushed through the market-data API reaches a ``market:`` subscriber."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from algotrade.bars import Bars
from algotrade_devstack.journey import Account, Journey
from algotrade_testkit.bars import push_rows
from algotrade_testkit.graphs import sma_cross

from .conftest import REPO, RunningStack

TIMEFRAME = "4h"
WARM = 30  # bars in history before the session starts


class Socket:
    """A WebSocket client of the gateway's ``/ws``, reading with deadlines. A message read
    while waiting for another is kept, in order, for whoever asks for it next: nothing a test
    does not look at is lost to it."""

    def __init__(self, stack: RunningStack, account: Account) -> None:
        url = stack.url().replace("http://", "ws://") + "/ws"
        self.ws: ClientConnection = connect(
            url,
            subprotocols=["algotrade.v1", f"bearer.{account.access_token}"],  # type: ignore[list-item]
            open_timeout=10,
        ).__enter__()  # closed by `close`
        self.kept: list[dict[str, Any]] = []
        self.welcome = self.next("welcome")

    def recv(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next message, kept ones first."""
        if self.kept:
            return self.kept.pop(0)
        return dict(orjson.loads(self.ws.recv(timeout=timeout)))

    def take(self, wanted: Any, timeout: float = 20.0) -> dict[str, Any]:
        """The first message for which ``wanted(message)`` holds; the others stay kept."""
        for n, message in enumerate(self.kept):
            if wanted(message):
                return self.kept.pop(n)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no wanted message within {timeout:.0f}s")
            message = dict(orjson.loads(self.ws.recv(timeout=left)))
            if wanted(message):
                return message
            self.kept.append(message)

    def next(self, kind: str, channel: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        """The next message of ``kind`` (on ``channel``)."""
        return self.take(
            lambda m: m["type"] == kind and (channel is None or m.get("channel") == channel),
            timeout,
        )

    def send(self, **message: Any) -> None:
        self.ws.send(orjson.dumps(message).decode())

    def subscribe(self, channel: str, **extra: Any) -> dict[str, Any]:
        self.send(type="subscribe", channel=channel, **extra)
        return self.next("subscribed", channel)

    def events(self, channel: str, until: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Event messages of ``channel`` until ``until(message)`` holds for one."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.next("event", channel, max(0.1, deadline - time.monotonic()))
            out.append(message)
            if until(message):
                return out

    def quiet(self, channel: str, quiet: float = 3.0) -> list[dict[str, Any]]:
        """Event messages of ``channel`` until none came for ``quiet`` seconds."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                out.append(self.next("event", channel, quiet))
            except TimeoutError:
                return out

    def close(self) -> None:
        self.ws.close()


def bar_rows(first: int, count: int) -> list[dict[str, Any]]:
    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(first, first + count)
    return push_rows(bars)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def push(walk: Journey, account: Account, symbol: str, rows: list[dict[str, Any]]) -> None:
    walk.expect(
        walk.http.post(
            "/api/market/bars",
            headers=account.headers,
            json={"symbol": symbol, "timeframe": TIMEFRAME, "bars": rows},
        ),
        200,
    )


def grant_admin(stack: RunningStack, email: str) -> None:
    postgres = next(i for i in stack.status()["infrastructure"] if i["name"] == "postgres")

    async def run() -> None:
        # The stack's own PostgreSQL trusts local connections (its URL's password is redacted).
        conn = await asyncpg.connect(postgres["url"].replace(":***@", "@"))
        try:
            await conn.execute(
                "UPDATE gateway.users SET roles = array_append(roles, 'notifications-admin') "
                "WHERE email = $1",
                email,
            )
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.mark.timeout(300)
def test_a_live_session_streams_in_order_and_a_resumed_client_misses_nothing(
    walk: Journey, stack: RunningStack
) -> None:
    account = walk.new_account("notify")
    symbol = "WS-SESSION"
    strategy = walk.expect(
        walk.http.post(
            "/api/strategies",
            headers=account.headers,
            json={"name": "ws", "graph": sma_cross(3, 8)},
        ),
        201,
    )
    push(walk, account, symbol, bar_rows(1_000, WARM))
    session = walk.expect(
        walk.http.post(
            "/api/sessions",
            headers=account.headers,
            json={
                "strategy_id": strategy["id"],
                "symbol": symbol,
                "timeframe": TIMEFRAME,
                "capital": 10_000,
                "config": {"calendar": "24x7"},
            },
        ),
        201,
    )
    channel = f"session:{session['id']}"
    market = f"market:{symbol}:{TIMEFRAME}"

    steady = Socket(stack, account)  # stays connected: the reference
    assert steady.welcome["user_id"] and set(steady.welcome["features"]) >= {"sessions", "account"}
    subscribed = steady.subscribe(channel)
    snapshot = steady.next("snapshot", channel)
    assert snapshot["snapshot"] is True and snapshot["data"]["id"] == session["id"]
    assert snapshot["data"]["bars_applied"] == session["bars_applied"]
    assert snapshot["seq"] == subscribed["seq"]
    steady.subscribe(market)
    market_snapshot = steady.next("snapshot", market)
    assert market_snapshot["data"]["bar"]["close"] == bar_rows(1_000, WARM)[-1]["close"]

    resumer = Socket(stack, account)
    resumer.subscribe(channel)
    resumer.next("snapshot", channel)

    # Bars arrive one by one, as from a live feed; the resumer drops out half way.
    rows = bar_rows(1_000 + WARM, 40)
    for row in rows[:20]:
        push(walk, account, symbol, [row])
    twentieth = datetime.fromtimestamp(rows[19]["ts"], UTC)
    bar_events = steady.events(
        market,
        lambda m: datetime.fromisoformat(m["event"]["payload"]["bars"][-1]["ts"]) == twentieth,
    )
    assert all(m["family"] == "intraday_bars" for m in bar_events)
    bar_numbers = [m["seq"] for m in bar_events]
    assert bar_numbers == sorted(set(bar_numbers))  # conflation may skip, never reorder
    seen = resumer.events(channel, lambda m: m["event"]["type"] == "session.equity", timeout=60)
    last_seen = seen[-1]["seq"]
    resumer.close()
    for row in rows[20:]:
        push(walk, account, symbol, [row])
    done = walk.poll(
        f"/api/sessions/{session['id']}",
        account,
        lambda s: s["bars_applied"] == session["bars_applied"] + 40,
    )

    reference = steady.quiet(channel)
    # A newcomer is told the channel's newest number: the reference has everything up to it.
    newcomer = Socket(stack, account)
    assert newcomer.subscribe(channel)["seq"] == reference[-1]["seq"]
    newcomer.close()
    numbers = [m["seq"] for m in reference]
    assert numbers == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(numbers)))
    assert all(
        m["shadow"] == (steady.welcome["features"][m["family"]] == "shadow") for m in reference
    )
    assert {m["family"] for m in reference} >= {"account"}
    equities = [m["event"]["payload"] for m in reference if m["event"]["type"] == "session.equity"]
    assert 0 < equities[-1]["bars_applied"] <= done["bars_applied"]
    assert len({m["event"]["id"] for m in reference}) == len(reference)

    back = Socket(stack, account)
    back.subscribe(channel, resume_from=last_seen)
    resumed = back.events(channel, lambda m: m["seq"] == numbers[-1], timeout=30)
    assert [m["seq"] for m in resumed] == [n for n in numbers if n > last_seen]
    assert [m["event"]["id"] for m in resumed] == [
        m["event"]["id"] for m in reference if m["seq"] > last_seen
    ]

    # Another user: refused on that channel only; the socket goes on.
    stranger = Socket(stack, walk.new_account("stranger"))
    stranger.send(type="subscribe", channel=channel)
    refused = stranger.next("error", channel)
    assert refused["code"] == "not_found"
    stranger.send(type="ping")
    assert stranger.next("pong")["server_time_ms"] > 0
    # Shadow mode: what was pushed agrees with REST wherever it states something checkable.
    walk.expect(
        walk.http.post(f"/api/sessions/{session['id']}/pause", headers=account.headers), 200
    )
    paused = steady.next("event", channel)
    assert paused["event"]["type"] == "session.paused" and paused["family"] == "sessions"
    status = walk.poll(
        "/api/notifications/status",
        account,
        lambda s: s["families"]["sessions"]["parity"]["checked"] >= 1,
    )
    for family in ("account", "sessions"):
        parity = status["families"][family]["parity"]
        assert parity["mismatches"] == 0, (family, parity)
    # Equity pushes are throttled per session, so REST has usually moved past the last one
    # by the time it is compared: counted as moved on, never as agreeing or not.
    account_parity = status["families"]["account"]["parity"]
    assert account_parity["checked"] + account_parity["moved_on"] >= 1
    for socket in (steady, back, stranger):
        socket.close()


@pytest.mark.timeout(300)
def test_a_backtest_streams_to_its_channel_until_it_completes(
    walk: Journey, stack: RunningStack
) -> None:
    account = walk.new_account("notify-bt")
    symbol = "WS-BACKTEST"
    push(walk, account, symbol, bar_rows(2_000, 300))
    strategy = walk.expect(
        walk.http.post(
            "/api/strategies",
            headers=account.headers,
            json={"name": "b", "graph": sma_cross(5, 20)},
        ),
        201,
    )
    rows = bar_rows(2_000, 300)
    socket = Socket(stack, account)
    socket.subscribe("user")
    job = walk.expect(
        walk.http.post(
            "/api/backtests",
            headers=account.headers,
            json={
                "strategy_id": strategy["id"],
                "version": 1,
                "symbol": symbol,
                "timeframe": TIMEFRAME,
                "start": iso(rows[0]["ts"]),
                "end": iso(rows[-1]["ts"] + 1),
                "config": {"initial_capital": 10_000},
            },
        ),
        202,
    )
    channel = f"backtest:{job['id']}"
    socket.subscribe(channel)
    snapshot = socket.next("snapshot", channel)
    assert snapshot["data"]["id"] == job["id"]
    if snapshot["data"]["status"] != "completed":
        events = socket.events(channel, lambda m: m["event"]["type"] == "backtest.completed")
        assert [m["seq"] for m in events] == list(
            range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(events))
        )
        assert all(m["family"] == "backtests" for m in events)
    # The same events reach the user's own channel.
    mine = socket.events("user", lambda m: m["event"]["type"] == "backtest.completed")
    assert mine[-1]["event"]["payload"]["job_id"] == job["id"]
    socket.close()


@pytest.mark.timeout(180)
def test_switching_a_family_is_seen_at_once_and_rest_mode_pushes_nothing(
    walk: Journey, stack: RunningStack
) -> None:
    admin = walk.new_account("notify-admin")
    grant_admin(stack, admin.email)
    walk.login(admin)  # the new role is in the next token
    watcher = walk.new_account("notify-watch")
    symbol = "WS-MODES"
    push(walk, watcher, symbol, bar_rows(3_000, 2))
    socket = Socket(stack, watcher)
    market = f"market:{symbol}:{TIMEFRAME}"
    socket.subscribe(market)
    socket.next("snapshot", market)

    refused = walk.http.put(
        "/api/notifications/features/intraday_bars", headers=watcher.headers, json={"mode": "live"}
    )
    assert refused.status_code == 403 and refused.headers["content-type"].startswith(
        "application/problem+json"
    )
    bad = walk.http.put(
        "/api/notifications/features/intraday_bars", headers=admin.headers, json={"mode": "on"}
    )
    assert bad.status_code == 422

    def switch(mode: str) -> None:
        walk.expect(
            walk.http.put(
                "/api/notifications/features/intraday_bars",
                headers=admin.headers,
                json={"mode": mode, "reason": f"test to {mode}"},
            ),
            200,
        )
        announced = socket.next("features", timeout=10)
        assert announced["features"]["intraday_bars"] == mode

    rows = bar_rows(3_002, 3)

    def bar_of(row: dict[str, Any]) -> Any:
        """Whether a message is the market event carrying ``row``'s bar (the bars pushed
        before subscribing may still arrive as an event of their own)."""
        ts = datetime.fromtimestamp(row["ts"], UTC)
        return lambda m: (
            m["type"] == "event"
            and m["channel"] == market
            and any(datetime.fromisoformat(b["ts"]) == ts for b in m["event"]["payload"]["bars"])
        )

    def withheld() -> int:
        status = walk.expect(
            walk.http.get("/api/notifications/status", headers=watcher.headers), 200
        )
        return int(status["families"]["intraday_bars"]["withheld"])

    try:
        switch("rest")
        before = withheld()
        push(walk, watcher, symbol, [rows[0]])
        walk.poll(  # the bar reached the service, which withheld it
            "/api/notifications/status",
            watcher,
            lambda s: s["families"]["intraday_bars"]["withheld"] > before,
        )
        socket.send(type="ping")
        socket.next("pong")
        assert not any(bar_of(rows[0])(m) for m in socket.kept), "rest mode pushed a bar"
        switch("shadow")
        push(walk, watcher, symbol, [rows[1]])
        assert socket.take(bar_of(rows[1]))["shadow"] is True
        switch("live")
        push(walk, watcher, symbol, [rows[2]])
        assert socket.take(bar_of(rows[2]))["shadow"] is False
        assert not any(bar_of(rows[0])(m) for m in socket.kept), "rest mode pushed a bar"
    finally:
        switch("shadow")
    status = walk.expect(walk.http.get("/api/notifications/status", headers=watcher.headers), 200)
    bars = status["families"]["intraday_bars"]
    assert bars["mode"] == "shadow" and bars["pushed"] >= 2 and bars["withheld"] >= 1
    changes = walk.expect(
        walk.http.get("/api/notifications/features/changes?limit=4", headers=admin.headers), 200
    )
    # Who changed what, and why, is for admins.
    assert (
        walk.http.get("/api/notifications/features/changes", headers=watcher.headers).status_code
        == 403
    )
    assert [c["mode"] for c in changes["data"]] == ["shadow", "live", "shadow", "rest"]
    assert changes["data"][0]["reason"] == "test to shadow"
    socket.close()

    # The command line prints the same table.
    printed = subprocess.run(
        [sys.executable, "-m", "algotrade_devstack.cli", "notifications", "status"],
        env={**os.environ, "ALGOTRADE_URL": stack.url(), "ALGOTRADE_TOKEN": watcher.access_token},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    row = next(line for line in printed.splitlines() if "intraday_bars" in line)
    assert "shadow" in row and str(bars["withheld"]) in row
    refused_cli = subprocess.run(
        [sys.executable, "-m", "algotrade_devstack.cli", "notifications", "set", "orders", "live"],
        env={**os.environ, "ALGOTRADE_URL": stack.url(), "ALGOTRADE_TOKEN": watcher.access_token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused_cli.returncode == 1 and "403" in refused_cli.stderr
