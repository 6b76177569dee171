"""The owner's read-only list of an agent's commands (``GET /api/agents/{id}/queue``): queued,
leased and ended commands newest first, filtered by state, paged by cursor; it never leases, and
it answers only the agent's owner."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from algotrade.events import new_event_id
from algotrade_testkit.services import internal_token
from forward_test_service.agents.commands import CommandQueue, QueuePolicy
from forward_test_service.agents.schemas import CommandCreate

from .conftest import Desk


async def _queue(desk: Desk, agent: str, user_id: str = "alice", **params: Any) -> httpx.Response:
    return await desk.client.get(
        f"/api/agents/{agent}/queue", params=params, headers=desk.user(user_id)
    )


async def _items(desk: Desk, agent: str, **params: Any) -> list[dict[str, Any]]:
    answer = await _queue(desk, agent, **params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_the_list_shows_queued_leased_and_acknowledged_commands_newest_first(
    desk: Desk,
) -> None:
    agent = await desk.register()
    first = (await desk.enqueue(agent, kind="info", message="first")).json()
    opened = (
        await desk.enqueue(agent, kind="open", symbol="EURUSD", side="buy", volume=0.1)
    ).json()
    closed = (await desk.enqueue(agent, kind="close", ticket="7")).json()
    (leased_close,) = await desk.poll(agent, limit=1)  # the close: most urgent
    assert leased_close["id"] == closed["id"]
    ack = await desk.ack(agent, closed["id"], outcome="executed", ticket="7", price=1.1)
    assert ack.status_code == 200, ack.text
    (leased_open,) = await desk.poll(agent, limit=1)
    assert leased_open["id"] == opened["id"]
    last = (await desk.enqueue(agent, kind="info", message="last")).json()

    items = await _items(desk, agent)
    assert [(c["id"], c["state"]) for c in items] == [
        (last["id"], "queued"),
        (closed["id"], "executed"),
        (opened["id"], "leased"),
        (first["id"], "queued"),
    ]
    by_id = {c["id"]: c for c in items}
    done = by_id[closed["id"]]
    assert done["result"] == {"ticket": "7", "price": 1.1}
    assert done["created_at_ms"] <= done["leased_at_ms"] <= done["ended_at_ms"]
    assert done["leased_until_ms"] is None and done["attempts"] == 1
    leased = by_id[opened["id"]]
    assert (leased["symbol"], leased["side"], leased["volume"]) == ("EURUSD", "buy", 0.1)
    assert leased["leased_at_ms"] is not None and leased["leased_until_ms"] is not None
    assert leased["ended_at_ms"] is None and leased["result"] is None
    queued = by_id[first["id"]]
    assert (queued["message"], queued["attempts"], queued["leased_at_ms"]) == ("first", 0, None)

    only = await _items(desk, agent, state=["queued", "leased"])
    assert [c["id"] for c in only] == [last["id"], opened["id"], first["id"]]
    assert [c["id"] for c in await _items(desk, agent, state="executed")] == [closed["id"]]
    assert await _items(desk, agent, state="failed") == []


async def test_reading_the_list_leases_nothing(desk: Desk) -> None:
    agent = await desk.register()
    queued = (await desk.enqueue(agent, kind="modify", ticket="7", sl=1.05)).json()
    for _ in range(3):
        (seen,) = await _items(desk, agent)
        assert (seen["id"], seen["state"], seen["attempts"]) == (queued["id"], "queued", 0)
    # The agent's next poll still gets it, delivered for the first time.
    (delivered,) = await desk.poll(agent)
    assert (delivered["id"], delivered["attempts"]) == (queued["id"], 1)
    (seen,) = await _items(desk, agent)
    assert (seen["state"], seen["attempts"]) == ("leased", 1)


async def test_the_list_pages_newest_first_with_a_cursor(desk: Desk) -> None:
    agent = await desk.register()
    ids = [(await desk.enqueue(agent, kind="info", message=f"m{i}")).json()["id"] for i in range(5)]
    await desk.poll(agent, limit=2)  # the two oldest are leased

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        body = (await _queue(desk, agent, **params)).json()
        pages.append([c["id"] for c in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    newest_first = ids[::-1]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]

    # A filtered page is paged the same way.
    body = (await _queue(desk, agent, state="queued", limit=2)).json()
    assert [c["id"] for c in body["items"]] == newest_first[0:2]
    rest = (await _queue(desk, agent, state="queued", limit=2, cursor=body["next_cursor"])).json()
    assert [c["id"] for c in rest["items"]] == [newest_first[2]]
    assert rest["next_cursor"] is None


async def test_only_the_owner_reads_the_list(desk: Desk) -> None:
    agent = await desk.register()
    await desk.enqueue(agent, kind="info", message="private")
    for user_id, path in (
        ("mallory", f"/api/agents/{agent}/queue"),
        ("alice", "/api/agents/01J0000000000000000000000A/queue"),
    ):
        answer = await desk.client.get(path, headers=desk.user(user_id))
        assert answer.status_code == 404, (user_id, path)
        assert answer.headers["content-type"] == "application/problem+json"

    # The agent's own key reads its own list, not another agent's.
    other = await desk.register()
    own = await desk.client.get(f"/api/agents/{agent}/queue", headers=desk.agent(agent))
    assert own.status_code == 200 and len(own.json()["items"]) == 1
    foreign = await desk.client.get(f"/api/agents/{other}/queue", headers=desk.agent(agent))
    assert foreign.status_code == 403

    # An API key reads it only with agents:read.
    for scopes, status in (({"agents:read"}, 200), ({"agents:write", "sessions:read"}, 403)):
        token = internal_token(desk.gateway, "alice", frozenset(scopes))
        answer = await desk.client.get(
            f"/api/agents/{agent}/queue", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == status, (scopes, answer.text)


async def test_bad_query_parameters_are_problems(desk: Desk) -> None:
    agent = await desk.register()
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"state": "done"},
        {"cursor": "abc"},
        {"cursor": "-1"},
    ):
        answer = await _queue(desk, agent, **params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"] == "application/problem+json"
        (name,) = params
        locations = [e["loc"][:2] for e in answer.json()["errors"]]
        assert locations == [["query", name]], answer.text
    bad_id = await desk.client.get("/api/agents/not-an-id/queue", headers=desk.user())
    assert bad_id.status_code == 422


async def test_the_history_keeps_the_newest_commands_whose_record_still_exists(
    redis_client: Redis, redis_prefix: str
) -> None:
    queue = CommandQueue(redis_client, redis_prefix, QueuePolicy(history_max=3, history_scan=2))
    agent = new_event_id()
    keys = queue.keys(agent)
    await redis_client.hset(keys.meta, "user_id", "alice")  # type: ignore[misc]
    ids = []
    for i in range(5):
        command, _ = await queue.enqueue(agent, "alice", CommandCreate(kind="info", message=f"{i}"))
        ids.append(command.id)
    # At most history_max; a page looks at history_scan ids at most, then hands a cursor on.
    assert await redis_client.zcard(keys.history) == 3
    first = await queue.page(agent, limit=10)
    assert [c.id for c in first.commands] == [ids[4], ids[3]]
    assert first.next_before is not None
    rest = await queue.page(agent, limit=10, before=first.next_before)
    assert ([c.id for c in rest.commands], rest.next_before) == ([ids[2]], None)
    none = await queue.page(agent, limit=10, states=["executed"])
    assert none.commands == [] and none.next_before is not None

    # A command whose record expired is skipped, and pruned by the next enqueue.
    await redis_client.delete(keys.command(ids[2]))
    assert [
        c.id for c in (await queue.page(agent, limit=1, before=first.next_before)).commands
    ] == []
    await queue.enqueue(agent, "alice", CommandCreate(kind="info", message="5"))
    history = await redis_client.zrange(keys.history, 0, -1)
    assert ids[2].encode() not in history and len(history) == 3
