"""Message numbers and the resume buffer on a real Redis: two instances asking for the same
event get the same number, numbers are consecutive per stream, and a resume returns exactly the
missed messages, or says which are gone."""

from __future__ import annotations

import asyncio
import time
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
    first = await asyncio.gather(*(one.append("session:S", i, "account", b"{}") for i in ids))
    second = await asyncio.gather(*(two.append("session:S", i, "account", b"{}") for i in ids))
    assert first == second
    base = min(first) - 1
    assert sorted(first) == list(range(base + 1, base + 31))
    assert await one.last("session:S") == base + 30
    # A new stream starts above anything an expired one could have given (the time in ms).
    assert base >= (time.time() - 60) * 1000
    # A subscriber told the newest number of a stream not started yet gets the first message
    # right after it (no false gap).
    told = await one.last("session:T")
    other = await one.append("session:T", ids[0], "account", b"{}")  # numbered per stream
    assert other == told + 1
    assert other >= (time.time() - 60) * 1000 and await one.last("session:T") == other


async def test_a_resume_returns_exactly_the_missed_messages(pair: Any) -> None:
    one, _ = pair
    numbers = [
        await one.append("user:u", new_event_id(), "orders", b'{"n":%d}' % n) for n in range(10)
    ]
    base = numbers[0] - 1
    assert numbers == list(range(base + 1, base + 11))
    replay = await one.replay("user:u", base + 6)
    assert replay.gap is None and replay.last == base + 10
    assert [m.seq for m in replay.messages] == [base + 7, base + 8, base + 9, base + 10]
    assert [m.event for m in replay.messages] == [b'{"n":6}', b'{"n":7}', b'{"n":8}', b'{"n":9}']
    assert {m.family for m in replay.messages} == {"orders"}
    assert (await one.replay("user:u", base + 10)).messages == []


async def test_trimmed_or_restarted_streams_answer_with_a_gap(
    redis_client: Any, redis_prefix: str
) -> None:
    small = Sequencer(redis_client, redis_prefix, buffer=10, ttl_seconds=60)
    try:
        numbers = [
            await small.append("agent:A", new_event_id(), "agents", b"{}") for _ in range(500)
        ]
        base, last = numbers[0] - 1, numbers[-1]
        # What a stream keeps stays bounded: about a buffer of messages and of event ids.
        tag = f"{redis_prefix}{{notify:agent:A}}"
        assert await redis_client.xlen(f"{tag}:log") < 10 + 100  # one stream node at most
        assert 10 <= await redis_client.zcard(f"{tag}:seen") <= 20
        replay = await small.replay("agent:A", base + 3)
        first = replay.messages[0].seq
        assert replay.gap == (base + 4, first - 1) and first > base + 4
        assert [m.seq for m in replay.messages] == list(range(first, last + 1))
        # A client holding numbers the stream never gave (it expired and began again).
        restarted = await small.replay("agent:A", last + 400)
        assert restarted.gap == (1, last) and restarted.messages == []
        # An expired stream starts again from the time in milliseconds: above every number it
        # gave before, as long as it gave fewer than a thousand a second over its life.
        await redis_client.delete(f"{tag}:seq", f"{tag}:log", f"{tag}:seen")
        before_ms = time.time() * 1000
        again = await small.append("agent:A", new_event_id(), "agents", b"{}")
        assert before_ms - 5 <= again <= time.time() * 1000 + 5
    finally:
        await small.aclose()
