"""The command queue through the API: priority order, idempotency, acks, retries after a lost
lease, expiry, a waiting long-poll woken by a new command, and queues surviving a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from algotrade_testkit.plugin import wait_for
from forward_test_service import models

from .conftest import Desk


async def test_commands_are_leased_most_urgent_first(desk: Desk) -> None:
    agent = await desk.register()
    for kind, extra in (
        ("info", {"message": "hello"}),
        ("open", {"symbol": "EURUSD", "side": "buy", "volume": 0.1}),
        ("modify", {"ticket": "7", "sl": 1.05}),
        ("open", {"symbol": "GBPUSD", "side": "sell", "volume": 0.2}),
        ("close", {"ticket": "7"}),
        ("close_all", {}),
    ):
        assert (await desk.enqueue(agent, kind=kind, **extra)).status_code == 201
    leased = await desk.poll(agent, limit=100)
    assert [c["kind"] for c in leased] == ["close_all", "close", "modify", "open", "open", "info"]
    assert [c.get("symbol") for c in leased if c["kind"] == "open"] == ["EURUSD", "GBPUSD"]
    assert all(c["state"] == "leased" and c["attempts"] == 1 for c in leased)
    assert await desk.poll(agent) == []


async def test_an_idempotency_key_names_one_command_and_acks_are_harmless_twice(desk: Desk) -> None:
    agent = await desk.register()
    body = {"kind": "open", "symbol": "EURUSD", "side": "buy", "volume": 1, "idempotency_key": "k1"}
    first = await desk.enqueue(agent, **body)
    again = await desk.enqueue(agent, **body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    (command,) = await desk.poll(agent)
    executed = {"outcome": "executed", "ticket": "T1", "price": 1.1, "volume": 1}
    acked = await desk.ack(agent, command["id"], **executed)
    assert acked.status_code == 200 and acked.json()["state"] == "executed"
    twice = await desk.ack(agent, command["id"], **executed)
    assert twice.status_code == 200 and twice.json()["state"] == "executed"
    contradiction = await desk.ack(agent, command["id"], outcome="rejected", error="no money")
    assert contradiction.status_code == 409
    assert contradiction.headers["content-type"] == "application/problem+json"
    positions = (
        await desk.client.get(f"/api/agents/{agent}/positions", headers=desk.user())
    ).json()["data"]
    assert [(p["ticket"], p["open_price"], p["idempotency_key"]) for p in positions] == [
        ("T1", 1.1, "k1")
    ]


async def test_an_unacknowledged_lease_is_retried_with_backoff_then_failed(
    desk: Desk, database_url: str
) -> None:
    agent = await desk.register()
    created = (await desk.enqueue(agent, kind="close", ticket="9")).json()
    deliveries = []
    while len(deliveries) < desk.settings.agent_max_attempts:
        leased = await desk.poll(agent, wait=2)
        if leased:
            deliveries.append(leased[0])
    assert [d["id"] for d in deliveries] == [created["id"]] * desk.settings.agent_max_attempts
    assert [d["attempts"] for d in deliveries] == [1, 2, 3]

    async def failed() -> bool:
        await desk.poll(agent)  # a poll also settles leases that ran out
        read = await desk.client.get(
            f"/api/agents/{agent}/commands/{created['id']}", headers=desk.user()
        )
        return bool(read.json()["state"] == "failed")

    await wait_for(failed, within=10)
    # The journal writes the ended command to PostgreSQL once.
    engine = create_async_engine(database_url)
    try:

        async def recorded() -> list[Any]:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(models.agent_commands).where(models.agent_commands.c.agent_id == agent)
                )
                return list(rows)

        await wait_for(lambda: _nonempty(recorded), within=10)
        (row,) = await recorded()
        assert (row.command_id, row.outcome, row.attempts) == (created["id"], "failed", 3)
    finally:
        await engine.dispose()


async def _nonempty(call: Callable[[], Any]) -> bool:
    return bool(await call())


async def test_a_command_past_its_expiry_is_expired_and_never_delivered(desk: Desk) -> None:
    agent = await desk.register()
    created = (await desk.enqueue(agent, kind="info", message="m", expires_in_seconds=0.2)).json()
    await asyncio.sleep(0.3)
    assert await desk.poll(agent) == []
    read = await desk.client.get(
        f"/api/agents/{agent}/commands/{created['id']}", headers=desk.user()
    )
    assert read.json()["state"] == "expired"


async def test_a_waiting_poll_is_woken_by_a_new_command(desk: Desk) -> None:
    # The poll re-checks only every 60 s here: only the wake-up can deliver within the test.
    agent = await desk.register()
    await desk.poll(agent)
    waiting = asyncio.create_task(desk.poll(agent, wait=20))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    created = (await desk.enqueue(agent, kind="close_all")).json()
    leased = await asyncio.wait_for(waiting, 20)
    assert [c["id"] for c in leased] == [created["id"]]


async def test_queues_and_leases_survive_a_service_restart(serve_desk: Callable[..., Any]) -> None:
    async with serve_desk() as desk:
        agent = await desk.register()
        leased_id = (await desk.enqueue(agent, kind="close", ticket="1")).json()["id"]
        (leased,) = await desk.poll(agent)
        assert leased["id"] == leased_id
        queued_id = (
            await desk.enqueue(agent, kind="open", symbol="X", side="buy", volume=1)
        ).json()["id"]
    async with serve_desk() as desk:
        assert [c["id"] for c in await desk.poll(agent)] == [queued_id]
        # The lease from before the restart runs out and the command comes again.
        redelivered = await desk.poll(agent, wait=5)
        assert [(c["id"], c["attempts"]) for c in redelivered] == [(leased_id, 2)]


async def test_executed_commands_keep_the_platforms_position_record(desk: Desk) -> None:
    agent = await desk.register()

    async def execute(**command: Any) -> None:
        created = (await desk.enqueue(agent, **command)).json()
        (leased,) = await desk.poll(agent)
        assert leased["id"] == created["id"]
        ack = {"outcome": "executed", "ticket": "T9", "price": 1.1, "volume": 1}
        assert (await desk.ack(agent, created["id"], **ack)).status_code == 200

    async def record() -> list[dict[str, Any]]:
        read = await desk.client.get(f"/api/agents/{agent}/positions", headers=desk.user())
        return list(read.json()["data"])

    await execute(kind="open", symbol="EURUSD", side="buy", volume=1, sl=1.05, tp=1.2)
    await execute(kind="modify", ticket="T9", sl=1.08)  # the take-profit stays
    ((position,),) = [await record()]
    assert (position["sl"], position["tp"], position["volume"]) == (1.08, 1.2, 1)
    # A partial close leaves the rest of the position on the record.
    partial = (await desk.enqueue(agent, kind="close", ticket="T9", volume=0.4)).json()
    await desk.poll(agent)
    done = await desk.ack(agent, partial["id"], outcome="executed", volume=0.4, price=1.15)
    assert done.status_code == 200
    ((position,),) = [await record()]
    assert position["volume"] == pytest.approx(0.6)
    await execute(kind="close", ticket="T9")
    assert await record() == []


async def test_opens_on_a_ticket_the_record_holds_net_like_a_netting_account(desk: Desk) -> None:
    """MetaTrader 5 in netting mode and NinjaTrader keep one position per symbol: an open of
    a symbol already held reports that position's ticket."""
    agent = await desk.register(platform="ninjatrader")

    async def execute(ticket: str, side: str, volume: float, price: float, **more: Any) -> None:
        created = (
            await desk.enqueue(agent, kind="open", symbol="ES", side=side, volume=volume, **more)
        ).json()
        (leased,) = await desk.poll(agent)
        assert leased["id"] == created["id"]
        ack = {"outcome": "executed", "ticket": ticket, "price": price, "volume": volume}
        assert (await desk.ack(agent, created["id"], **ack)).status_code == 200

    async def record() -> dict[str, dict[str, Any]]:
        read = await desk.client.get(f"/api/agents/{agent}/positions", headers=desk.user())
        return {p["ticket"]: p for p in read.json()["data"]}

    await execute("P1", "buy", 1, 100.0, sl=90.0)
    await execute("P1", "buy", 3, 104.0, tp=120.0)  # adds: volume-weighted price
    position = (await record())["P1"]
    assert (position["side"], position["volume"]) == ("buy", 4)
    assert position["open_price"] == pytest.approx(103.0)
    assert (position["sl"], position["tp"]) == (90.0, 120.0)
    await execute("P1", "sell", 1.5, 110.0)  # takes part of it: the price stays
    position = (await record())["P1"]
    assert (position["side"], position["volume"]) == ("buy", pytest.approx(2.5))
    assert position["open_price"] == pytest.approx(103.0)
    await execute("P1", "sell", 4, 108.0)  # takes more than there is: turns it
    position = (await record())["P1"]
    assert (position["side"], position["volume"]) == ("sell", pytest.approx(1.5))
    assert position["open_price"] == 108.0
    await execute("P2", "buy", 1, 1.0)  # another ticket is another position (hedging)
    assert sorted(await record()) == ["P1", "P2"]
    await execute("P1", "buy", 1.5, 107.0)  # flat again: off the record
    assert sorted(await record()) == ["P2"]
