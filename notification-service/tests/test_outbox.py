"""A socket's outbox: market bars conflate, other messages are never dropped, and a socket
that stays behind is failed with the reason instead of holding anyone up."""

from __future__ import annotations

import asyncio

import pytest

from notification_service.outbox import SlowSocket, SocketOutbox


async def test_market_frames_conflate_and_others_keep_their_order() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def send(frame: str) -> None:
        await gate.wait()
        sent.append(frame)

    outbox = SocketOutbox(send, limit=100, grace_seconds=5)
    runner = asyncio.create_task(outbox.run())
    outbox.put("a")
    await asyncio.sleep(0)  # the sender took "a" and waits on the socket
    for n in range(50):
        outbox.put_latest("market:X:1m", f"bar{n}")
    outbox.put("b")
    outbox.put_latest("market:Y:1m", "y0")
    gate.set()
    while len(sent) < 4:
        await asyncio.sleep(0.01)
    runner.cancel()
    assert sent == ["a", "bar49", "b", "y0"]
    assert outbox.conflated == 49


async def test_a_socket_that_stays_behind_is_failed_after_the_grace_period() -> None:
    now = [0.0]
    stuck = asyncio.Event()

    async def send(frame: str) -> None:
        await stuck.wait()  # the peer never reads

    outbox = SocketOutbox(send, limit=10, grace_seconds=2.0, clock=lambda: now[0])
    runner = asyncio.create_task(outbox.run())
    for n in range(12):
        outbox.put(f"m{n}")
    assert outbox.slow_since == 0.0 and outbox.failed is None
    now[0] = 1.0
    outbox.check_slow()
    assert outbox.failed is None  # still within the grace period
    now[0] = 2.5
    outbox.check_slow()
    assert outbox.failed is not None and "too slow" in outbox.failed
    stuck.set()
    with pytest.raises(SlowSocket):
        await asyncio.wait_for(runner, 2)


async def test_a_socket_far_behind_fails_at_once() -> None:
    async def send(frame: str) -> None:
        await asyncio.Event().wait()

    outbox = SocketOutbox(send, limit=10, grace_seconds=60)
    for n in range(100):
        outbox.put(f"m{n}")
    assert outbox.failed is not None
    assert len(outbox) == 0  # nothing more is kept for it
