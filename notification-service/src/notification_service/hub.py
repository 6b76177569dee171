"""The instance's sockets and subscriptions, and the fan-out of one numbered message to them.

A message is encoded once per stream and put in each subscriber's outbox (`SocketOutbox`):
delivery never waits for a socket. A subscription that is still being set up (its snapshot or
its replay is on the way) holds live messages back and releases them, in order and without the
ones it already sent, once it is ready; every subscription skips numbers it has already sent,
so a replay and the live stream meet without a duplicate or a hole.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from algotrade.auth import Principal
from notification_service.channels import Channel, Route
from notification_service.families import FAMILIES, Family, Mode
from notification_service.outbox import SocketOutbox
from notification_service.sequencer import Replay

ReadBuffer = Callable[[str, int], Awaitable[Replay]]

KIND_FAMILIES: dict[str, tuple[Family, ...]] = {
    "session": ("sessions", "orders", "positions", "account"),
    "backtest": ("backtests",),
    "sweep": ("backtests",),
    "agent": ("agents",),
    "user": ("sessions", "orders", "positions", "account", "backtests", "agents"),
    "market": ("intraday_bars",),
}
"""Which families a channel of each kind carries (for the subscriber counts)."""


def gap_frame(channel: str, first: int, last: int) -> str:
    """Numbers ``first``..``last`` of ``channel`` cannot be sent: refetch over REST."""
    return orjson.dumps({"type": "gap", "channel": channel, "from": first, "to": last}).decode()


def event_frame(channel: str, seq: int, family: str, mode: Mode, event: str) -> str:
    """The message a client receives for one event (``event``: the event as JSON text)."""
    shadow = "true" if mode == "shadow" else "false"
    return (
        f'{{"type":"event","channel":{orjson.dumps(channel).decode()},"seq":{seq},'
        f'"family":"{family}","shadow":{shadow},"event":{event}}}'
    )


@dataclass(eq=False)
class Socket:
    """One connected client: who it is, its outbox and its subscriptions by channel name."""

    principal: Principal
    outbox: SocketOutbox
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


@dataclass(eq=False)
class Subscription:
    socket: Socket
    channel: Channel
    stream: str
    last_seq: int = 0
    held: list[tuple[int, str | None]] | None = field(default_factory=list)
    """Live frames waiting while the snapshot or replay is sent; None once live."""
    early: dict[int, str | None] = field(default_factory=dict)
    """Frames that came before a lower number (another instance numbered that one first and
    this instance has not seen it yet); released in order once the hole is filled."""
    early_since: float | None = None

    def offer(self, seq: int, frame: str | None) -> bool:
        """Deliver ``frame`` numbered ``seq`` in order; False when it was sent already. A None
        frame is a number withheld (its family is in rest mode): it only moves the order on."""
        if seq <= self.last_seq or seq in self.early:
            return False
        if self.held is not None:
            self.held.append((seq, frame))
            return True
        if seq != self.last_seq + 1:
            if not self.early:
                self.early_since = time.monotonic()
            self.early[seq] = frame
            return True
        self._send(seq, frame)
        self._release()
        return True

    def _release(self) -> None:
        while (following := self.early.pop(self.last_seq + 1, None)) is not None:
            self._send(self.last_seq + 1, following)
        if not self.early:
            self.early_since = None

    def _send(self, seq: int, frame: str | None) -> None:
        self.last_seq = seq
        if frame is None:
            return
        if self.channel.kind == "market":
            self.socket.outbox.put_latest(self.channel.name, frame)
        else:
            self.socket.outbox.put(frame)

    def skip_to(self, seq: int) -> None:
        """Give up on the numbers up to ``seq`` (gone from the buffer: a ``gap`` was sent)."""
        self.last_seq = max(self.last_seq, seq)
        for number in [n for n in self.early if n <= self.last_seq]:
            del self.early[number]
        self._release()

    def go_live(self, after_seq: int) -> None:
        """Release the held frames numbered after ``after_seq`` and deliver live from now."""
        held, self.held = self.held or [], None
        self.last_seq = max(self.last_seq, after_seq)
        for seq, frame in sorted(held):
            self.offer(seq, frame)


@dataclass
class FamilyCounters:
    pushed: int = 0  # messages put in at least one socket's outbox
    deliveries: int = 0  # messages put in outboxes, one per socket
    withheld: int = 0  # messages not pushed because the family is in rest mode
    last_message_at: float | None = None  # epoch seconds of the last event seen


class Hub:
    def __init__(
        self, mode_of: Callable[[Family], Mode], clock: Callable[[], float] = time.time
    ) -> None:
        self._mode_of = mode_of
        self._clock = clock
        self._streams: dict[str, set[Subscription]] = defaultdict(set)
        self.sockets: set[Socket] = set()
        self._per_user: dict[str, int] = {}
        self.counters: dict[Family, FamilyCounters] = {f: FamilyCounters() for f in FAMILIES}

    # -- sockets and subscriptions ---------------------------------------------------------

    def connect(self, socket: Socket) -> None:
        self.sockets.add(socket)
        user = socket.principal.user_id
        self._per_user[user] = self._per_user.get(user, 0) + 1

    def disconnect(self, socket: Socket) -> None:
        for subscription in list(socket.subscriptions.values()):
            self.unsubscribe(subscription)
        if socket in self.sockets:
            self.sockets.discard(socket)
            user = socket.principal.user_id
            left = self._per_user.get(user, 1) - 1
            if left:
                self._per_user[user] = left
            else:
                self._per_user.pop(user, None)

    def sockets_of(self, user_id: str) -> int:
        return self._per_user.get(user_id, 0)

    def subscribe(self, subscription: Subscription) -> None:
        subscription.socket.subscriptions[subscription.channel.name] = subscription
        self._streams[subscription.stream].add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.socket.subscriptions.pop(subscription.channel.name, None)
        subscribers = self._streams.get(subscription.stream)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._streams[subscription.stream]

    # -- fan-out ---------------------------------------------------------------------------

    def deliver(self, route: Route, seq: int, event: str) -> int:
        """Put one numbered message in the outbox of every subscriber of its stream; the number
        of sockets it went to."""
        counters = self.counters[route.family]
        counters.last_message_at = self._clock()
        mode = self._mode_of(route.family)
        subscribers = self._streams.get(route.stream)
        if mode == "rest":
            counters.withheld += 1
            for subscription in list(subscribers or ()):
                subscription.offer(seq, None)  # keeps the numbers after it in order
            return 0
        if not subscribers:
            return 0
        frame = event_frame(route.channel, seq, route.family, mode, event)
        sent = sum(1 for subscription in list(subscribers) if subscription.offer(seq, frame))
        if sent:
            counters.pushed += 1
            counters.deliveries += sent
        return sent

    def broadcast(self, frame: str) -> None:
        """A control message to every socket (a change of modes)."""
        for socket in list(self.sockets):
            socket.outbox.put(frame)

    # -- status ----------------------------------------------------------------------------

    def subscribers_by_family(self) -> dict[Family, int]:
        counts: dict[Family, int] = dict.fromkeys(FAMILIES, 0)
        for subscribers in self._streams.values():
            for subscription in subscribers:
                for family in KIND_FAMILIES[subscription.channel.kind]:
                    counts[family] += 1
        return counts

    def subscription_count(self) -> int:
        return sum(len(s) for s in self._streams.values())

    async def repair(self, replay: ReadBuffer, older_than: float) -> int:
        """Fill the holes that stayed open ``older_than`` seconds from the resume buffer (a
        message another instance numbered that this one has not consumed yet); numbers gone
        from the buffer become a ``gap`` message. The number of subscriptions repaired."""
        now = time.monotonic()
        stale: dict[str, list[Subscription]] = defaultdict(list)
        for stream, subscribers in self._streams.items():
            for subscription in subscribers:
                since = subscription.early_since
                if since is not None and now - since >= older_than:
                    stale[stream].append(subscription)
        for stream, subscriptions in stale.items():
            after = min(s.last_seq for s in subscriptions)
            found = await replay(stream, after)
            for subscription in subscriptions:
                current = subscription.socket.subscriptions.get(subscription.channel.name)
                if current is subscription and subscription.early:  # still open, still a hole
                    self.apply(subscription, found)
        return sum(len(s) for s in stale.values())

    def apply(self, subscription: Subscription, found: Replay) -> None:
        """Offer buffered messages to a live subscription in order, a ``gap`` first for the
        numbers the buffer no longer has."""
        name = subscription.channel.name
        if found.gap is not None and found.gap[1] > subscription.last_seq:
            subscription.socket.outbox.put(gap_frame(name, found.gap[0], found.gap[1]))
            subscription.skip_to(found.gap[1])
        for message in found.messages:
            mode = self._mode_of(message.family)  # type: ignore[arg-type]
            frame = None
            if mode != "rest":
                frame = event_frame(name, message.seq, message.family, mode, message.event.decode())
            subscription.offer(message.seq, frame)

    def check_slow(self) -> None:
        for socket in list(self.sockets):
            socket.outbox.check_slow()
