"""The Python client (`algotrade_client`) against the embedded stack, through the gateway only,
as a strategy author would use it: sign up and log in, save a strategy, import a CSV (progress
seen), backtest it (progress seen; the metrics equal a local run of the same plan on the same
bars), start a forward session on the same series, read the backtest's analytics, follow the
job over the WebSocket; problems arrive as ApiErrors with their fields; an API key is limited
to its scopes; and the async client does the same calls."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from algotrade.engine import Bars, compile_graph
from algotrade_client import AsyncClient, Client, Forbidden, NotFound, Unprocessable
from algotrade_testkit.graphs import sma_cross
from backtesting_service.backtest import BacktestConfig, run_backtest

from .conftest import REPO, RunningStack

CSV = REPO / "data" / "spy-1d.csv"
SYMBOL = "SPY"
CONFIG = {"initial_capital": 100_000.0, "fee_bps": 1.0, "slippage_bps": 1.0}
ANALYSED_WITHIN = 60.0


def new_login() -> tuple[str, str]:
    return f"sdk-{uuid.uuid4().hex[:8]}@example.com", f"Pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def url(stack: RunningStack) -> str:
    return stack.url()


@pytest.fixture
def client(url: str, client_address: str | None) -> Iterator[Client]:
    """A signed-up, logged-in sync client, connecting from the module's own address."""
    transport = httpx.HTTPTransport(local_address=client_address) if client_address else None
    with Client(url, transport=transport) as client:
        email, password = new_login()
        user = client.auth.register(email, password)
        assert user["email"] == email
        pair = client.auth.login(email, password)
        assert client.token == pair["access_token"] and client.refresh_token
        yield client


def until_analysed(client: Client, job_id: str) -> dict[str, Any]:
    """The backtest's report once analytics has consumed its events (404 until then)."""
    deadline = time.monotonic() + ANALYSED_WITHIN
    while True:
        try:
            return client.analytics.backtest(job_id, points=100)
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


@pytest.mark.timeout(180)
def test_a_strategy_author_backtests_and_forward_tests_with_the_client(client: Client) -> None:
    strategy = client.strategies.create("SMA cross", sma_cross(), description="via the SDK")
    assert strategy["current_version"] == 1
    assert [s["id"] for s in client.strategies.list()] == [strategy["id"]]

    imports: list[dict[str, Any]] = []
    imported = client.market.import_file(CSV, SYMBOL, "1d", progress=imports.append, poll=0.1)
    assert imported["state"] == "completed" and imported["accepted"] == 5_849
    assert imports[0]["state"] in ("queued", "running") and imports[-1] == imported
    [series] = client.market.symbols(symbol=SYMBOL)
    assert series["access"] == "owner"

    body = {
        "strategy_id": strategy["id"],
        "version": 1,
        "symbol": SYMBOL,
        "timeframe": "1d",
        "start": "1998-01-01T00:00:00Z",
        "end": "2021-04-01T00:00:00Z",
        "config": CONFIG,
    }
    statuses: list[str] = []
    done = client.backtests.run(body, progress=lambda job: statuses.append(job["status"]))
    assert done["status"] == "completed", done
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    metrics = done["summary"]["metrics"]
    local = run_backtest(
        compile_graph(sma_cross()), Bars.from_csv(CSV), BacktestConfig(**CONFIG)
    ).metrics
    assert metrics["trade_count"] == local.trade_count > 0
    assert metrics["total_return"] == pytest.approx(local.total_return, rel=1e-9)
    assert metrics["final_equity"] == pytest.approx(local.final_equity, rel=1e-9)
    trades = client.backtests.trades(done["id"])
    assert len(trades) == metrics["trade_count"] + metrics["open_trades"]  # every page
    equity = client.backtests.equity(done["id"], points=200)
    assert len(equity["points"]) <= 200 and equity["total_points"] == 5_849

    session = client.sessions.start(
        {"strategy_id": strategy["id"], "symbol": SYMBOL, "timeframe": "1d", "capital": 10_000}
    )
    assert session["status"] == "running" and session["symbol"] == SYMBOL
    read = client.sessions.get(session["id"])
    assert read["id"] == session["id"] and read["status"] == "running"
    assert [s["id"] for s in client.sessions.list(status="running")] == [session["id"]]

    report = until_analysed(client, done["id"])
    assert report["run"]["id"] == done["id"]
    assert report["metrics"]["total_return"] == pytest.approx(metrics["total_return"], rel=1e-9)

    # The job's channel: subscribed, then a snapshot equal to what REST answers.
    for message in client.subscribe([f"backtest:{done['id']}"]):
        if message["type"] == "snapshot":
            assert message["data"]["status"] == "completed"
            break
        assert message["type"] in ("welcome", "subscribed"), message

    assert client.sessions.stop(session["id"])["status"] == "stopped"


def test_problems_arrive_as_api_errors_with_their_fields(client: Client, url: str) -> None:
    with pytest.raises(NotFound) as missing:
        client.strategies.get("01J00000000000000000000000")
    assert missing.value.status == 404 and missing.value.title and missing.value.detail
    assert missing.value.request_id and missing.value.problem["status"] == 404

    strategy = client.strategies.create("x", sma_cross())
    with pytest.raises(Unprocessable) as invalid:
        client.backtests.submit(
            {
                "strategy_id": strategy["id"],
                "version": 1,
                "symbol": SYMBOL,
                "timeframe": "1d",
                "start": "2020-01-01T00:00:00Z",
                "end": "2021-01-01T00:00:00Z",
                "config": {"initial_capital": "100"},  # strict: a string is not a number
            }
        )
    assert invalid.value.status == 422
    assert any(e["loc"][-1] == "initial_capital" for e in invalid.value.errors), invalid.value

    key = client.auth.create_api_key("read strategies", ["strategies:read"])
    with Client(url, api_key=key["key"]) as reader:
        assert [s["id"] for s in reader.strategies.list()] == [strategy["id"]]
        with pytest.raises(Forbidden):
            reader.strategies.create("y", sma_cross())
        assert key["key"] not in repr(reader)
    client.auth.revoke_api_key(key["id"])
    assert [k["revoked_at"] is not None for k in client.auth.api_keys()] == [True]


async def test_the_async_client_logs_in_and_calls(url: str, client_address: str | None) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=client_address) if client_address else None
    async with AsyncClient(url, transport=transport) as client:
        email, password = new_login()
        await client.auth.register(email, password)
        await client.auth.login(email, password)
        me = await client.auth.me()
        assert me["email"] == email and client.token
        templates = await client.strategies.templates()
        assert "sma_cross" in {t["key"] for t in templates}
        with pytest.raises(NotFound):
            await client.sessions.get("01J00000000000000000000000")
