"""A user sees and changes only their own strategies; credentials and scopes are enforced."""

from __future__ import annotations

import pytest
from strategy_testkit import PROBLEM, Service, sma_cross


@pytest.fixture
def service(module_service: Service) -> Service:
    """These tests share one service per module; each looks only at what it created."""
    return module_service


async def test_every_route_answers_404_for_another_users_strategy(service: Service) -> None:
    mine = await service.create(name="mine", user="alice")
    url = f"/api/strategies/{mine['id']}"
    attempts = [
        ("GET", url, None),
        ("PATCH", url, {"name": "stolen"}),
        ("PATCH", url, {"graph": sma_cross(fast=3)}),
        ("DELETE", url, None),
        ("GET", f"{url}/versions", None),
        ("GET", f"{url}/versions/1", None),
        ("POST", f"{url}/compile", None),
        ("POST", f"{url}/compile", {"parameters": {"fast": 5}}),
    ]
    for method, path, body in attempts:
        response = await service.call(method, path, json=body, user="mallory")
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert "mine" not in response.text

    listed = (await service.call("GET", "/api/strategies", user="mallory")).json()
    assert listed == {"data": [], "count": 0, "limit": 20, "offset": 0}
    searched = await service.call("GET", "/api/strategies", params={"q": "mine"}, user="mallory")
    assert searched.json()["count"] == 0

    # Nothing changed for the owner.
    still = (await service.call("GET", url, user="alice")).json()
    assert still["name"] == "mine" and still["current_version"] == 1
    assert (await service.call("GET", "/api/strategies", user="alice")).json()["count"] == 1


async def test_instantiated_templates_belong_to_the_caller(service: Service) -> None:
    made = await service.call(
        "POST", "/api/strategies/templates/sma_cross/instantiate", json={}, user="carol"
    )
    assert made.status_code == 201
    other = await service.call("GET", f"/api/strategies/{made.json()['id']}", user="dave")
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/strategies"),
        ("POST", "/api/strategies"),
        ("GET", "/api/strategies/node-types"),
        ("GET", "/api/strategies/schema"),
        ("GET", "/api/strategies/templates"),
        ("POST", "/api/strategies/validate"),
    ],
)
async def test_requests_without_an_internal_token_are_refused(
    service: Service, method: str, path: str
) -> None:
    bare = await service.client.request(method, path, headers={"X-User-Id": "u1"})
    assert bare.status_code == 401 and bare.headers["content-type"] == PROBLEM


async def test_scopes_are_checked(service: Service) -> None:
    reader = service.headers("u1", frozenset({"strategies:read"}))
    body = {"name": "x", "graph": sma_cross()}
    refused = await service.client.post("/api/strategies", json=body, headers=reader)
    assert refused.status_code == 403
    assert (await service.client.get("/api/strategies", headers=reader)).status_code == 200
    validated = await service.client.post(
        "/api/strategies/validate", json={"graph": sma_cross()}, headers=reader
    )
    assert validated.status_code == 200

    other_scope = service.headers("u1", frozenset({"market:read"}))
    assert (await service.client.get("/api/strategies", headers=other_scope)).status_code == 403
    writer = service.headers("u1", frozenset({"strategies:write"}))
    assert (
        await service.client.post("/api/strategies", json=body, headers=writer)
    ).status_code == 201
