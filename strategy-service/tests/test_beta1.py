"""Beta1 graphs map to Beta2 graphs by the documented table; imports are idempotent and a
graph that does not validate becomes a draft, never a loss."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from strategy_testkit import PROBLEM, Service, sma_cross

from algotrade.beta1 import StrategyRecord
from algotrade.db import build_engine, build_session_factory
from algotrade.engine import compile_graph
from strategy_service.beta1 import StrategyImporter, graph_checksum, map_graph


@pytest.fixture
def service(module_service: Service) -> Service:
    return module_service


@pytest.fixture
async def importer(service: Service) -> AsyncIterator[StrategyImporter]:
    engine = build_engine(service.settings.database_url.get_secret_value(), pool_size=2)
    try:
        yield StrategyImporter(build_session_factory(engine))
    finally:
        await engine.dispose()


def beta1_sma_cross() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "1", "type": "price", "data": {"field": "close"}, "position": {"x": 0, "y": 0}},
            {"id": "node-2", "type": "sma", "data": {"period": "10"}, "position": {"x": 200}},
            {"id": "node-3", "type": "sma", "data": {"period": 30}},
            {"id": "x", "type": "crossover", "data": {}},
            {"id": "y", "type": "crossunder", "data": {}},
            {"id": "buy", "type": "buy_signal", "data": {}},
            {"id": "sell", "type": "sell_signal", "data": {}},
            {"id": "sl", "type": "stop_loss", "data": {"percent": 2.5}},
        ],
        "connections": [
            {"source": "1", "sourceHandle": "value", "target": "node-2", "targetHandle": "input"},
            {"source": "1", "sourceHandle": "value", "target": "node-3", "targetHandle": "input"},
            {"source": "node-2", "sourceHandle": "value", "target": "x", "targetHandle": "a"},
            {"source": "node-3", "sourceHandle": "value", "target": "x", "targetHandle": "b"},
            {"source": "node-2", "sourceHandle": "value", "target": "y", "targetHandle": "a"},
            {"source": "node-3", "sourceHandle": "value", "target": "y", "targetHandle": "b"},
            {"source": "x", "sourceHandle": "result", "target": "buy", "targetHandle": "trigger"},
            {"source": "y", "sourceHandle": "result", "target": "sell", "targetHandle": "trigger"},
        ],
    }


def test_a_beta1_sma_cross_maps_to_the_equivalent_beta2_graph() -> None:
    mapped = map_graph(orjson.dumps(beta1_sma_cross()).decode(), legacy_id=7)
    assert mapped.problems == []
    graph = mapped.graph
    types = {n["id"]: (n["type"], n["params"]) for n in graph["nodes"]}
    assert types["n_1"] == ("price", {"field": "close"})
    assert types["node_2"] == ("sma", {"period": 10})  # the numeric string became a number
    assert types["x"][0] == "cross_above" and types["sell"][0] == "exit_long"
    assert types["sl"] == ("stop_loss", {"mode": "percent", "percent": 2.5})
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("node_2.out", "x.a") in edges and ("y.out", "sell.in") in edges
    # The stop's bar inputs, implicit in Beta1, are wired to one added price node per field.
    for field in ("high", "low", "close"):
        assert (f"beta1_{field}.out", f"sl.{field}") in edges
    assert graph["meta"]["positions"]["n_1"] == {"x": 0, "y": 0}
    assert graph["meta"]["beta1"]["node_ids"]["node_2"] == "node-2"
    assert mapped.plan_id == compile_graph(graph, purpose="strategy").plan_id
    assert mapped.checksum == graph_checksum(graph)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda g: g["nodes"].append({"id": "ich", "type": "ichimoku"}), "beta1_unknown_node_type"),
        (
            lambda g: g["connections"].append(
                {"source": "gone", "sourceHandle": "value", "target": "x", "targetHandle": "a"}
            ),
            "beta1_dangling_connection",
        ),
        (
            lambda g: g["connections"].__setitem__(
                0, {**g["connections"][0], "targetHandle": "nope"}
            ),
            "beta1_unknown_port",
        ),
        (lambda g: g["nodes"][1]["data"].__setitem__("period", 1), "param_out_of_range"),
    ],
)
def test_a_graph_that_cannot_be_mapped_or_validated_is_a_draft_with_its_problems(
    mutate: Any, code: str
) -> None:
    graph = beta1_sma_cross()
    mutate(graph)
    mapped = map_graph(orjson.dumps(graph).decode())
    assert mapped.plan_id is None
    assert code in {p["code"] for p in mapped.problems}, mapped.problems


def test_unreadable_json_keeps_the_original_text() -> None:
    mapped = map_graph('{"nodes": [', legacy_id=3)
    assert mapped.plan_id is None
    assert [p["code"] for p in mapped.problems] == ["beta1_graph_not_json"]
    assert mapped.graph["meta"]["beta1"]["raw"] == '{"nodes": ['
    assert map_graph(None).problems[0]["code"] == "beta1_graph_missing"


def record(legacy_id: int, owner: str, graph: dict[str, Any] | str | None, **kw: Any) -> Any:
    text = graph if isinstance(graph, str | None) else orjson.dumps(graph).decode()
    return StrategyRecord(
        legacy_id=legacy_id,
        owner_id=owner,
        name=kw.get("name", f"beta1 #{legacy_id}"),
        description="from Beta1",
        graph_json=text,
        created_at=datetime(2023, 5, 1, 12, tzinfo=UTC),
        updated_at=None,
        deleted=kw.get("deleted", False),
    )


async def test_import_saves_versions_and_drafts_and_a_second_run_changes_nothing(
    service: Service, importer: StrategyImporter
) -> None:
    base = 10_000 + id(importer) % 1_000_000  # legacy ids unique to this test run
    records = [
        record(base, "beta1-ann", beta1_sma_cross()),
        record(base + 1, "beta1-ann", "not json"),
        record(base + 2, "beta1-ann", beta1_sma_cross(), deleted=True),
    ]
    first = await importer.import_batch(records)
    assert [o.state for o in first] == ["migrated"] * 3
    valid, draft, deleted = first
    assert valid.detail["plan_id"] is not None and draft.detail["plan_id"] is None
    assert any(f.startswith("draft:") for f in draft.flags)

    listed = (await service.call("GET", "/api/strategies", user="beta1-ann")).json()
    by_id = {s["id"]: s for s in listed["data"]}
    assert set(by_id) == {valid.new_id, draft.new_id}  # the deleted one stays deleted
    assert by_id[draft.new_id]["draft"] is True and by_id[valid.new_id]["draft"] is False
    assert by_id[valid.new_id]["created_at"].startswith("2023-05-01T12:00:00")

    url = f"/api/strategies/{draft.new_id}/versions/1"
    version = (await service.call("GET", url, user="beta1-ann")).json()
    assert version["plan_id"] is None
    assert version["problems"][0]["code"] == "beta1_graph_not_json"
    refused = await service.call("GET", url, params={"include": "plan"}, user="beta1-ann")
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["errors"][0]["code"] == "beta1_graph_not_json"
    compiled = await service.call(
        "POST", f"/api/strategies/{draft.new_id}/compile", user="beta1-ann"
    )
    assert compiled.status_code == 409
    other = await service.call("GET", url, user="mallory")
    assert other.status_code == 404

    # Fixing the draft in the editor saves version 2, a normal version.
    fixed = await service.call(
        "PATCH", f"/api/strategies/{draft.new_id}", json={"graph": sma_cross()}, user="beta1-ann"
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["current_version"] == 2 and fixed.json()["draft"] is False

    second = await importer.import_batch(records)
    assert [(o.state, o.new_id, o.checksum) for o in second] == [
        ("present", o.new_id, o.checksum) for o in first
    ]
    assert second[0].detail["plan_id"] == valid.detail["plan_id"]
    again = (await service.call("GET", "/api/strategies", user="beta1-ann")).json()
    assert again["count"] == listed["count"]

    inventory = await importer.inventory([o.legacy_id for o in first])
    assert {k: v["checksum"] for k, v in inventory.items()} == {
        o.legacy_id: o.checksum for o in first
    }
    assert inventory[deleted.legacy_id]["deleted"] is True
    assert inventory[draft.legacy_id]["draft"] is True
