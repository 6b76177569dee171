"""The analytics service end to end on real PostgreSQL, Kafka and S3: events applied once
whatever their order and repetition, the figures those of `algotrade.metrics` for the same
curve, backtests read from their S3 results, portfolios that add up, and each user alone with
their own runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from algotrade import backtest_events, session_events
from algotrade.engine import compile_graph
from algotrade.events import default_registry, new_event_id
from algotrade.metrics import compute_metrics, periods_per_year
from algotrade.simulation import BacktestConfig
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.plugin import wait_for
from backtesting_service.backtest import run_backtest
from backtesting_service.results import ResultStore, parquet_bytes, results_prefix

from .conftest import Analytics, btc_bars, hold_curve

CAPITAL = 10_000.0


async def report_when(
    analytics: Analytics, path: str, done: Any = lambda r: True, user: str = "alice", **params: Any
) -> dict[str, Any]:
    """The report once analytics consumed enough (404 until the run is known)."""
    found: dict[str, Any] = {}

    async def ready() -> bool:
        answer = await analytics.get(path, user, params=params)
        if answer.status_code != 200:
            assert answer.status_code == 404, answer.text
            return False
        found.update(answer.json())
        return bool(done(found))

    await wait_for(ready, within=60, interval=0.2)
    return found


def assert_same_metrics(got: dict[str, Any], want: dict[str, Any], rel: float) -> None:
    """Each metric equal within ``rel`` (undefined ones are null on both sides)."""
    assert set(got) == set(want)
    for name, value in want.items():
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(value, rel=rel), name


def expected_metrics(ts: Any, equity: Any, position: Any, close: Any, tf: str) -> dict[str, Any]:
    return compute_metrics(
        np.asarray(equity, dtype=np.float64),
        initial_capital=CAPITAL,
        periods=periods_per_year(tf, "24x7"),
        closed_pnl=np.empty(0),
        open_trades=int(position[-1] != 0),
        traded_notional=0.0,
        position=np.asarray(position, dtype=np.float64),
        close=np.asarray(close, dtype=np.float64),
    ).as_dict()


async def test_session_events_in_any_order_and_repeated_give_the_metrics_of_the_curve(
    analytics: Analytics,
) -> None:
    bars = btc_bars(600, first=4_000)
    equity, position = hold_curve(bars, CAPITAL, 0.05)
    ts = bars.ts.tolist()
    sid = new_event_id()
    topic = analytics.topics.session_events
    points = list(zip(ts, equity.tolist(), position.tolist(), strict=True))
    # The equity arrives before session.started (the outbox relays that one later); one
    # event twice (redelivery), and the last points again in a later event (a restarted
    # worker sends its pending points again).
    early = default_registry.build(
        session_events.EQUITY,
        session_events.SessionEquity(
            session_id=sid,
            ts=ts[299],
            equity=equity[299],
            cash=0.0,
            position=0.05,
            bars_applied=300,
            points=points[:300],
        ),
        producer="test",
        key=sid,
        user_id="alice",
    )
    await analytics.publish_envelope(topic, early)
    await analytics.publish_envelope(topic, early)
    await analytics.session(sid, ts, equity.tolist(), position.tolist(), capital=CAPITAL, chunk=250)
    await analytics.push_bars("BTC-USD", "4h", bars)

    report = await report_when(
        analytics,
        f"/api/analytics/sessions/{sid}",
        lambda r: r["coverage"]["points"] == 600,
        points=100_000,
    )
    assert report["coverage"] == {"points": 600, "expected": 600, "complete": True}
    assert report["series"]["ts"] == ts
    want = expected_metrics(ts, equity, position, bars.close, "4h")
    assert_same_metrics(report["metrics"], want, rel=1e-12)
    # The benchmark defaults to the symbol traded: holding it is this curve's shape.
    assert report["conventions"]["benchmark"] == "BTC-USD"
    assert report["risk"]["beta"]["beta"] == pytest.approx(
        np.cov(np.diff(equity) / equity[:-1], np.diff(bars.close) / bars.close[:-1])[0, 1]
        / np.var(np.diff(bars.close) / bars.close[:-1], ddof=1),
        rel=1e-9,
    )
    assert [row["method"] for row in report["risk"]["var"]].count("historical") == 2
    assert len(report["drawdowns"]) == 5
    # Charts get at most `points` points; the figures still use every bar.
    thin = (await analytics.get(f"/api/analytics/sessions/{sid}", params={"points": 50})).json()
    assert len(thin["series"]["ts"]) == 50 and thin["metrics"] == report["metrics"]
    # Nobody else sees it, and a bad query is a problem naming the parameter.
    assert (await analytics.get(f"/api/analytics/sessions/{sid}", "bob")).status_code == 404
    bad = await analytics.get(f"/api/analytics/sessions/{sid}", params={"confidence": 2})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert "confidence" in bad.text
    missing = await analytics.get(f"/api/analytics/sessions/{sid}", params={"benchmark": "NOPE"})
    assert missing.status_code == 422 and "benchmark" in missing.text


async def test_trades_fills_and_status_are_applied_once(analytics: Analytics) -> None:
    bars = btc_bars(50, first=100)
    equity, position = hold_curve(bars, CAPITAL, 0.0)
    ts = bars.ts.tolist()
    sid = new_event_id()
    await analytics.session(sid, ts, equity.tolist(), position.tolist(), capital=CAPITAL)
    topic = analytics.topics.session_events
    pnls = [120.0, -40.0, 15.5]
    for seq, pnl in enumerate(pnls):
        trade = session_events.TradeClosed(
            session_id=sid,
            seq=seq,
            side="long",
            entry_ts=ts[seq * 10],
            exit_ts=ts[seq * 10 + 4],
            entry_price=100.0,
            exit_price=100.0 + pnl,
            quantity=1.0,
            pnl=pnl,
            fees=0.0,
            exit_reason="signal",
        )
        for _ in range(2):  # the same trade in two events: stored once
            await analytics.publish(topic, session_events.TRADE_CLOSED, trade, sid)
    await analytics.publish(
        topic,
        session_events.STOPPED,
        session_events.SessionStatusChanged(session_id=sid, status="stopped"),
        sid,
    )
    report = await report_when(
        analytics,
        f"/api/analytics/sessions/{sid}",
        lambda r: r["trades"]["count"] == 3 and "stopped" in r["subtitle"],
        benchmark="none",
    )
    trades = report["trades"]
    assert trades["best"] == 120.0 and trades["worst"] == -40.0
    assert trades["win_rate"] == pytest.approx(2 / 3)
    assert trades["profit_factor"] == pytest.approx(135.5 / 40.0)
    assert trades["avg_bars_held"] == 4.0
    assert report["run"]["status"] == "stopped"
    assert report["risk"]["beta"] is None and report["series"]["benchmark"] is None


async def test_a_backtest_is_read_from_its_s3_results_with_the_same_metrics(
    analytics: Analytics,
) -> None:
    bars = btc_bars(1_500, first=2_000)
    plan = compile_graph(sma_cross(5, 20))
    config = BacktestConfig(initial_capital=CAPITAL, fee_bps=10, slippage_bps=5, calendar="24x7")
    result = run_backtest(plan, bars, config)
    job = new_event_id()
    await analytics.store.ensure_bucket()
    await ResultStore(analytics.store).put_backtest(
        "alice",
        job,
        result.summary(),
        parquet_bytes(result.equity_table()),
        parquet_bytes(result.trades_table()),
    )
    await analytics.push_bars("BTC-USD", "4h", bars)
    await analytics.publish(
        analytics.topics.backtest_events,
        backtest_events.COMPLETED,
        backtest_events.BacktestCompleted(
            job_id=job,
            kind="backtest",
            strategy_id="s1",
            strategy_version=1,
            plan_id=plan.plan_id,
            symbol="BTC-USD",
            timeframe="4h",
            results_prefix=results_prefix("alice", job),
            summary={"metrics": result.metrics.as_dict(), "calendar": "24x7"},
        ),
        job,
    )
    report = await report_when(analytics, f"/api/analytics/backtests/{job}")
    assert_same_metrics(report["metrics"], result.metrics.as_dict(), rel=1e-9)
    assert report["trades"]["count"] == result.metrics.trade_count
    assert (await analytics.get(f"/api/analytics/backtests/{job}", "bob")).status_code == 404
    sheet = await analytics.get(f"/api/analytics/reports/backtest/{job}.html")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/html")
    assert "script-src" not in sheet.headers["content-security-policy"]
    assert "<script" not in sheet.text.lower()


async def test_portfolios_add_up_and_refuse_what_is_not_yours(analytics: Analytics) -> None:
    bars = btc_bars(400, first=1_000)
    ts = bars.ts.tolist()
    a, b, theirs = new_event_id(), new_event_id(), new_event_id()
    curve_a, pos_a = hold_curve(bars, CAPITAL, 0.1)
    curve_b, pos_b = hold_curve(bars.slice(100, 400), 2 * CAPITAL, -0.05)  # starts later, short
    await analytics.session(a, ts, curve_a.tolist(), pos_a.tolist(), capital=CAPITAL)
    await analytics.session(
        b, ts[100:], curve_b.tolist(), pos_b.tolist(), capital=2 * CAPITAL, symbol="ETH-USD"
    )
    await analytics.session(
        theirs, ts, curve_a.tolist(), pos_a.tolist(), capital=CAPITAL, user_id="bob"
    )
    for sid, n in ((a, 400), (b, 300)):
        await report_when(
            analytics, f"/api/analytics/sessions/{sid}", lambda r, n=n: r["coverage"]["points"] == n
        )

    refused = await analytics.post(
        "/api/analytics/portfolios",
        {"name": "p", "members": [{"kind": "session", "id": a}, {"kind": "session", "id": theirs}]},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "members", 1]
    for body in (
        {
            "name": "p",
            "members": [{"kind": "session", "id": a, "weight": "1"}],
            "weighting": "weights",
        },
        {"name": "p", "members": [{"kind": "session", "id": a, "weight": 1}]},
        {"name": "p", "members": [{"kind": "session", "id": a}, {"kind": "session", "id": a}]},
        {"name": "p", "members": []},
        {"name": "p", "members": [{"kind": "session", "id": "x"}]},
    ):
        answer = await analytics.post("/api/analytics/portfolios", body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"

    members = [{"kind": "session", "id": a}, {"kind": "session", "id": b}]
    created = await analytics.post(
        "/api/analytics/portfolios", {"name": "<b>both</b>", "members": members}
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    report = (
        await analytics.get(f"/api/analytics/portfolios/{pid}", params={"points": 100_000})
    ).json()
    # Capital weights: the portfolio is the sum of the two accounts on the common clock (b
    # holds its capital until its first bar).
    total = curve_a.copy() + 2 * CAPITAL
    total[100:] += curve_b - 2 * CAPITAL
    assert report["series"]["equity"] == pytest.approx(total.tolist(), rel=1e-12)
    assert report["metrics"]["final_equity"] == pytest.approx(total[-1], rel=1e-12)
    assert [m["weight"] for m in report["members"]] == pytest.approx([1 / 3, 2 / 3])
    corr = report["correlation"]["matrix"]
    assert corr[0][0] == pytest.approx(1.0) and corr[1][1] == pytest.approx(1.0)
    assert corr[0][1] == pytest.approx(-1.0, abs=0.2)  # long and short the same thing, nearly
    by_symbol = {row["symbol"]: row for row in report["exposure"]["by_symbol"]}
    assert set(by_symbol) == {"BTC-USD", "ETH-USD"}
    assert report["exposure"]["hhi"] == pytest.approx((1 / 3) ** 2 + (2 / 3) ** 2)
    assert "members trade different symbols" in report["conventions"]["benchmark_note"]

    equal = await analytics.post(
        "/api/analytics/portfolios", {"name": "eq", "members": members, "weighting": "equal"}
    )
    eq = (await analytics.get(f"/api/analytics/portfolios/{equal.json()['id']}")).json()
    assert eq["metrics"]["final_equity"] == pytest.approx(
        3 * CAPITAL * (0.5 * curve_a[-1] / CAPITAL + 0.5 * curve_b[-1] / (2 * CAPITAL)), rel=1e-12
    )

    html = await analytics.get(f"/api/analytics/reports/portfolio/{pid}.html")
    assert html.status_code == 200
    assert "<b>both</b>" not in html.text and "&lt;b&gt;both&lt;/b&gt;" in html.text
    assert (await analytics.get(f"/api/analytics/portfolios/{pid}", "bob")).status_code == 404
    listed = (await analytics.get("/api/analytics/portfolios")).json()["portfolios"]
    assert {p["id"] for p in listed} == {pid, equal.json()["id"]}
    assert (
        await analytics.client.delete(
            f"/api/analytics/portfolios/{pid}", headers=analytics.headers("bob")
        )
    ).status_code == 404
    assert (
        await analytics.client.delete(
            f"/api/analytics/portfolios/{pid}", headers=analytics.headers()
        )
    ).status_code == 204
    assert math.isfinite(report["metrics"]["sharpe"])


async def test_scopes_are_required(analytics: Analytics) -> None:
    answer = await analytics.client.get(
        "/api/analytics/portfolios", headers=analytics.headers("alice", "sessions:read")
    )
    assert answer.status_code == 403
    post = await analytics.client.post(
        "/api/analytics/portfolios",
        json={"name": "p", "members": [{"kind": "session", "id": new_event_id()}]},
        headers=analytics.headers("alice", "analytics:read"),
    )
    assert post.status_code == 403
