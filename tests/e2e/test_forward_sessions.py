"""Replay ≡ backtest end to end: only through the gateway, a user replays a series into a
``.R`` target, starts a forward-test session on it, replays the rest, and the session's trades
and final equity equal a backtest of the same strategy version, config and bars."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from algotrade.engine import Bars, compile_graph
from algotrade_devstack.journey import Account, Journey
from algotrade_testkit.bars import push_rows
from algotrade_testkit.graphs import sma_cross

from .conftest import REPO

BARS = 400
SOURCE, TARGET = "BTC-USD", "BTC-USD.RFWD"
CONFIG = {"fee_bps": 10.0, "slippage_bps": 5.0, "calendar": "24x7"}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def replay(walk: Journey, account: Account, start: int, end: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": SOURCE,
        "timeframe": "4h",
        "speed": "max",
        "target_symbol": TARGET,
        "start": iso(start),
    }
    if end is not None:
        body["end"] = iso(end)
    started = walk.expect(
        walk.http.post("/api/market/replays", headers=account.headers, json=body), 201, 202
    )
    return dict(
        walk.poll(
            f"/api/market/replays/{started['id']}",
            account,
            lambda r: r["state"] in ("completed", "failed"),
        )
    )


def until_analysed(
    walk: Journey,
    account: Account,
    path: str,
    done: Callable[[dict[str, Any]], bool] = lambda report: True,
    within: float = 60.0,
) -> dict[str, Any]:
    """The report at ``path`` once analytics has consumed enough events (404 until then)."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        answer = walk.http.get(path, headers=account.headers)
        last = answer.text[:300]
        if answer.status_code == 200:
            report: dict[str, Any] = answer.json()
            if done(report):
                return report
        else:
            assert answer.status_code == 404, answer.text
        time.sleep(0.25)
    raise AssertionError(f"{path} not analysed within {within:.0f}s: {last}")


@pytest.mark.timeout(300)
def test_a_session_on_a_replay_trades_exactly_as_the_backtest_through_the_gateway(
    walk: Journey,
) -> None:
    account = walk.new_account("forward")
    strategy = walk.expect(
        walk.http.post(
            "/api/strategies",
            headers=account.headers,
            json={"name": "x", "graph": sma_cross(5, 20)},
        ),
        201,
    )
    bars = Bars.from_csv(REPO / "data" / "btc-usd-4h.csv").slice(2_000, 2_000 + BARS)
    rows = push_rows(bars)
    walk.expect(
        walk.http.post(
            "/api/market/bars",
            headers=account.headers,
            json={"symbol": SOURCE, "timeframe": "4h", "bars": rows},
        ),
        200,
    )
    warmup = compile_graph(sma_cross(5, 20)).warmup
    ts = bars.ts.tolist()
    first = replay(walk, account, ts[0], ts[warmup])
    assert first["state"] == "completed" and first["bars_emitted"] == warmup, first

    session = walk.expect(
        walk.http.post(
            "/api/sessions",
            headers=account.headers,
            json={
                "strategy_id": strategy["id"],
                "symbol": TARGET,
                "timeframe": "4h",
                "capital": 10_000,
                "config": CONFIG,
            },
        ),
        201,
    )
    assert session["bars_applied"] == warmup and session["warmed_up"]
    rest = replay(walk, account, ts[warmup], None)
    assert rest["state"] == "completed", rest
    done = walk.poll(f"/api/sessions/{session['id']}", account, lambda s: s["bars_applied"] >= BARS)

    backtest = walk.expect(
        walk.http.post(
            "/api/backtests",
            headers=account.headers,
            json={
                "strategy_id": strategy["id"],
                "version": 1,
                "symbol": TARGET,
                "timeframe": "4h",
                "start": iso(ts[0]),
                "end": iso(ts[-1] + 1000),
                "config": {**CONFIG, "initial_capital": 10_000},
            },
        ),
        202,
    )
    result = walk.poll(
        f"/api/backtests/{backtest['id']}", account, lambda j: j["status"] == "completed"
    )
    expected = walk.expect(
        walk.http.get(
            f"/api/backtests/{backtest['id']}/trades",
            headers=account.headers,
            params={"limit": 1000},
        ),
        200,
    )["trades"]
    got = walk.expect(
        walk.http.get(
            f"/api/sessions/{session['id']}/trades",
            headers=account.headers,
            params={"limit": 1000},
        ),
        200,
    )["trades"]
    fields = ("side", "quantity", "entry_price", "exit_price", "fees", "pnl", "exit_reason")
    closed = [t for t in expected if not t["is_open"]]
    assert len(closed) >= 2
    assert [
        (moment(t["entry_time"]), moment(t["exit_time"]), *(t[f] for f in fields)) for t in got
    ] == [
        (moment(t["entry_time"]), moment(t["exit_time"]), *(t[f] for f in fields)) for t in closed
    ]
    assert done["equity"] == result["summary"]["metrics"]["final_equity"]
    assert done["gaps"] == 0

    # Analytics heard of both from Kafka: the backtest's figures are its summary's (one metrics
    # implementation), and the session, replayed on the same bars, matches it trade for trade.
    analysed = until_analysed(walk, account, f"/api/analytics/backtests/{backtest['id']}")
    for name, value in result["summary"]["metrics"].items():
        got = analysed["metrics"][name]
        assert got is None if value is None else got == pytest.approx(value, rel=1e-9), name
    live = until_analysed(
        walk,
        account,
        f"/api/analytics/sessions/{session['id']}",
        lambda r: (
            r.get("coverage", {}).get("complete") is True and r["trades"]["count"] == len(closed)
        ),
    )
    assert live["coverage"]["points"] == BARS - warmup
    assert live["metrics"]["final_equity"] == done["equity"]
    assert live["trades"]["count"] == len(closed)
    comparison = walk.expect(
        walk.http.get(
            f"/api/analytics/strategies/{strategy['id']}/versions/1/comparison",
            headers=account.headers,
            params={"backtest": backtest["id"]},
        ),
        200,
    )
    divergence = comparison["divergence"]
    assert divergence["verdict"] == "consistent", divergence["reasons"]
    assert divergence["trade_matches"] == len(closed)
    assert divergence["trade_mismatches"] == 0
    assert divergence["return_drift"] == pytest.approx(0.0, abs=1e-12)
    assert divergence["mean_entry_delay_bars"] == 0.0
    sheet = walk.http.get(
        f"/api/analytics/reports/comparison/{strategy['id']}.html",
        headers=account.headers,
        params={"version": 1, "backtest": backtest["id"]},
    )
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in sheet.headers["content-security-policy"]
    assert "consistent" in sheet.text and "<svg" in sheet.text
    # Another user sees none of it.
    stranger = walk.new_account("forward-stranger")
    for path in (
        f"/api/analytics/sessions/{session['id']}",
        f"/api/analytics/backtests/{backtest['id']}",
        f"/api/analytics/strategies/{strategy['id']}/versions/1/comparison",
    ):
        assert walk.http.get(path, headers=stranger.headers).status_code == 404
