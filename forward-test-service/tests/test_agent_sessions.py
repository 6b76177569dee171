"""Sessions in agent mode: every order of the fill model goes to the session's agent as a
command named by the session and the order number; an exit waits for its entry's ticket and is
released by the entry's ack; what the agent answers is recorded on each order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
import pytest

from algotrade import session_events
from algotrade.engine import compile_graph
from algotrade.events import Topics
from algotrade_testkit.kafka import read_all
from algotrade_testkit.plugin import wait_for
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


async def ack(platform: Platform, agent_id: str, command_id: str, answer: dict[str, Any]) -> None:
    acked = await platform.client.post(
        f"/api/agents/{agent_id}/commands/{command_id}/ack",
        json=answer,
        headers=as_agent(platform, agent_id),
    )
    assert acked.status_code == 200, acked.text


async def sync(platform: Platform, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    synced = await platform.client.post(
        f"/api/agents/{agent_id}/trades/sync", json=body, headers=as_agent(platform, agent_id)
    )
    assert synced.status_code == 200, synced.text
    return dict(synced.json())


async def terminal_events(platform: Platform, session_id: str) -> list[dict[str, Any]]:
    """The payloads of the session's ``session.terminal`` events on Kafka, in order."""
    topic = Topics(platform.settings.kafka_topic_prefix).session_events
    records = await read_all(platform.settings.kafka_bootstrap, topic)
    return [
        envelope["payload"]
        for envelope in (orjson.loads(r.value) for r in records if r.key == session_id.encode())
        if envelope["type"] == session_events.TERMINAL
    ]


class Prepared(NamedTuple):
    """A saved strategy (`graph(5, 20)`), its warm-up's bars stored, and an agent of alice."""

    strategy_id: str
    bars: Any
    warmup: int
    agent_id: str


async def prepared(
    platform: Platform, graph: Callable[..., dict[str, Any]], symbol: str, *, first: int
) -> Prepared:
    """The strategy saved, the first ``warmup`` of 150 more bars (from ``first``) pushed on
    ``symbol``, and an agent registered."""
    strategy = graph(5, 20)
    warmup = compile_graph(strategy).warmup
    bars = btc_bars(warmup + 150, first=first)
    strategy_id = await platform.save_strategy(strategy)
    await platform.push(symbol, "4h", bars.slice(0, warmup))
    return Prepared(strategy_id, bars, warmup, await register(platform))


async def traded(
    platform: Platform,
    strategy_id: str,
    symbol: str,
    bars: Any,
    warmup: int,
    agent_id: str,
    start_worker: Callable[..., Any],
) -> str:
    """An agent-mode session on ``symbol`` (warmed up on ``bars``' first ``warmup``), after
    a worker applied the other 150 bars: its id."""
    created = await platform.start(
        {**session_body(strategy_id, symbol), "mode": "agent", "agent_id": agent_id}
    )
    assert created.status_code == 201, created.text
    sid = str(created.json()["id"])
    async with start_worker():
        await platform.push(symbol, "4h", bars.slice(warmup, warmup + 150))
        await platform.wait_bars(sid, warmup + 150)
    return sid


async def test_an_agent_session_sends_its_orders_and_records_the_executions(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    strategy_id, bars, warmup, agent_id = await prepared(platform, graph, SYMBOL, first=6_000)
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
        await ack(platform, agent_id, command["id"], answer)

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
    partly = {"outcome": "executed", "price": 1.0, "volume": 0.5}
    for command in closes:
        await ack(platform, agent_id, command["id"], partly)

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
    strategy_id, bars, warmup, agent_id = await prepared(platform, graph, "FTEXPIRE", first=6_000)
    sid = await traded(platform, strategy_id, "FTEXPIRE", bars, warmup, agent_id, start_worker)
    await asyncio.sleep(0.5)
    assert await poll(platform, agent_id) == []  # past their expiry: never delivered
    placed = await orders(platform, sid)
    assert {o["agent"]["state"] for o in placed if o["reason"] == "entry"} == {"expired"}
    assert {o["agent"]["state"] for o in placed if o["reason"] != "entry"} == {"skipped"}


async def test_the_terminal_account_follows_the_acks_and_the_syncs(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    """Executed at the model's prices and volumes, the terminal's trades are the model's
    without fees; the last position is closed by the terminal itself (its stop), as the trade
    sync reports it: the session's own close of it comes back rejected."""
    strategy_id, bars, warmup, agent_id = await prepared(platform, graph, "FTTERM", first=7_000)
    paper = await platform.start(session_body(strategy_id, "FTTERM"))
    sid = await traded(platform, strategy_id, "FTTERM", bars, warmup, agent_id, start_worker)

    placed = await orders(platform, sid)
    entries = [o for o in placed if o["reason"] == "entry"]
    assert len(entries) >= 2, "the strategy should have traded on these bars"
    last = entries[-1]
    for command in await poll(platform, agent_id):  # every entry, at the model's fill
        seq = int(command["idempotency_key"].rsplit(".", 1)[1])
        order = next(o for o in entries if o["seq"] == seq)
        await ack(
            platform,
            agent_id,
            command["id"],
            {"outcome": "executed", "ticket": f"T{seq}", "price": order["price"]},
        )
    # The trade sync lists every position closed recently: the ones the session's exits closed
    # (their acks are still on the way) and the last one, stopped out by the terminal.
    stop_price = last["price"] * 0.97
    exits = {o["seq"] - 1: o for o in placed if o["reason"] != "entry"}
    await sync(
        platform,
        agent_id,
        {
            "positions": [],
            "closed": [
                {
                    "ticket": f"T{entry['seq']}",
                    "symbol": "FTTERM",
                    "side": entry["side"],
                    "volume": entry["quantity"],
                    "open_price": entry["price"],
                    "close_price": stop_price if entry is last else exits[entry["seq"]]["price"],
                    "closed_at_ms": 1_900_000_000_000 + entry["seq"],
                }
                for entry in entries
            ],
        },
    )
    for command in await poll(platform, agent_id):  # the exits, released by the entries' acks
        seq = int(command["idempotency_key"].rsplit(".", 1)[1])
        order = next(o for o in placed if o["seq"] == seq)
        answer: dict[str, Any] = {"outcome": "executed", "price": order["price"]}
        if command["ticket"] == f"T{last['seq']}":
            answer = {"outcome": "rejected", "error": "position not found"}
        await ack(platform, agent_id, command["id"], answer)

    view = (await platform.get(f"/api/sessions/{sid}/terminal")).json()
    model_trades = (
        await platform.get(f"/api/sessions/{sid}/trades", params={"limit": 1000})
    ).json()
    by_model = model_trades["trades"][: len(entries) - 1]  # the last: stopped on the terminal
    by_terminal = view["trades"]
    assert [t["closed_by"] for t in by_terminal] == ["order"] * (len(entries) - 1) + ["terminal"]
    for mine, theirs in zip(by_model, by_terminal[:-1], strict=True):
        assert theirs["pnl"] == pytest.approx(mine["pnl"] + mine["fees"], rel=1e-9, abs=1e-9)
        assert (theirs["entry_price"], theirs["exit_price"]) == (
            mine["entry_price"],
            mine["exit_price"],
        )
    stopped = by_terminal[-1]
    sign = 1.0 if last["side"] == "buy" else -1.0
    assert stopped["ticket"] == f"T{last['seq']}" and stopped["exit_seq"] is None
    assert stopped["pnl"] == pytest.approx(sign * last["quantity"] * (stop_price - last["price"]))
    account = view["account"]
    assert account["position"] == 0.0 and view["open"] == []
    total = sum(t["pnl"] for t in by_terminal)
    assert account["equity"] == pytest.approx(10_000 + total, rel=1e-12)
    # The last entry's exit, if the model made one, came back rejected.
    last_exit = [o for o in placed if o["seq"] > last["seq"]]
    assert account["orders"] == {
        "executed": len(placed) - len(last_exit),
        "refused": len(last_exit),
        "pending": 0,
    }
    # The session's own view carries the same summary; a paper session has none.
    session = (await platform.get(f"/api/sessions/{sid}")).json()
    assert session["terminal"] == account
    assert (await platform.get(f"/api/sessions/{paper.json()['id']}")).json()["terminal"] is None
    refused = await platform.get(f"/api/sessions/{paper.json()['id']}/terminal")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await platform.get(f"/api/sessions/{sid}/terminal", "bob")).status_code == 404

    # Each change went out as session.terminal: one per ack, one for the sync; together
    # they carry every terminal trade, and the last one the final account.
    async def all_sent() -> bool:
        return len(await terminal_events(platform, sid)) == len(placed) + 1

    await wait_for(all_sent, within=30)
    sent = await terminal_events(platform, sid)
    assert sorted(e["cause"] for e in sent) == ["ack"] * len(placed) + ["sync"]
    carried = sorted(
        (t for e in sent for t in e["closed"]), key=lambda t: (t["entry_seq"], t["exit_ts"])
    )
    assert [(t["ticket"], t["pnl"], t["closed_by"]) for t in carried] == [
        (t["ticket"], t["pnl"], t["closed_by"]) for t in by_terminal
    ]
    final = max(sent, key=lambda e: e["executed"] + e["refused"])
    assert (final["position"], final["realized_pnl"]) == (0.0, pytest.approx(total))


async def test_a_partial_close_on_the_terminal_and_the_costs_it_reports(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    """The trader closes a quarter of the session's first position by hand; the session's exit
    closes the rest. Each sync lists what was closed recently, so the partial deal comes again
    and again, and the session's own close comes too: each deal counts once, the session's
    close adds no second trade, and each commission counts once."""
    strategy_id, bars, warmup, agent_id = await prepared(platform, graph, "FTPART", first=7_000)
    sid = await traded(platform, strategy_id, "FTPART", bars, warmup, agent_id, start_worker)
    placed = await orders(platform, sid)
    first = placed[0]
    assert first["reason"] == "entry" and placed[1]["seq"] == first["seq"] + 1
    opening = next(
        c for c in await poll(platform, agent_id) if c["idempotency_key"] == order_key(sid, 0)
    )
    price, volume = first["price"], first["quantity"]
    await ack(
        platform,
        agent_id,
        opening["id"],
        {"outcome": "executed", "ticket": "P1", "price": price, "commission": -2.0},
    )
    part, sign = volume / 4, 1.0 if first["side"] == "buy" else -1.0
    by_hand = {
        "ticket": "P1",
        "deal": "D1",
        "symbol": "FTPART",
        "side": first["side"],
        "volume": part,
        "open_price": price,
        "close_price": price + 1.0,
        "closed_at_ms": 1_900_000_000_010,
        "commission": -0.5,
        "swap": -0.1,
    }
    still = {
        "ticket": "P1",
        "symbol": "FTPART",
        "side": first["side"],
        "volume": volume - part,
        "open_price": price,
        "opened_at_ms": 1_900_000_000_000,
    }
    for _ in range(2):  # the second sync lists the same deal: nothing new
        await sync(platform, agent_id, {"positions": [still], "closed": [by_hand]})
    view = (await platform.get(f"/api/sessions/{sid}/terminal")).json()
    assert [(t["ticket"], t["volume"]) for t in view["open"]] == [("P1", volume - part)]
    assert [(t["closed_by"], t["deal"], t["volume"]) for t in view["trades"]] == [
        ("terminal", "D1", part)
    ]

    (closing,) = [c for c in await poll(platform, agent_id) if c["ticket"] == "P1"]
    exit_price = placed[1]["price"]
    await ack(
        platform,
        agent_id,
        closing["id"],
        {"outcome": "executed", "price": exit_price, "volume": volume - part, "commission": -1.5},
    )
    own = {
        **by_hand,
        "deal": "D2",
        "volume": volume - part,
        "close_price": exit_price,
        "closed_at_ms": 1_900_000_000_020,
        "commission": -1.5,
        "swap": -0.3,
    }
    await sync(platform, agent_id, {"positions": [], "closed": [by_hand, own]})

    view = (await platform.get(f"/api/sessions/{sid}/terminal")).json()
    assert view["open"] == []
    trades = view["trades"]
    assert [(t["closed_by"], t["deal"], t["volume"]) for t in trades] == [
        ("order", None, volume - part),
        ("terminal", "D1", part),
    ]
    assert trades[0]["pnl"] == pytest.approx(sign * (volume - part) * (exit_price - price))
    assert trades[1]["pnl"] == pytest.approx(sign * part * 1.0)
    assert trades[0]["costs"] == pytest.approx(-1.5 - 2.0 * 0.75)
    assert trades[1]["costs"] == pytest.approx(-0.6 - 2.0 * 0.25)
    account = view["account"]
    assert account["costs"] == pytest.approx(-2.0 - 1.5 - 0.6 - 0.3)
    assert (account["position"], account["deals"]) == (0.0, 2)
    assert account["equity"] == pytest.approx(
        10_000 + trades[0]["pnl"] + trades[1]["pnl"] + account["costs"], rel=1e-12
    )

    # Events: the entry's ack, the first sync (the second recorded nothing), the exit's ack
    # (which made both trades final: the partial could not be, while the exit was on its way),
    # the last sync (its swap).
    async def all_sent() -> bool:
        return len(await terminal_events(platform, sid)) == 4

    await wait_for(all_sent, within=30)
    sent = await terminal_events(platform, sid)
    assert [e["cause"] for e in sent] == ["ack", "sync", "ack", "sync"]
    carried = [(t["closed_by"], t["deal"]) for e in sent for t in e["closed"]]
    assert sorted(carried, key=str) == sorted([("order", None), ("terminal", "D1")], key=str)
    assert (sent[-1]["costs"], sent[-1]["deals"]) == (pytest.approx(account["costs"]), 2)


async def test_an_exit_after_its_entry_was_refused_is_skipped_not_left_waiting(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
) -> None:
    """The terminal refuses each entry as soon as it arrives, so the model's exits come after
    the refusals: each is skipped when routed (nothing sent, nothing pending)."""
    strategy_id, bars, warmup, agent_id = await prepared(platform, graph, "FTREFUSE", first=6_000)
    created = await platform.start(
        {**session_body(strategy_id, "FTREFUSE"), "mode": "agent", "agent_id": agent_id}
    )
    sid = created.json()["id"]
    refused = 0
    async with start_worker():
        for start in range(warmup, warmup + 150, 10):
            await platform.push("FTREFUSE", "4h", bars.slice(start, start + 10))
            await platform.wait_bars(sid, start + 10)
            for command in await poll(platform, agent_id):
                assert command["kind"] == "open"  # no close ever goes out
                refusal = {"outcome": "rejected", "error": "market closed"}
                await ack(platform, agent_id, command["id"], refusal)
                refused += 1
    placed = await orders(platform, sid)
    exits = [o for o in placed if o["reason"] != "entry"]
    assert refused >= 2 and exits
    assert {o["agent"]["state"] for o in placed if o["reason"] == "entry"} == {"rejected"}
    assert {(o["agent"]["state"], o["agent"]["command_id"]) for o in exits} == {("skipped", None)}
    account = (await platform.get(f"/api/sessions/{sid}")).json()["terminal"]
    assert account["orders"] == {"executed": 0, "refused": len(placed), "pending": 0}
    assert account["position"] == 0.0 and account["trades"] == 0
