"""Events of every change arrive on strategy.events through the outbox."""

from __future__ import annotations

from strategy_testkit import Service, sma_cross

from algotrade.strategy_events import StrategyCreated, StrategyDeleted, StrategyVersionCreated
from algotrade_testkit.kafka import read_events


async def test_create_save_and_delete_publish_their_events(
    service: Service, kafka_bootstrap: str
) -> None:
    created = await service.create(name="evented")
    sid = created["id"]
    url = f"/api/strategies/{sid}"
    saved = (await service.call("PATCH", url, json={"graph": sma_cross(fast=7)})).json()
    await service.call("PATCH", url, json={"name": "renamed only"})  # no event
    assert (await service.call("DELETE", url)).status_code == 204

    topic = service.app.state.resources.topics.strategy_events
    events = await read_events(kafka_bootstrap, topic, expect=4)
    types = [envelope.type for _, envelope, _ in events]
    assert types == [
        "strategy.created",
        "strategy.version_created",
        "strategy.version_created",
        "strategy.deleted",
    ]
    assert all(key == sid.encode() for key, _, _ in events)
    assert all(envelope.user_id == "u1" for _, envelope, _ in events)
    assert all(envelope.producer == "strategy-service" for _, envelope, _ in events)

    payloads = [payload for _, _, payload in events]
    assert payloads[0] == StrategyCreated(
        strategy_id=sid, owner_id="u1", name="evented", version=1, plan_id=created["plan_id"]
    )
    assert payloads[1] == StrategyVersionCreated(
        strategy_id=sid, owner_id="u1", version=1, plan_id=created["plan_id"]
    )
    assert payloads[2] == StrategyVersionCreated(
        strategy_id=sid,
        owner_id="u1",
        version=2,
        plan_id=saved["plan_id"],
        previous_plan_id=created["plan_id"],
    )
    assert payloads[3] == StrategyDeleted(strategy_id=sid, owner_id="u1", last_version=2)
    assert await service.app.state.resources.relay.pending() == 0


async def test_events_carry_the_request_correlation_id(
    service: Service, kafka_bootstrap: str
) -> None:
    response = await service.call(
        "POST",
        "/api/strategies",
        json={"name": "c", "graph": sma_cross()},
        headers={"X-Correlation-Id": "corr-42"},
    )
    assert response.status_code == 201
    topic = service.app.state.resources.topics.strategy_events
    events = await read_events(kafka_bootstrap, topic, expect=2)
    assert {envelope.correlation_id for _, envelope, _ in events} == {"corr-42"}
