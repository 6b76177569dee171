"""The compiled-plan cache: hits and misses on /metrics, and a Redis outage only costs speed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strategy_testkit import Service, sma_cross

from algotrade.engine import Plan, compile_graph
from algotrade_devstack.infra import free_port


def cache_key(service: Service, plan_id: str) -> str:
    plans = service.app.state.services.plans
    key: str = plans.key(plan_id)
    return key


async def test_saved_plans_are_served_from_the_cache(service: Service, redis_client: Any) -> None:
    created = await service.create()
    key = cache_key(service, created["plan_id"])
    assert key.startswith(service.settings.redis_prefix)
    stored = await redis_client.get(key)
    assert Plan.from_bytes(stored).plan_id == created["plan_id"]  # warmed by the save
    assert 0 < await redis_client.ttl(key) <= service.settings.plan_cache_ttl_seconds

    url = f"/api/strategies/{created['id']}/compile"
    first = (await service.call("POST", url)).json()
    assert first["cached"] is True
    assert await service.metric("strategy_plan_cache_hits_total") == 1

    await redis_client.delete(key)
    second = (await service.call("POST", url)).json()
    assert second["cached"] is False and second["plan_id"] == first["plan_id"]
    assert await service.metric("strategy_plan_cache_misses_total", reason="absent") == 1
    assert await redis_client.exists(key)  # put back
    third = (await service.call("POST", url)).json()
    assert third["cached"] is True
    assert await service.metric("strategy_plan_cache_hits_total") == 2


async def test_an_unreadable_entry_is_a_miss_and_is_replaced(
    service: Service, redis_client: Any
) -> None:
    created = await service.create()
    key = cache_key(service, created["plan_id"])
    await redis_client.set(key, b"\x00garbage")
    url = f"/api/strategies/{created['id']}/compile"
    response = await service.call("POST", url)
    assert response.status_code == 200 and response.json()["cached"] is False
    assert await service.metric("strategy_plan_cache_misses_total", reason="stale") == 1
    assert Plan.from_bytes(await redis_client.get(key)).plan_id == created["plan_id"]


async def test_identical_graphs_share_one_plan_across_users(service: Service) -> None:
    mine = await service.create(sma_cross(), user="alice")
    theirs = await service.create(sma_cross(author="bob"), user="bob")  # meta is not hashed
    assert mine["plan_id"] == theirs["plan_id"] == compile_graph(sma_cross()).plan_id
    compiled = await service.call("POST", f"/api/strategies/{theirs['id']}/compile", user="bob")
    assert compiled.json()["cached"] is True


async def test_a_redis_outage_degrades_to_compiling(make_service: Callable[..., Any]) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with make_service(redis_url=closed, plan_cache_retry_seconds=0) as service:
        created = await service.create()  # the post-commit cache write fails quietly
        url = f"/api/strategies/{created['id']}/compile"
        for _ in range(2):
            response = await service.call("POST", url, json={"parameters": {"fast": 12}})
            assert response.status_code == 200, response.text
            assert response.json()["cached"] is False
        assert await service.metric("strategy_plan_cache_misses_total", reason="error") == 2
        assert await service.metric("strategy_plan_cache_errors_total", operation="get") == 2
        assert await service.metric("strategy_plan_cache_errors_total", operation="set") >= 1
        assert await service.metric("strategy_plan_cache_hits_total") == 0
        made = await service.call(
            "POST", "/api/strategies/templates/ema_cross/instantiate", json={}
        )
        assert made.status_code == 201
        ready = await service.client.get("/readyz")
        assert ready.status_code == 503 and "redis" in ready.text


async def test_after_an_error_the_cache_is_skipped_for_a_while(
    make_service: Callable[..., Any],
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with make_service(redis_url=closed, plan_cache_retry_seconds=60) as service:
        created = await service.create()
        url = f"/api/strategies/{created['id']}/compile"
        for _ in range(3):
            assert (await service.call("POST", url)).status_code == 200
        # One failed round trip (the write after the save), then no more attempts.
        assert await service.metric("strategy_plan_cache_errors_total", operation="set") == 1
        assert await service.metric("strategy_plan_cache_errors_total", operation="get") == 0
        assert await service.metric("strategy_plan_cache_misses_total", reason="bypassed") == 3
