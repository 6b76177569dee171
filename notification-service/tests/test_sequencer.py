"""Message numbers and the resume buffer on a real Redis: two instances asking for the same
event get the same number, numbers are consecutive per stream, and a resume returns exactly the
missed messages, or says which are gone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from algotrade.events import new_event_id
from notification_service.sequencer import Sequencer


@pytest.fixture
async def pair(redis_client: Any, redis_prefix: str) -> Any:
    one = Sequencer(redis_client, redis_prefix, buffer=50, ttl_seconds=60)
    two = Sequencer(redis_client, redis_prefix, buffer=50, ttl_seconds=60)
    yield one, two
    await one.aclose()
    await two.aclose()


async def test_every_instance_gets_the_same_number_and_numbers_are_consecutive(pair: Any) -> None:
    one, two = pair
    ids = [new_event_id() for _ in range(30)]
    # Both instances number every event, concurrently, as two consumers of one topic would.
    first = await asyncio.gather(
        *(one.append("session:S", i, "account", "session:S", b"{}") for i in ids)
    )
    second = await asyncio.gather(
        *(two.append("session:S", i, "account", "session:S", b"{}") for i in ids)
    )
    assert first == second
    assert sorted(first) == list(range(1, 31))
    assert await one.last("session:S") == 30
    assert await one.append("session:T", ids[0], "account", "session:T", b"{}") == 1  # per stream


async def test_a_resume_returns_exactly_the_missed_messages(pair: Any) -> None:
    one, _ = pair
    for n in range(10):
        await one.append("user:u", new_event_id(), "orders", "user", b'{"n":%d}' % n)
    replay = await one.replay("user:u", 6)
    assert replay.gap is None and replay.last == 10
    assert [m.seq for m in replay.messages] == [7, 8, 9, 10]
    assert [m.event for m in replay.messages] == [b'{"n":6}', b'{"n":7}', b'{"n":8}', b'{"n":9}']
    assert {m.family for m in replay.messages} == {"orders"}
    assert (await one.replay("user:u", 10)).messages == []
    assert [m.seq for m in (await one.replay("user:u", 0)).messages] == list(range(1, 11))


async def test_trimmed_or_restarted_streams_answer_with_a_gap(
    redis_client: Any, redis_prefix: str
) -> None:
    small = Sequencer(redis_client, redis_prefix, buffer=10, ttl_seconds=60)
    try:
        for _ in range(500):
            await small.append("agent:A", new_event_id(), "agents", "agent:A", b"{}")
        # What a stream keeps stays bounded: about a buffer of messages and of event ids.
        tag = f"{redis_prefix}{{notify:agent:A}}"
        assert await redis_client.xlen(f"{tag}:log") < 10 + 100  # one stream node at most
        assert 10 <= await redis_client.zcard(f"{tag}:seen") <= 20
        replay = await small.replay("agent:A", 3)
        first = replay.messages[0].seq
        assert replay.gap == (4, first - 1) and first > 4
        assert [m.seq for m in replay.messages] == list(range(first, 501))
        # A client holding numbers the stream no longer has (it expired and began again).
        restarted = await small.replay("agent:A", 900)
        assert restarted.gap == (1, 500) and restarted.messages == []
    finally:
        await small.aclose()
