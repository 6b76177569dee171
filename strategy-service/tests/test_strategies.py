"""CRUD, versions, optimistic concurrency, soft delete, listing and search."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from strategy_testkit import PROBLEM, Service, broken_graph, sma_cross

from strategy_service.models import SCHEMA, Strategy, StrategyVersion


async def count_rows(service: Service, table: Any) -> int:
    sessions = service.app.state.resources.sessions
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_create_saves_version_one_and_get_returns_the_graph(service: Service) -> None:
    graph = sma_cross(editor={"x": 1.5})
    created = await service.create(graph, name="  Golden cross  ")
    assert created["name"] == "Golden cross"
    assert created["current_version"] == 1
    assert created["owner_id"] == "u1"
    assert len(created["plan_id"]) == 64
    assert created["graph"] == graph

    got = await service.call("GET", f"/api/strategies/{created['id']}")
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json() == created

    version = await service.call("GET", f"/api/strategies/{created['id']}/versions/1")
    assert version.status_code == 200
    body = version.json()
    assert body["graph"] == graph and body["plan_id"] == created["plan_id"]
    assert body["strategy_id"] == created["id"] and body["n"] == 1


async def test_ids_are_case_insensitive_ulids(service: Service) -> None:
    created = await service.create()
    lower = await service.call("GET", f"/api/strategies/{created['id'].lower()}")
    assert lower.status_code == 200
    assert (await service.call("GET", "/api/strategies/not-an-id")).status_code == 404


async def test_patch_of_name_alone_keeps_the_version(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    renamed = await service.call("PATCH", url, json={"name": "Renamed", "description": "new"})
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert (body["name"], body["description"]) == ("Renamed", "new")
    assert body["current_version"] == 1
    assert body["updated_at"] > created["updated_at"]
    versions = await service.call("GET", f"{url}/versions")
    assert versions.json()["count"] == 1


async def test_patch_with_a_graph_creates_an_immutable_version(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    saved = await service.call(
        "PATCH", url, json={"graph": sma_cross(fast=5), "expected_version": 1}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["current_version"] == 2
    assert saved.headers["etag"] == '"2"'
    assert saved.json()["plan_id"] != created["plan_id"]

    first = (await service.call("GET", f"{url}/versions/1")).json()
    second = (await service.call("GET", f"{url}/versions/2")).json()
    assert first["graph"] == created["graph"] and first["plan_id"] == created["plan_id"]
    assert second["graph"]["parameters"]["fast"]["default"] == 5
    assert (await service.call("GET", f"{url}/versions/3")).status_code == 404

    listed = (await service.call("GET", f"{url}/versions")).json()
    assert [v["n"] for v in listed["data"]] == [2, 1]
    assert listed["count"] == 2
    assert "graph" not in listed["data"][0]


async def test_stale_expected_version_or_if_match_is_a_conflict(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    assert (await service.call("PATCH", url, json={"graph": sma_cross(fast=5)})).status_code == 200

    stale = await service.call(
        "PATCH", url, json={"graph": sma_cross(fast=6), "expected_version": 1}
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"] == PROBLEM
    assert stale.json()["errors"] == [{"code": "version_conflict", "current_version": 2}]

    stale_header = await service.call(
        "PATCH", url, json={"graph": sma_cross(fast=6)}, headers={"If-Match": '"1"'}
    )
    assert stale_header.status_code == 409
    fresh_header = await service.call(
        "PATCH", url, json={"graph": sma_cross(fast=6)}, headers={"If-Match": '"2"'}
    )
    assert fresh_header.status_code == 200 and fresh_header.json()["current_version"] == 3
    bad_header = await service.call(
        "PATCH", url, json={"name": "x"}, headers={"If-Match": "yesterday"}
    )
    assert bad_header.status_code == 400
    assert await count_rows(service, StrategyVersion) == 3


async def test_concurrent_saves_get_distinct_versions(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    results = await asyncio.gather(
        *(service.call("PATCH", url, json={"graph": sma_cross(fast=3 + i)}) for i in range(6))
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sorted(r.json()["current_version"] for r in results) == [2, 3, 4, 5, 6, 7]

    # With expected_version, exactly one of several racing saves based on v7 wins.
    racing = await asyncio.gather(
        *(
            service.call(
                "PATCH", url, json={"graph": sma_cross(fast=20 + i), "expected_version": 7}
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in racing) == [200, 409, 409, 409]


async def test_invalid_graph_is_422_with_every_problem_and_writes_nothing(
    service: Service,
) -> None:
    response = await service.call(
        "POST", "/api/strategies", json={"name": "bad", "graph": broken_graph()}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    codes = {e["code"] for e in problem["errors"]}
    assert {"unknown_node_type", "param_out_of_range", "no_entry_signal"} <= codes
    for error in problem["errors"]:
        assert set(error) == {"node_id", "port", "code", "message"}
    assert any(e["node_id"] == "avg" for e in problem["errors"])
    assert await count_rows(service, Strategy) == 0
    assert await count_rows(service, StrategyVersion) == 0
    assert await count_rows(service, SCHEMA.outbox) == 0

    created = await service.create()
    patched = await service.call(
        "PATCH", f"/api/strategies/{created['id']}", json={"graph": broken_graph(), "name": "x"}
    )
    assert patched.status_code == 422
    after = (await service.call("GET", f"/api/strategies/{created['id']}")).json()
    assert after["current_version"] == 1 and after["name"] == created["name"]


async def test_delete_is_soft(service: Service) -> None:
    keep = await service.create(name="keep")
    gone = await service.create(name="gone")
    url = f"/api/strategies/{gone['id']}"
    deleted = await service.call("DELETE", url)
    assert deleted.status_code == 204

    for method, path in [
        ("GET", url),
        ("GET", f"{url}/versions"),
        ("GET", f"{url}/versions/1"),
        ("POST", f"{url}/compile"),
        ("PATCH", url),
        ("DELETE", url),
    ]:
        response = await service.call(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    listed = (await service.call("GET", "/api/strategies")).json()
    assert [s["id"] for s in listed["data"]] == [keep["id"]] and listed["count"] == 1
    # The rows stay: versions are referenced by backtests.
    assert await count_rows(service, Strategy) == 2
    assert await count_rows(service, StrategyVersion) == 2


async def test_list_pages_with_total_search_and_sort(service: Service) -> None:
    names = ["Alpha trend", "beta reversion", "Gamma 100%_sure", "delta trend", "Epsilon"]
    ids = [(await service.create(name=name))["id"] for name in names]

    page = (await service.call("GET", "/api/strategies", params={"limit": 2})).json()
    assert page["count"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert [s["id"] for s in page["data"]] == ids[::-1][:2]  # newest first
    rest = (await service.call("GET", "/api/strategies", params={"limit": 2, "offset": 4})).json()
    assert [s["id"] for s in rest["data"]] == [ids[0]]
    assert "graph" not in rest["data"][0] and len(rest["data"][0]["plan_id"]) == 64

    found = (await service.call("GET", "/api/strategies", params={"q": "TREND"})).json()
    assert sorted(s["name"] for s in found["data"]) == ["Alpha trend", "delta trend"]
    assert found["count"] == 2
    literal = (await service.call("GET", "/api/strategies", params={"q": "%_"})).json()
    assert [s["name"] for s in literal["data"]] == ["Gamma 100%_sure"]
    by_description = (await service.call("GET", "/api/strategies", params={"q": "tes"})).json()
    assert by_description["count"] == 5  # every description is "test"

    by_name = (await service.call("GET", "/api/strategies", params={"sort": "name"})).json()
    assert [s["name"] for s in by_name["data"]] == sorted(names, key=str.lower)

    too_many = await service.call("GET", "/api/strategies", params={"limit": 101})
    assert too_many.status_code == 422 and too_many.headers["content-type"] == PROBLEM


async def test_delete_honours_if_match(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    stale = await service.call("DELETE", url, headers={"If-Match": '"2"'})
    assert stale.status_code == 409
    assert (await service.call("GET", url)).status_code == 200
    assert (
        await service.call("DELETE", url, headers={"If-Match": 'W/"1", "7"'})
    ).status_code == 204
