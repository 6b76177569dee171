"""Trade sync: the policy of `forward_test_service.agents.sync.reconcile`, case by case, and a
sync through the API that contradicts the platform's record (reported, announced, never
silently overwritten)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from algotrade import agent_events
from algotrade.events import Topics, new_event_id
from algotrade_testkit.kafka import read_all
from algotrade_testkit.plugin import wait_for
from forward_test_service.agents import sync as sync_module
from forward_test_service.agents.layout import AgentKeys
from forward_test_service.agents.schemas import TradeSync
from forward_test_service.agents.sync import TradeBook, reconcile

from .conftest import Desk


def position(ticket: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 1.0,
        "open_price": 1.1,
        "sl": None,
        "tp": None,
        **overrides,
    }


def test_each_case_of_the_policy() -> None:
    book = {
        "same": position("same"),
        "moved": position("moved", sl=1.0),
        "modifying": position("modifying", sl=1.0),
        "closed-by-tp": position("closed-by-tp"),
        "vanished": position("vanished"),
    }
    sync = TradeSync.model_validate(
        {
            "positions": [
                position("same"),
                position("moved", sl=1.05, volume=0.5),
                position("modifying", sl=1.05),
                position("by-hand", symbol="GBPUSD", side="sell"),
                position("acking", comment="open-key-1"),
            ],
            "closed": [
                {
                    "ticket": "closed-by-tp",
                    "symbol": "EURUSD",
                    "side": "buy",
                    "volume": 1.0,
                    "open_price": 1.1,
                    "close_price": 1.2,
                    "closed_at_ms": 1,
                }
            ],
        }
    )
    report, new_book = reconcile(
        book, sync, pending={"modifying"}, now_ms=5, opening=frozenset({"open-key-1"})
    )
    assert report.matched == 1
    assert {i.ticket: i.action for i in report.missing_on_platform} == {
        "closed-by-tp": "closed",
        "vanished": "flagged",
    }
    assert [(i.ticket, i.action) for i in report.unknown_to_server] == [
        ("by-hand", "adopted"),
        ("acking", "pending"),  # its open was executed, the ack is on its way
    ]
    diverging = {i.ticket: i for i in report.diverging}
    assert diverging["moved"].action == "adopted"
    assert diverging["moved"].fields == {
        "volume": {"server": 1.0, "platform": 0.5},
        "sl": {"server": 1.0, "platform": 1.05},
    }
    assert diverging["modifying"].action == "pending"
    assert report.conflicts == 3  # vanished, by-hand, moved
    assert set(new_book) == {"same", "moved", "modifying", "by-hand"}
    assert (new_book["moved"]["sl"], new_book["moved"]["volume"]) == (1.05, 0.5)
    assert new_book["modifying"]["sl"] == 1.0  # the modify command will settle it
    assert new_book["by-hand"]["origin"] == "platform"


def deal(ticket: str, volume: float, at: int) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "deal": f"{ticket}-{at}",
        "symbol": "EURUSD",
        "side": "buy",
        "volume": volume,
        "open_price": 1.1,
        "close_price": 1.2,
        "closed_at_ms": at,
    }


def test_a_partial_close_the_sync_accounts_for_is_no_conflict() -> None:
    """Less volume on the terminal, and closing deals of the ticket listed for at least the
    difference (a day's deals: older ones too): ``closed``, the record takes the volume. Not
    accounted for, larger, or another field changed as well: ``adopted``, a conflict."""
    book = {t: position(t) for t in ("part", "twice", "unexplained", "grown", "part-and-sl")}
    sync = TradeSync.model_validate(
        {
            "positions": [
                position("part", volume=0.75),
                position("twice", volume=0.5),
                position("unexplained", volume=0.5),
                position("grown", volume=1.5),
                position("part-and-sl", volume=0.75, sl=1.0),
            ],
            "closed": [
                deal("part", 0.25, 10),
                deal("twice", 0.25, 11),
                deal("twice", 0.25, 12),
                deal("twice", 0.5, 1),  # an older close of the same ticket, in the day's list
                deal("unexplained", 0.25, 13),
                deal("grown", 0.5, 14),
                deal("part-and-sl", 0.25, 15),
            ],
        }
    )
    report, new_book = reconcile(book, sync, pending=set(), now_ms=20)
    assert {i.ticket: i.action for i in report.diverging} == {
        "part": "closed",
        "twice": "closed",
        "unexplained": "adopted",
        "grown": "adopted",
        "part-and-sl": "adopted",
    }
    closed = next(i for i in report.diverging if i.ticket == "part")
    assert closed.fields == {"volume": {"server": 1.0, "platform": 0.75}}
    assert report.conflicts == 3
    assert {t: p["volume"] for t, p in new_book.items()} == {
        "part": 0.75,
        "twice": 0.5,
        "unexplained": 0.5,
        "grown": 1.5,
        "part-and-sl": 0.75,
    }
    # The next sync agrees with the record.
    again, _ = reconcile(new_book, sync, pending=set(), now_ms=30)
    assert (again.matched, again.conflicts, again.diverging) == (5, 0, [])


def test_a_sync_equal_to_the_record_changes_nothing() -> None:
    book = {f"t{i}": position(f"t{i}", volume=float(i + 1)) for i in range(500)}
    sync = TradeSync.model_validate({"positions": list(book.values())})
    report, new_book = reconcile(book, sync, pending=set(), now_ms=1)
    assert (report.matched, report.conflicts, report.positions) == (500, 0, 500)
    assert new_book == book


async def test_a_contradicting_sync_is_reported_and_announced(desk: Desk) -> None:
    agent = await desk.register()
    created = (
        await desk.enqueue(
            agent, kind="open", symbol="EURUSD", side="buy", volume=1, idempotency_key="o1"
        )
    ).json()
    (leased,) = await desk.poll(agent)
    assert leased["id"] == created["id"]
    acked = await desk.ack(agent, created["id"], outcome="executed", ticket="501", price=1.1)
    assert acked.status_code == 200
    url = f"/api/agents/{agent}/trades/sync"
    agreeing = {
        "positions": [
            {"ticket": "501", "symbol": "EURUSD", "side": "buy", "volume": 1, "open_price": 1.1}
        ]
    }
    first = (await desk.client.post(url, json=agreeing, headers=desk.agent(agent))).json()
    assert (first["matched"], first["conflicts"]) == (1, 0)
    contradicting = {
        "positions": [
            {"ticket": "501", "symbol": "EURUSD", "side": "buy", "volume": 2, "open_price": 1.1},
            {"ticket": "777", "symbol": "US30+", "side": "sell", "volume": 1, "open_price": 39e3},
        ]
    }
    second = (await desk.client.post(url, json=contradicting, headers=desk.agent(agent))).json()
    assert second["conflicts"] == 2
    assert second["diverging"][0]["fields"] == {"volume": {"server": 1, "platform": 2}}
    assert second["unknown_to_server"][0]["ticket"] == "777"
    positions = (
        await desk.client.get(f"/api/agents/{agent}/positions", headers=desk.user())
    ).json()
    assert {p["ticket"]: p["volume"] for p in positions["data"]} == {"501": 2, "777": 1}
    topic = Topics(desk.settings.kafka_topic_prefix).agent_events

    async def announced() -> list[dict[str, Any]]:
        records = await read_all(desk.settings.kafka_bootstrap, topic)
        return [
            orjson.loads(r.value)
            for r in records
            if r.key == agent.encode()
            and orjson.loads(r.value)["type"] == agent_events.SYNC_CONFLICT
        ]

    await wait_for(lambda: _any(announced), within=30)
    (event,) = await announced()
    assert (event["payload"]["diverging"], event["payload"]["unknown_to_server"]) == (1, 1)
    status = (await desk.client.get("/api/agents/status", headers=desk.user())).json()
    (item,) = status["agents"]
    assert item["last_sync"]["conflicts"] == 2
    health = (await desk.client.get(f"/api/agents/{agent}", headers=desk.user())).json()["health"]
    assert health["components"]["sync"] == 80


async def _any(call: Any) -> bool:
    return bool(await call())


def test_a_recorded_position_without_a_compared_field_matches_it_as_none() -> None:
    recorded = {"ticket": "t1", "symbol": "EURUSD", "side": "buy", "volume": 1.0, "open_price": 1.1}
    sync = TradeSync.model_validate({"positions": [position("t1")]})  # sl, tp: None
    report, new_book = reconcile({"t1": recorded}, sync, pending=set(), now_ms=1)
    assert (report.matched, report.conflicts) == (1, 0)
    assert new_book["t1"] is recorded


async def test_a_position_rewritten_in_the_record_between_syncs_is_read_anew(
    redis_client: Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book keeps positions decoded by their stored JSON: a changed record is a new JSON,
    read as it is now, also after the decoded ones were dropped to make room."""
    monkeypatch.setattr(sync_module, "DECODED_MAX", 2)
    book = TradeBook(redis_client, redis_prefix)
    agent = new_event_id()
    keys = AgentKeys.of(redis_prefix, agent)
    await redis_client.hset(keys.meta, "user_id", "alice")  # type: ignore[misc]
    held = TradeSync.model_validate({"positions": [position(f"t{i}") for i in range(3)]})
    assert (await book.sync(agent, "alice", held)).conflicts == 3  # adopted
    for _ in range(2):
        report = await book.sync(agent, "alice", held)
        assert (report.matched, report.conflicts) == (3, 0)
    # An executed modify rewrites one position of the record (as the ack script does).
    moved = {**position("t1", sl=1.05), "origin": "platform"}
    await redis_client.hset(keys.positions, "t1", orjson.dumps(moved))  # type: ignore[misc]
    report = await book.sync(agent, "alice", held)
    assert report.matched == 2
    assert report.diverging[0].fields == {"sl": {"server": 1.05, "platform": None}}
    assert (await book.sync(agent, "alice", held)).matched == 3  # the terminal's view adopted
