"""Hostile and malformed requests get a 4xx problem+json naming what is wrong, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from strategy_testkit import PROBLEM, Service, sma_cross

from algotrade.engine import MAX_GRAPH_BYTES, MAX_NODES


@pytest.fixture
def service(module_service: Service) -> Service:
    """These tests share one service per module; each looks only at what it created."""
    return module_service


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def post_raw(service: Service, path: str, content: bytes, **headers: str) -> httpx.Response:
    return await service.client.post(
        path,
        content=content,
        headers={**service.headers(), "content-type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": "x", "graph": {',
        b"",
        b'{"name": "x", "graph": {"nodes": [], "meta": {"v": NaN}}}',
        b'{"name": "x", "graph": {"nodes": [], "meta": {"v": Infinity}}}',
        b'{"name": "x",, }',
        '{"name": "\xff"}'.encode("latin-1"),
    ],
)
async def test_malformed_json_is_400(service: Service, content: bytes) -> None:
    response = await post_raw(service, "/api/strategies", content)
    assert response.status_code in (400, 422), response.text
    assert response.status_code == 422 if not content else 400
    assert response.headers["content-type"] == PROBLEM


async def test_a_10_mb_body_is_413_before_it_is_read(service: Service) -> None:
    big = b'{"name": "x", "graph": {"meta": {"pad": "' + b"x" * 10_000_000 + b'"}}}'
    response = await post_raw(service, "/api/strategies", big)
    assert_problem(response, 413)
    # Also when the client does not declare the length (chunked upload).

    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 262_144

    streamed = await service.client.post(
        "/api/strategies/validate",
        content=chunks(),
        headers={**service.headers(), "content-type": "application/json"},
    )
    assert_problem(streamed, 413)


async def test_extremely_deep_nesting_is_400(service: Service) -> None:
    depth = 50_000
    content = b'{"name": "x", "graph": {"meta": ' + b"[" * depth + b"]" * depth + b"}}"
    body = assert_problem(await post_raw(service, "/api/strategies", content), 400)
    assert body["code"] == "malformed_json"


async def test_deeply_nested_params_are_graph_problems(service: Service) -> None:
    nested: Any = 1
    for _ in range(300):
        nested = {"$param": nested}
    graph = sma_cross()
    graph["nodes"][1]["params"]["period"] = nested
    graph["meta"] = {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    response = await service.call("POST", "/api/strategies", json={"name": "x", "graph": graph})
    body = assert_problem(response, 422)
    assert any(e["node_id"] == "fast" for e in body["errors"])

    meta: Any = []
    for _ in range(400):  # deeper than the engine accepts for meta (orjson's 255 levels)
        meta = [meta]
    graph = sma_cross()
    graph["meta"] = {"deep": meta}
    response = await service.call("POST", "/api/strategies", json={"name": "x", "graph": graph})
    body = assert_problem(response, 422)
    assert [e["code"] for e in body["errors"]] == ["invalid_shape"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": 42, "graph": sma_cross()}, ["body", "name"]),
        ({"name": "", "graph": sma_cross()}, ["body", "name"]),
        ({"name": "x" * 201, "graph": sma_cross()}, ["body", "name"]),
        ({"name": "x", "graph": "nodes"}, ["body", "graph"]),
        ({"name": "x", "graph": sma_cross(), "owner_id": "u2"}, ["body", "owner_id"]),
        ({"name": "x"}, ["body", "graph"]),
        ([1, 2, 3], ["body"]),
        ({"name": "x", "description": None, "graph": sma_cross()}, ["body", "description"]),
    ],
)
async def test_wrong_types_and_unknown_fields_are_422_with_locations(
    service: Service, body: Any, loc: list[str]
) -> None:
    problem = assert_problem(await service.call("POST", "/api/strategies", json=body), 422)
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem["errors"]


async def test_patch_rejects_nulls_unknown_fields_and_bad_versions(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    assert_problem(await service.call("PATCH", url, json={"name": None}), 422)
    assert_problem(await service.call("PATCH", url, json={"graph": None}), 422)
    assert_problem(await service.call("PATCH", url, json={"nmae": "typo"}), 422)
    assert_problem(await service.call("PATCH", url, json={"expected_version": 0}), 422)
    assert_problem(await service.call("PATCH", url, json={"expected_version": 2**40}), 422)
    assert_problem(await service.call("GET", f"{url}/versions/{2**40}"), 422)
    assert_problem(await service.call("GET", f"{url}/versions/one"), 422)
    assert_problem(await service.call("GET", f"{url}/versions", params={"offset": -1}), 422)
    assert_problem(await service.call("POST", f"{url}/compile", params={"version": 0}), 422)


@pytest.mark.parametrize("version", ["1", True, 1.0], ids=["string", "bool", "float"])
async def test_patch_refuses_an_expected_version_of_another_json_type(
    service: Service, version: Any
) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    body = {"name": "renamed", "expected_version": version}
    problem = assert_problem(await service.call("PATCH", url, json=body), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "expected_version"]]
    assert (await service.call("GET", url)).json()["name"] == created["name"]


@pytest.mark.parametrize("period", ["14", True, 14.0], ids=["string", "bool", "float"])
async def test_a_graph_param_of_another_json_type_is_refused(service: Service, period: Any) -> None:
    """Graph params are checked by the engine's own validator, as strictly as a body field."""
    graph = sma_cross()
    graph["nodes"][1]["params"]["period"] = period
    response = await service.call("POST", "/api/strategies", json={"name": "g", "graph": graph})
    problem = assert_problem(response, 422)
    (error,) = problem["errors"]
    assert (error["code"], error["node_id"]) == ("param_wrong_type", "fast")
    assert "'period' must be an integer" in error["message"]


async def test_graphs_over_the_engine_limits_are_422(service: Service) -> None:
    many = sma_cross()
    many["nodes"] += [
        {"id": f"c{i}", "type": "constant", "params": {"value": 1}} for i in range(MAX_NODES)
    ]
    body = assert_problem(
        await service.call("POST", "/api/strategies", json={"name": "x", "graph": many}), 422
    )
    assert [e["code"] for e in body["errors"]] == ["too_many_nodes"]

    padded = sma_cross()
    padded["meta"] = {"notes": "n" * (MAX_GRAPH_BYTES + 10)}
    body = assert_problem(
        await service.call("POST", "/api/strategies", json={"name": "x", "graph": padded}), 422
    )
    assert [e["code"] for e in body["errors"]] == ["graph_too_large"]
    report = await service.call("POST", "/api/strategies/validate", json={"graph": padded})
    assert report.status_code == 200 and report.json()["problems"][0]["code"] == "graph_too_large"


async def test_huge_integers_in_a_graph_do_not_crash(service: Service) -> None:
    graph = sma_cross()
    graph["nodes"][1]["params"]["period"] = 10**30
    graph["parameters"]["slow"]["max"] = 10**400
    response = await service.call("POST", "/api/strategies", json={"name": "x", "graph": graph})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM


async def test_unknown_routes_and_methods_are_problems(service: Service) -> None:
    assert_problem(await service.call("GET", "/api/strategies/templates/nope"), 404)
    assert_problem(await service.call("PUT", "/api/strategies"), 405)


async def test_nul_characters_are_refused_before_they_reach_postgres(service: Service) -> None:
    cases = [
        {"name": "a\u0000b", "graph": sma_cross()},
        {"name": "ok", "description": "\u0000", "graph": sma_cross()},
        {"name": "ok", "graph": sma_cross(note="x\u0000y")},
        {"name": "ok", "graph": sma_cross(**{"key\u0000": 1})},
    ]
    for body in cases:
        problem = assert_problem(await service.call("POST", "/api/strategies", json=body), 400)
        assert "NUL" in problem["errors"][0]["message"]
    searched = await service.call("GET", "/api/strategies", params={"q": "a\u0000"})
    assert assert_problem(searched, 400)["code"] == "nul_in_url"
    lone_surrogate = b'{"name": "\\ud800", "graph": {}}'
    assert_problem(await post_raw(service, "/api/strategies", lone_surrogate), 400)


async def test_an_unreachable_database_is_503(make_service: Any) -> None:
    from algotrade_devstack.infra import free_port

    closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    async with make_service(database_url=closed) as down:
        listed = await down.call("GET", "/api/strategies")
        assert_problem(listed, 503)
        created = await down.call(
            "POST", "/api/strategies", json={"name": "x", "graph": sma_cross()}
        )
        assert_problem(created, 503)
