"""One socket's outgoing messages: a bounded queue, conflation of market bars, slow-socket rule.

Fan-out never waits for a socket: it puts the message in the socket's queue and moves on, and
the socket's own sender task writes the queue out. Market bars conflate: while a bar of a
market channel waits, a newer bar of that channel replaces it (latest wins; its ``seq`` then
skips). Nothing else is ever dropped: when a socket's queue holds ``limit`` messages it is
slow, and a socket that stays slow for ``grace`` seconds (or falls ``10 x limit`` behind) is
closed with code 4008 and the reason, so that the client reconnects with ``resume_from``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

HARD_LIMIT_FACTOR = 10

Send = Callable[[str], Awaitable[None]]


class SlowSocket(Exception):
    """The socket fell too far behind; it is closed with the reason."""


class SocketOutbox:
    def __init__(
        self,
        send: Send,
        *,
        limit: int,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._limit = limit
        self._grace = grace_seconds
        self._clock = clock
        self._queue: deque[str | tuple[str]] = deque()  # a frame, or (market channel,) marker
        self._latest: dict[str, str] = {}  # market channel -> the newest frame waiting
        self._wake = asyncio.Event()
        self.gone = asyncio.Event()
        """Set once the socket failed: its sender may be stuck writing to a peer that reads
        nothing, so the owner watches this instead of waiting for the sender."""
        self.slow_since: float | None = None
        self.failed: str | None = None
        self.sent = 0
        self.conflated = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, frame: str) -> None:
        """Queue a frame that must not be lost."""
        if self.failed is not None:
            return
        self._queue.append(frame)
        self._check()
        self._wake.set()

    def put_latest(self, channel: str, frame: str) -> None:
        """Queue a market frame; an older one of ``channel`` still waiting is replaced."""
        if self.failed is not None:
            return
        if channel in self._latest:
            self.conflated += 1
        else:
            self._queue.append((channel,))
        self._latest[channel] = frame
        self._wake.set()

    def _check(self) -> None:
        backlog = len(self._queue)
        if backlog < self._limit:
            self.slow_since = None
            return
        now = self._clock()
        if self.slow_since is None:
            self.slow_since = now
        if backlog >= self._limit * HARD_LIMIT_FACTOR:
            self._fail(f"too slow: {backlog} messages behind")
        elif now - self.slow_since >= self._grace:
            self._fail(f"too slow: {backlog} messages behind for {now - self.slow_since:.1f}s")

    def check_slow(self) -> None:
        """The periodic check (a stuck socket may receive nothing new to trigger `put`)."""
        if self.failed is None and self._queue:
            self._check()

    def _fail(self, reason: str) -> None:
        self.failed = reason
        self._queue.clear()
        self._latest.clear()
        self._wake.set()
        self.gone.set()

    async def run(self) -> None:
        """Write the queue out until the socket fails; raises `SlowSocket` then."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and self.failed is None:
                item = self._queue.popleft()
                frame = item if isinstance(item, str) else self._latest.pop(item[0])
                await self._send(frame)
                self.sent += 1
                if len(self._queue) < self._limit:
                    self.slow_since = None
            if self.failed is not None:
                raise SlowSocket(self.failed)
