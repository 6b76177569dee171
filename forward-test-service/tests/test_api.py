"""The session API: validation up front (nothing created on bad input), tenancy, the
per-user limit and the status transitions, against the real strategy and market data apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from algotrade.engine import compile_graph

from .conftest import Platform, btc_bars, session_body

SYMBOL = "FTAPI"


async def prepared(platform: Platform, graph: Callable[..., dict[str, Any]]) -> str:
    strategy_id = await platform.save_strategy(graph(5, 20))
    await platform.push(SYMBOL, "4h", btc_bars(60))
    return strategy_id


async def test_a_session_starts_warmed_up_from_the_series_history(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await prepared(platform, graph)
    created = await platform.start(session_body(strategy_id, SYMBOL.lower()))
    assert created.status_code == 201, created.text
    session = created.json()
    plan = compile_graph(graph(5, 20))
    assert session["status"] == "running"
    assert session["symbol"] == SYMBOL and session["owner"] == "alice"
    assert session["version"] == 1 and session["plan_id"] == plan.plan_id
    assert session["warmup"] == plan.warmup
    assert session["bars_applied"] == plan.warmup and session["warmed_up"]
    assert session["capital"] == session["cash"] == session["equity"] == 10_000
    assert session["config"]["calendar"] == "24x7" and session["config"]["timeframe"] == "4h"
    assert session["position"] == 0
    read = await platform.get(f"/api/sessions/{session['id']}")
    assert read.status_code == 200
    assert read.json()["metrics"]["final_equity"] == 10_000
    listed = (await platform.get("/api/sessions", params={"symbol": SYMBOL})).json()
    assert [s["id"] for s in listed["items"]] == [session["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"strategy_id": "01J00000000000000000000000"}, 422, "unknown_strategy"),
        ({"version": 7}, 422, "unknown_strategy"),
        ({"symbol": "NODATA"}, 422, "no_data"),
        ({"timeframe": "1h"}, 422, "no_data"),
        ({"capital": 0}, 422, None),
        ({"capital": -5.0}, 422, None),
        ({"capital": "100"}, 422, None),
        ({"params": {"fast": 1000}}, 422, None),
        ({"params": {"nope": 3}}, 422, None),
        ({"config": {"fee_bps": -1}}, 422, None),
    ],
)
async def test_bad_input_is_a_problem_naming_it_and_creates_nothing(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    strategy_id = await prepared(platform, graph)
    answer = await platform.start({**session_body(strategy_id, SYMBOL), **change})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    if code is not None:
        assert code in {e.get("code") for e in problem.get("errors") or []}, problem
    assert (await platform.get("/api/sessions")).json()["items"] == []


async def test_another_users_session_is_not_found_and_not_listed(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await prepared(platform, graph)
    session = (await platform.start(session_body(strategy_id, SYMBOL))).json()
    base = f"/api/sessions/{session['id']}"
    for path in ("", "/trades", "/orders", "/equity"):
        assert (await platform.get(base + path, user_id="bob")).status_code == 404, path
    for action in ("pause", "resume", "stop"):
        assert (await platform.post(f"{base}/{action}", user_id="bob")).status_code == 404
    deleted = await platform.client.delete(base, headers=platform.headers("bob"))
    assert deleted.status_code == 404
    assert (await platform.get("/api/sessions", user_id="bob")).json()["items"] == []
    # Bob cannot start a session on Alice's strategy or private series either.
    refused = await platform.start(session_body(strategy_id, SYMBOL), user_id="bob")
    assert refused.status_code == 422
    assert (await platform.get(base)).json()["status"] == "running"


async def test_running_sessions_per_user_are_limited(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await prepared(platform, graph)
    limit = platform.settings.max_running_sessions_per_user
    object.__setattr__(platform.settings, "max_running_sessions_per_user", 2)
    try:
        first = (await platform.start(session_body(strategy_id, SYMBOL))).json()
        assert (await platform.start(session_body(strategy_id, SYMBOL))).status_code == 201
        over = await platform.start(session_body(strategy_id, SYMBOL))
        assert over.status_code == 409, over.text
        assert over.headers["content-type"].startswith("application/problem+json")
        assert {e["code"] for e in over.json()["errors"]} == {"too_many_sessions"}
        # A stopped session no longer counts.
        assert (await platform.post(f"/api/sessions/{first['id']}/stop")).status_code == 200
        assert (await platform.start(session_body(strategy_id, SYMBOL))).status_code == 201
    finally:
        object.__setattr__(platform.settings, "max_running_sessions_per_user", limit)


async def test_pause_resume_stop_and_delete_follow_the_status(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await prepared(platform, graph)
    session = (await platform.start(session_body(strategy_id, SYMBOL))).json()
    base = f"/api/sessions/{session['id']}"
    assert (await platform.post(f"{base}/resume")).status_code == 409
    paused = await platform.post(f"{base}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert (await platform.post(f"{base}/pause")).status_code == 409
    assert (await platform.get("/api/sessions", params={"status": "paused"})).json()["items"]
    assert (await platform.post(f"{base}/resume")).json()["status"] == "running"
    stopped = await platform.post(f"{base}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    again = await platform.post(f"{base}/stop")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "stopped" in again.json()["detail"]
    deleted = await platform.client.delete(base, headers=platform.headers())
    assert deleted.status_code == 204
    assert (await platform.get(base)).status_code == 404
    assert (await platform.get("/api/sessions")).json()["items"] == []


async def test_reads_need_the_sessions_scopes(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    strategy_id = await prepared(platform, graph)
    body = session_body(strategy_id, SYMBOL)
    answer = await platform.client.post(
        "/api/sessions", json=body, headers=platform.headers("alice", "sessions:read")
    )
    assert answer.status_code == 403
    listed = await platform.client.get(
        "/api/sessions", headers=platform.headers("alice", "sessions:read")
    )
    assert listed.status_code == 200
    assert (await platform.client.get("/api/sessions")).status_code == 401


async def test_the_series_version_moves_with_every_change_and_counts_the_sessions(
    platform: Platform, graph: Callable[..., dict[str, Any]]
) -> None:
    """What the worker asks on every bar (`SessionStore.series_version`, one row kept by a
    trigger) equals the count and sum of revisions over the series' sessions, after each
    creation, status change and deletion, and differs from the version before."""
    strategy_id = await prepared(platform, graph)
    store = platform.app.state.services.sessions
    seen: list[tuple[int, int]] = []

    async def check(series: str) -> None:
        async with store._sessions() as db:
            exact = (
                await db.execute(
                    text(
                        "SELECT count(*), coalesce(sum(revision), 0) FROM forward.sessions "
                        "WHERE series_key = :series"
                    ),
                    {"series": series},
                )
            ).one()
        version = await store.series_version(series)
        assert version == (exact[0], exact[1])
        assert version not in seen
        seen.append(version)

    first = (await platform.start(session_body(strategy_id, SYMBOL))).json()
    series = (await store.get("alice", first["id"])).series_key
    assert await store.series_version("nobody:1h") == (0, 0)
    await check(series)
    second = (await platform.start(session_body(strategy_id, SYMBOL))).json()
    await check(series)
    for action in ("pause", "resume", "stop"):
        assert (await platform.post(f"/api/sessions/{first['id']}/{action}")).status_code == 200
        await check(series)
    deleted = await platform.client.delete(
        f"/api/sessions/{second['id']}", headers=platform.headers()
    )
    assert deleted.status_code == 204
    await check(series)
    async with store._sessions.begin() as db:  # a row gone for good (the trigger's DELETE)
        await db.execute(text("DELETE FROM forward.sessions WHERE id = :id"), {"id": first["id"]})
    await check(series)
