"""The HTTP API without workers: validation up front, ownership, listing, cancelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from algotrade.db import build_engine
from algotrade.problems import PROBLEM_JSON
from backtesting_service.models import SCHEMA, jobs

from .conftest import Service, StrategyServiceStandIn


async def count_rows(database_url: str) -> tuple[int, int]:
    """(jobs, outbox rows): a refused request must leave both at zero."""
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            job_count = await conn.scalar(select(func.count()).select_from(jobs))
            outbox_count = await conn.scalar(select(func.count()).select_from(SCHEMA.outbox))
    finally:
        await engine.dispose()
    return int(job_count or 0), int(outbox_count or 0)


async def test_submit_answers_202_with_a_queued_job_and_stages_its_message(
    service: Service, request_body: Callable[..., dict[str, Any]], migrated: str
) -> None:
    response = await service.submit(request_body())
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "backtest"
    assert job["config"]["initial_capital"] == 100_000
    assert job["config"]["timeframe"] == "1d"  # annualisation follows the request
    assert job["links"]["trades"] == f"/api/backtests/{job['id']}/trades"
    assert await count_rows(migrated) == (1, 1)
    again = await service.get(f"/api/backtests/{job['id']}")
    assert again.json()["id"] == job["id"]


async def test_stored_strategy_version_is_read_with_a_token_for_the_same_user(
    service: Service,
    strategy_service: StrategyServiceStandIn,
    request_body: Callable[..., dict[str, Any]],
    graph: Callable[..., dict[str, Any]],
) -> None:
    strategy_service.versions[("alice", "s-1", 3)] = graph(5, 20)
    body = request_body(graph=None, strategy_id="s-1", version=3)
    response = await service.submit(body)
    assert response.status_code == 202, response.text
    assert response.json()["strategy_id"] == "s-1" and response.json()["version"] == 3
    assert strategy_service.calls == [("alice", "s-1", 3, frozenset({"strategies:read"}))]
    # Bob cannot backtest Alice's strategy: the strategy service answers 404 for him.
    refused = await service.submit(body, user_id="bob")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "unknown_strategy"


async def test_a_4xx_from_the_strategy_service_is_the_callers_422_not_a_503(
    service: Service,
    strategy_service: StrategyServiceStandIn,
    request_body: Callable[..., dict[str, Any]],
) -> None:
    strategy_service.refusals[("alice", "s-1", 7)] = 422
    refused = await service.submit(request_body(graph=None, strategy_id="s-1", version=7))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "version"]
    # A version beyond PostgreSQL's integer is refused here, before any downstream call.
    huge = await service.submit(request_body(graph=None, strategy_id="s-1", version=2**31))
    assert huge.status_code == 422
    assert huge.json()["errors"][0]["loc"][-1] == "version"


BAD_REQUESTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "unknown strategy version": (
        {"graph": None, "strategy_id": "s-1", "version": 99},
        422,
        "has no version 99",
    ),
    "range with no data": (
        {"start": "1980-01-01T00:00:00Z", "end": "1990-01-01T00:00:00Z"},
        422,
        "no 1d bars of SPY",
    ),
    "unknown symbol": ({"symbol": "NOPE"}, 422, "no 1d bars of NOPE"),
    "capital zero": ({"config": {"initial_capital": 0}}, 422, "validation"),
    "capital negative": ({"config": {"initial_capital": -5}}, 422, "validation"),
    "param outside its range": ({"params": {"fast": 500}}, 422, "'fast' must be within"),
    "unknown param": ({"params": {"speed": 5}}, 422, "'speed' is not a parameter"),
    "end before start": ({"end": "2009-01-01T00:00:00Z"}, 422, "validation"),
    "graph and strategy": ({"strategy_id": "s-1", "version": 1}, 422, "validation"),
    "invalid graph": ({"graph": {"nodes": [{"id": "x", "type": "nope"}]}}, 422, "graph"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_requests_are_problems_and_create_no_job(
    case: str,
    service: Service,
    request_body: Callable[..., dict[str, Any]],
    migrated: str,
) -> None:
    overrides, status, text = BAD_REQUESTS[case]
    response = await service.submit(request_body(**overrides))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert text.lower() in (problem["detail"] + problem["title"]).lower(), problem
    assert await count_rows(migrated) == (0, 0)


async def test_capital_problem_names_the_field(
    service: Service, request_body: Callable[..., dict[str, Any]]
) -> None:
    response = await service.submit(request_body(config={"initial_capital": 0}))
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "config", "initial_capital"]


@pytest.mark.parametrize("capital", ["100", True], ids=["string", "bool"])
async def test_a_capital_of_another_json_type_is_refused_not_coerced(
    capital: Any, service: Service, request_body: Callable[..., dict[str, Any]], migrated: str
) -> None:
    response = await service.submit(request_body(config={"initial_capital": capital}))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "config", "initial_capital"]
    assert error["code"] == "float_type"
    assert await count_rows(migrated) == (0, 0)


STRICT_SWEEP_FIELDS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "param override as text": ({"params": {"fast": "5"}}, ["body", "params", "fast"]),
    "seed as a float": ({"search": {"seed": 1.0}}, ["body", "search", "seed"]),
    "grid value as bool": (
        {"search": {"parameters": {"fast": [5, True]}}},
        ["body", "search", "parameters", "fast", "list[float]", 1],
    ),
    "walk-forward bars as text": (
        {"walk_forward": {"train_bars": "100", "test_bars": 10}},
        ["body", "walk_forward", "train_bars"],
    ),
}


@pytest.mark.parametrize("case", list(STRICT_SWEEP_FIELDS))
async def test_sweep_fields_of_another_json_type_are_refused_not_coerced(
    case: str, service: Service, request_body: Callable[..., dict[str, Any]], migrated: str
) -> None:
    overrides, loc = STRICT_SWEEP_FIELDS[case]
    response = await service.submit_sweep(request_body(**overrides))
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["errors"]], response.json()
    assert await count_rows(migrated) == (0, 0)


SWEEP_BAD: dict[str, tuple[dict[str, Any], str]] = {
    "10,000,001 combinations": (
        {"search": {"parameters": {"slow": {"min": 5, "max": 10_000_005, "step": 1}}}},
        "10,000,001 combinations",
    ),
    "value outside the declared range": (
        {"search": {"parameters": {"fast": [5, 10, 101]}}},
        "'fast' must be within",
    ),
    "unknown metric": ({"metric": "luck"}, "validation"),
    "random without samples": ({"search": {"method": "random"}}, "validation"),
}


@pytest.mark.parametrize("case", list(SWEEP_BAD))
async def test_bad_sweeps_are_problems_and_create_no_job(
    case: str,
    service: Service,
    request_body: Callable[..., dict[str, Any]],
    migrated: str,
) -> None:
    overrides, text = SWEEP_BAD[case]
    response = await service.submit_sweep(request_body(**overrides))
    assert response.status_code == 422, response.text
    assert text.lower() in (response.json()["detail"] + response.json()["title"]).lower()
    assert await count_rows(migrated) == (0, 0)


async def test_a_sweep_is_split_into_chunks_one_message_each(
    service: Service, request_body: Callable[..., dict[str, Any]], migrated: str
) -> None:
    body = request_body(search={"parameters": {"fast": [5, 10, 15], "slow": [30, 40, 50]}})
    response = await service.submit_sweep(body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["combinations"], job["chunks_total"]) == ("sweep", 9, 3)
    assert job["links"]["results"] == f"/api/backtests/sweeps/{job['id']}/results"
    assert await count_rows(migrated) == (1, 3)


async def test_users_see_only_their_own_jobs(
    service: Service, request_body: Callable[..., dict[str, Any]]
) -> None:
    job = (await service.submit(request_body())).json()
    for url in (f"/api/backtests/{job['id']}", f"/api/backtests/{job['id']}/trades"):
        response = await service.get(url, user_id="bob")
        assert response.status_code == 404, url
    assert (await service.get("/api/backtests", user_id="bob")).json()["items"] == []
    deleted = await service.client.delete(
        f"/api/backtests/{job['id']}", headers=service.headers("bob")
    )
    assert deleted.status_code == 404
    assert (await service.get(f"/api/backtests/{job['id']}")).json()["status"] == "queued"


async def test_listing_pages_newest_first_and_filters(
    service: Service,
    strategy_service: StrategyServiceStandIn,
    request_body: Callable[..., dict[str, Any]],
    graph: Callable[..., dict[str, Any]],
) -> None:
    strategy_service.versions[("alice", "s-1", 1)] = graph()
    ids = [(await service.submit(request_body())).json()["id"] for _ in range(3)]
    stored = await service.submit(request_body(graph=None, strategy_id="s-1", version=1))
    ids.append(stored.json()["id"])
    first = (await service.get("/api/backtests", params={"limit": 3})).json()
    assert [j["id"] for j in first["items"]] == ids[::-1][:3]
    rest = (await service.get("/api/backtests", params={"cursor": first["next_cursor"]})).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    by_strategy = (await service.get("/api/backtests", params={"strategy_id": "s-1"})).json()
    assert [j["id"] for j in by_strategy["items"]] == [ids[3]]
    queued = (await service.get("/api/backtests", params={"status": "queued"})).json()
    assert len(queued["items"]) == 4


async def test_cancel_a_queued_job_then_cancel_again_conflicts(
    service: Service, request_body: Callable[..., dict[str, Any]]
) -> None:
    job = (await service.submit(request_body())).json()
    url = f"/api/backtests/{job['id']}"
    cancelled = await service.client.delete(url, headers=service.headers())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await service.client.delete(url, headers=service.headers())
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]
    trades = await service.get(f"{url}/trades")
    assert trades.status_code == 409


async def test_reading_needs_the_read_scope_and_submitting_the_write_scope(
    service: Service, request_body: Callable[..., dict[str, Any]]
) -> None:
    read_only = service.headers("alice", "backtests:read")
    response = await service.client.post("/api/backtests", json=request_body(), headers=read_only)
    assert response.status_code == 403
    assert (await service.client.get("/api/backtests", headers=read_only)).status_code == 200
    assert (await service.client.get("/api/backtests")).status_code == 401


async def test_an_offset_beyond_int64_is_a_422_not_a_500(
    service: Service, request_body: Callable[..., dict[str, Any]]
) -> None:
    job = (await service.submit_sweep(request_body(search={"parameters": {"fast": [5]}}))).json()
    for url in (f"/api/backtests/sweeps/{job['id']}/results", f"/api/backtests/{job['id']}/trades"):
        response = await service.get(url, params={"offset": str(2**63)})
        assert response.status_code == 422, (url, response.text)
        assert response.json()["errors"][0]["loc"] == ["query", "offset"]


async def test_a_garbage_cursor_is_a_422_not_ignored(service: Service) -> None:
    for cursor in ("garbage", "0" * 27, "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"):
        response = await service.get("/api/backtests", params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
