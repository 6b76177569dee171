"""Sessions in agent mode: every order of the fill model goes to the session's agent as a
command named by the session and the order number; an exit waits for its entry's ticket and is
released by the entry's ack; what the agent answers is recorded on each order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from algotrade.engine import compile_graph
from algotrade_testkit.services import internal_token
from forward_test_service import agent_orders
from forward_test_service.agent_orders import order_key

from .agents.conftest import agent_scopes
from .conftest import Platform, btc_bars, session_body

SYMBOL = "FTAGENT"


def as_agent(platform: Platform, agent_id: str) -> dict[str, str]:
    token = internal_token(platform.gateway, "alice", agent_scopes(agent_id))
    return {"Authorization": f"Bearer {token}"}


async def register(platform: Platform, user_id: str = "alice") -> str:
    created = await platform.client.post(
        "/api/agents",
        json={
            "name": "terminal",
            "platform": "mt5",
            "account_number": "5012345",
            "broker": "MetaQuotes-Demo",
            "currency": "USD",
        },
        headers=platform.headers(user_id),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def poll(platform: Platform, agent_id: str) -> list[dict[str, Any]]:
    answer = await platform.client.get(
        f"/api/agents/{agent_id}/commands",
        params={"limit": 100},
        headers=as_agent(platform, agent_id),
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def orders(platform: Platform, session_id: str) -> list[dict[str, Any]]:
    page = await platform.get(f"/api/sessions/{session_id}/orders", params={"limit": 1000})
    return list(page.json()["orders"])


async def test_an_agent_session_sends_its_orders_and_records_the_executions(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    strategy = graph(5, 20)
    warmup = compile_graph(strategy).warmup
    bars = btc_bars(warmup + 150, first=6_000)
    strategy_id = await platform.save_strategy(strategy)
    await platform.push(SYMBOL, "4h", bars.slice(0, warmup))
    agent_id = await register(platform)
    theirs = await register(platform, "bob")

    base = session_body(strategy_id, SYMBOL)
    for bad, code in (
        ({"mode": "agent"}, "agent_id"),
        ({"agent_id": agent_id}, "agent"),
        ({"mode": "agent", "agent_id": theirs}, "agent_id"),
        ({"mode": "agent", "agent_id": "not-an-id"}, "agent_id"),
    ):
        refused = await platform.start({**base, **bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert code in refused.text
    created = await platform.start(
        {**base, "mode": "agent", "agent_id": agent_id, "agent_symbol": "FTAGENT#"}
    )
    assert created.status_code == 201, created.text
    session = created.json()
    sid = session["id"]
    assert (session["mode"], session["agent_id"], session["agent_symbol"]) == (
        "agent",
        agent_id,
        "FTAGENT#",
    )

    async with start_worker():
        await platform.push(SYMBOL, "4h", bars.slice(warmup, warmup + 150))
        await platform.wait_bars(sid, warmup + 150)

    placed = await orders(platform, sid)
    entries = [o for o in placed if o["reason"] == "entry"]
    exits = [o for o in placed if o["reason"] != "entry"]
    assert len(entries) >= 2 and exits, "the strategy should have traded on these bars"
    assert all(o["agent"]["state"] == "queued" and o["agent"]["command_id"] for o in entries)
    assert all(o["agent"]["state"] == "waiting" for o in exits)  # no ticket yet

    sent = await poll(platform, agent_id)
    assert [c["kind"] for c in sent] == ["open"] * len(entries)
    by_key = {c["idempotency_key"]: c for c in sent}
    refused = entries[0]["seq"]  # the terminal refuses the first entry
    for order in entries:
        command = by_key[order_key(sid, order["seq"])]
        assert command["session_id"] == sid and command["symbol"] == "FTAGENT#"
        assert (command["side"], command["volume"]) == (order["side"], order["quantity"])
        answer = (
            {"outcome": "rejected", "error": "not enough money"}
            if order["seq"] == refused
            else {"outcome": "executed", "ticket": f"T{order['seq']}", "price": order["price"] + 1}
        )
        acked = await platform.client.post(
            f"/api/agents/{agent_id}/commands/{command['id']}/ack",
            json=answer,
            headers=as_agent(platform, agent_id),
        )
        assert acked.status_code == 200, acked.text

    # Each executed entry released the exit after it, with the entry's ticket.
    closes = await poll(platform, agent_id)
    entry_seqs = sorted(o["seq"] for o in entries)
    expected, skipped = {}, set()
    for order in exits:
        entry = max(s for s in entry_seqs if s < order["seq"])
        if entry == refused:
            skipped.add(order["seq"])
        else:
            expected[order_key(sid, order["seq"])] = f"T{entry}"
    assert skipped, "the refused entry's exit should be skipped"
    assert {c["idempotency_key"]: c["ticket"] for c in closes} == expected
    for command in closes:
        acked = await platform.client.post(
            f"/api/agents/{agent_id}/commands/{command['id']}/ack",
            json={"outcome": "executed", "price": 1.0, "volume": 0.5},
            headers=as_agent(platform, agent_id),
        )
        assert acked.status_code == 200, acked.text

    final = await orders(platform, sid)
    states = {o["seq"]: o["agent"]["state"] for o in final}
    assert states.pop(refused) == "rejected"
    assert {states.pop(seq) for seq in skipped} == {"skipped"}
    assert set(states.values()) == {"executed"}
    for order in final:
        if order["reason"] == "entry" and order["seq"] != refused:
            assert order["agent"]["ticket"] == f"T{order['seq']}"
            assert (
                order["agent"]["price"] == order["price"] + 1
            )  # the terminal's, beside the model's
    assert await poll(platform, agent_id) == []  # nothing sent twice


async def test_orders_whose_commands_expire_unacked_say_so(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent_orders, "COMMAND_EXPIRY_SECONDS", 0.2)
    strategy = graph(5, 20)
    warmup = compile_graph(strategy).warmup
    bars = btc_bars(warmup + 150, first=6_000)
    strategy_id = await platform.save_strategy(strategy)
    await platform.push("FTEXPIRE", "4h", bars.slice(0, warmup))
    agent_id = await register(platform)
    created = await platform.start(
        {**session_body(strategy_id, "FTEXPIRE"), "mode": "agent", "agent_id": agent_id}
    )
    sid = created.json()["id"]
    async with start_worker():
        await platform.push("FTEXPIRE", "4h", bars.slice(warmup, warmup + 150))
        await platform.wait_bars(sid, warmup + 150)
    await asyncio.sleep(0.5)
    assert await poll(platform, agent_id) == []  # past their expiry: never delivered
    placed = await orders(platform, sid)
    assert {o["agent"]["state"] for o in placed if o["reason"] == "entry"} == {"expired"}
    assert {o["agent"]["state"] for o in placed if o["reason"] != "entry"} == {"skipped"}
