"""Listings come back whole (offset pages by what each page held, cursor pages until the
cursor is null), waits call progress with every status, and an import uploads then polls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_fakes import FakeGateway, Handler

from algotrade_client import AsyncClient, Client

TOKEN = "A1"


def offset_listing(items: list[dict[str, Any]], key: str, total: str, clamp: int) -> Handler:
    """A page handler over ``items`` that clamps ``limit`` as the services do."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        limit = min(int(request.url.params.get("limit", 20)), clamp)
        return httpx.Response(
            200,
            json={key: items[offset : offset + limit], total: len(items), "limit": limit},
        )

    return handler


def cursor_listing(items: list[dict[str, Any]], size: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        start = (
            0 if cursor is None else next(i for i, x in enumerate(items) if x["id"] == cursor) + 1
        )
        page = items[start : start + size]
        more = start + size < len(items)
        return httpx.Response(
            200, json={"items": page, "next_cursor": page[-1]["id"] if more else None}
        )

    return handler


def test_strategies_and_trades_are_read_across_clamped_offset_pages() -> None:
    strategies = [{"id": f"s{i}"} for i in range(250)]
    trades = [{"pnl": float(i)} for i in range(2_345)]
    gateway = FakeGateway()
    gateway.on("GET", "/api/strategies", offset_listing(strategies, "data", "count", 100))
    gateway.on("GET", "/api/backtests/j1/trades", offset_listing(trades, "trades", "total", 500))
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        assert client.strategies.list() == strategies
        assert client.backtests.trades("j1") == trades
    assert [p["offset"] for p in gateway.params("/api/strategies")] == ["0", "100", "200"]
    offsets = [int(p["offset"]) for p in gateway.params("/api/backtests/j1/trades")]
    assert offsets == [0, 500, 1000, 1500, 2000]


def test_an_empty_listing_is_one_request() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/sessions/s1/trades", offset_listing([], "trades", "total", 100))
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        assert client.sessions.trades("s1") == []
    assert len(gateway.requests) == 1


async def test_sessions_are_read_across_cursor_pages_with_their_filter() -> None:
    sessions = [{"id": f"S{i:03d}"} for i in range(230)]
    gateway = FakeGateway()
    gateway.on("GET", "/api/sessions", cursor_listing(sessions, 100))
    async with AsyncClient(token=TOKEN, transport=gateway.transport()) as client:
        assert await client.sessions.list(status="running") == sessions
    params = gateway.params("/api/sessions")
    assert [p.get("cursor") for p in params] == [None, "S099", "S199"]
    assert all(p["status"] == "running" for p in params)


def test_an_agents_commands_are_read_across_cursor_pages_with_their_filter() -> None:
    commands = [{"id": f"C{i:03d}", "state": "queued"} for i in range(150)]
    gateway = FakeGateway()
    gateway.on("GET", "/api/agents/a1/queue", cursor_listing(commands, 100))
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        assert client.agents.commands("a1", state="queued") == commands
    params = gateway.params("/api/agents/a1/queue")
    assert [p.get("cursor") for p in params] == [None, "C099"]
    assert all(p["state"] == "queued" and p["limit"] == "100" for p in params)


def job_sequence(*statuses: tuple[str, float]) -> Handler:
    """A job that answers each (status, progress) in turn, then stays at the last."""
    answers = [{"id": "j1", "kind": "backtest", "status": s, "progress": p} for s, p in statuses]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers.pop(0) if len(answers) > 1 else answers[0])

    return handler


def test_wait_calls_progress_with_each_status_until_the_job_ends() -> None:
    gateway = FakeGateway()
    gateway.on(
        "GET",
        "/api/backtests/j1",
        job_sequence(("queued", 0.0), ("running", 0.5), ("completed", 1.0)),
    )
    seen: list[tuple[str, float]] = []
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        done = client.backtests.wait(
            "j1", progress=lambda s: seen.append((s["status"], s["progress"])), poll=0.001
        )
    assert done["status"] == "completed"
    assert seen == [("queued", 0.0), ("running", 0.5), ("completed", 1.0)]


def test_wait_gives_up_after_its_timeout() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/backtests/j1", job_sequence(("running", 0.1)))
    with (
        Client(token=TOKEN, transport=gateway.transport()) as client,
        pytest.raises(TimeoutError, match=r"job j1 did not finish within 0\.05 s"),
    ):
        client.backtests.wait("j1", poll=0.01, timeout=0.05)


async def test_run_submits_then_waits_from_the_submission() -> None:
    gateway = FakeGateway()
    gateway.on(
        "POST",
        "/api/backtests",
        lambda request: httpx.Response(
            202, json={"id": "j1", "kind": "backtest", "status": "queued", "progress": 0.0}
        ),
    )
    gateway.on("GET", "/api/backtests/j1", job_sequence(("failed", 0.0)))
    seen: list[str] = []
    async with AsyncClient(token=TOKEN, transport=gateway.transport()) as client:
        done = await client.backtests.run(
            {"symbol": "SPY"}, progress=lambda s: seen.append(s["status"]), poll=0.001
        )
    assert done["status"] == "failed" and seen == ["queued", "failed"]
    assert json.loads(gateway.requests[0].content) == {"symbol": "SPY"}


def test_import_file_uploads_the_file_and_polls_until_done(tmp_path: Path) -> None:
    csv = tmp_path / "spy.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2020-01-02T00:00:00Z,1,2,0.5,1.5,10\n")
    states = iter(["running", "completed"])
    gateway = FakeGateway()
    gateway.on(
        "POST",
        "/api/market/imports",
        lambda request: httpx.Response(202, json={"id": "i1", "state": "queued"}),
    )
    gateway.on(
        "GET",
        "/api/market/imports/i1",
        lambda request: httpx.Response(200, json={"id": "i1", "state": next(states)}),
    )
    seen: list[str] = []
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        done = client.market.import_file(
            csv, "SPY", "1d", progress=lambda s: seen.append(s["state"]), poll=0.001
        )
    assert done["state"] == "completed" and seen == ["queued", "running", "completed"]
    upload = gateway.requests[0]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    body = upload.content.decode()
    assert 'name="file"; filename="spy.csv"' in body and "2020-01-02T00:00:00Z" in body
    assert 'name="symbol"\r\n\r\nSPY' in body and 'name="timeframe"\r\n\r\n1d' in body


def test_paths_encode_ids_and_symbols() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/strategies/a%2F..%2Fb", {"id": "x"})
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        client.strategies.get("a/../b")
    assert gateway.requests[0].url.raw_path == b"/api/strategies/a%2F..%2Fb"


def test_new_version_instantiate_and_analytics_send_what_the_routes_take() -> None:
    gateway = FakeGateway()
    gateway.on("PATCH", "/api/strategies/s1", {"id": "s1", "current_version": 2})
    gateway.on(
        "POST",
        "/api/strategies/templates/sma_cross/instantiate",
        lambda request: httpx.Response(201, json={"id": "s2"}),
    )
    gateway.on("GET", "/api/analytics/backtests/j1", {"metrics": {}})
    gateway.on("POST", "/api/strategies/s1/compile", {"plan_id": "p"})
    gateway.on(
        "GET",
        "/api/analytics/reports/backtest/j1.html",
        lambda request: httpx.Response(200, text="<html>sheet</html>"),
    )
    with Client(token=TOKEN, transport=gateway.transport()) as client:
        assert client.strategies.new_version("s1", {"nodes": []}, expected_version=1)["id"] == "s1"
        client.strategies.instantiate("sma_cross", "mine", {"fast": 5})
        client.analytics.backtest("j1", confidence=0.99, points=100)
        assert client.analytics.report_html("backtest", "j1") == "<html>sheet</html>"
        client.strategies.compile("s1", version=1, parameters={"fast": 7})
    patch, instantiate = (json.loads(r.content) for r in gateway.requests[:2])
    compile_request = gateway.requests[-1]
    assert json.loads(compile_request.content) == {"parameters": {"fast": 7}}
    assert dict(compile_request.url.params) == {"version": "1"}
    assert patch == {"graph": {"nodes": []}, "expected_version": 1}
    assert instantiate == {"parameters": {"fast": 5}, "name": "mine"}
    assert dict(gateway.requests[2].url.params) == {"confidence": "0.99", "points": "100"}
