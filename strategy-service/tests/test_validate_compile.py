"""Validation without saving, and compilation of saved versions with parameter overrides."""

from __future__ import annotations

import pytest
from strategy_testkit import PROBLEM, Service, broken_graph, sma_cross


@pytest.fixture
def service(module_service: Service) -> Service:
    """These tests share one service per module; each looks only at what it created."""
    return module_service


async def test_validate_reports_a_valid_graph_with_its_plan_summary(service: Service) -> None:
    response = await service.call("POST", "/api/strategies/validate", json={"graph": sma_cross()})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is True and report["problems"] == []
    summary = report["summary"]
    assert summary["warmup"] == 30
    assert summary["signals"] == {"enter_long": ["entry.signal"]}
    assert summary["parameters"]["fast"] == {
        "default": 10,
        "min": 2,
        "max": 50,
        "step": 1,
        "doc": None,
    }
    assert summary["node_count"] == 5 and len(summary["plan_id"]) == 64


async def test_validate_answers_200_with_every_problem_of_an_invalid_graph(
    service: Service,
) -> None:
    response = await service.call(
        "POST", "/api/strategies/validate", json={"graph": broken_graph()}
    )
    assert response.status_code == 200
    report = response.json()
    assert report["valid"] is False and report["summary"] is None
    codes = [p["code"] for p in report["problems"]]
    assert {"unknown_node_type", "param_out_of_range", "no_entry_signal"} <= set(codes)
    unknown = next(p for p in report["problems"] if p["code"] == "unknown_node_type")
    assert unknown["node_id"] == "x" and unknown["message"]


async def test_validate_refuses_a_malformed_request(service: Service) -> None:
    missing = await service.call("POST", "/api/strategies/validate", json={"graf": {}})
    assert missing.status_code == 422 and missing.headers["content-type"] == PROBLEM
    not_object = await service.call("POST", "/api/strategies/validate", json={"graph": [1, 2]})
    assert not_object.status_code == 422
    garbage = await service.call(
        "POST",
        "/api/strategies/validate",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert garbage.status_code == 400 and garbage.json()["code"] == "malformed_json"


async def test_compile_returns_the_plan_summary_of_the_current_or_a_given_version(
    service: Service,
) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}"
    await service.call("PATCH", url, json={"graph": sma_cross(fast=5, slow=40)})

    current = await service.call("POST", f"{url}/compile")
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["version"] == 2 and body["warmup"] == 40
    assert body["plan_id"] == body["version_plan_id"]
    assert body["strategy_id"] == created["id"]

    first = (await service.call("POST", f"{url}/compile", params={"version": 1})).json()
    assert first["version"] == 1 and first["plan_id"] == created["plan_id"]
    assert first["warmup"] == 30
    missing = await service.call("POST", f"{url}/compile", params={"version": 3})
    assert missing.status_code == 404


async def test_compile_with_parameter_overrides(service: Service) -> None:
    created = await service.create()
    url = f"/api/strategies/{created['id']}/compile"
    tuned = await service.call("POST", url, json={"parameters": {"slow": 60}})
    assert tuned.status_code == 200, tuned.text
    body = tuned.json()
    assert body["warmup"] == 60
    assert body["parameters"]["slow"]["default"] == 60
    assert body["plan_id"] != created["plan_id"] == body["version_plan_id"]

    out_of_range = await service.call("POST", url, json={"parameters": {"slow": 500}})
    assert out_of_range.status_code == 422 and out_of_range.headers["content-type"] == PROBLEM
    assert out_of_range.json()["errors"][0]["code"] == "param_out_of_range"
    unknown = await service.call("POST", url, json={"parameters": {"nope": 1}})
    assert unknown.status_code == 422
    fraction = await service.call("POST", url, json={"parameters": {"slow": 20.5}})
    assert fraction.status_code == 422
    wrong_type = await service.call("POST", url, json={"parameters": {"slow": "60"}})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["loc"][:3] == ["body", "parameters", "slow"]
    extra = await service.call("POST", url, json={"parameters": {}, "surprise": 1})
    assert extra.status_code == 422


async def test_a_graph_of_indicators_only_is_not_a_valid_strategy(service: Service) -> None:
    indicators = {
        "nodes": [{"id": "close", "type": "price"}, {"id": "avg", "type": "sma"}],
        "edges": [{"from": "close.out", "to": "avg.in"}],
    }
    response = await service.call("POST", "/api/strategies/validate", json={"graph": indicators})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is False
    assert [p["code"] for p in report["problems"]] == ["no_entry_signal"]
