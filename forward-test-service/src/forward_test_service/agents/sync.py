"""Trade sync: the terminal's positions reconciled against the platform's record of them.

The platform's record (a Redis hash per agent, ticket → position) is written by executed
commands (`forward_test_service.agents.commands`) and by each sync. The terminal holds the
account, so where the two disagree the terminal's view wins, but never silently: each
disagreement is in the report, counts as a conflict (announced as ``agent.sync.conflict`` and
lowering the health score), and the policy below says what was done.

- same ticket, same symbol, side, volume, open price, SL and TP: matched (``none``);
- same ticket, fields differ, and a ``modify``/``close`` for it is still queued or leased:
  ``pending``, the record is kept (the command will settle it);
- same ticket, only the volume differs, smaller, and the sync lists closing deals of that
  ticket for at least the difference: ``closed`` (a partial close: a stop or target hit in
  part, or the trader's hand), the record takes the terminal's volume; not a conflict;
- same ticket, fields differ otherwise: ``adopted``, the terminal's values are recorded, both
  are reported; a conflict;
- on the platform's record only, among the terminal's recently closed trades: ``closed``;
- on the platform's record only, not among them: ``flagged``, removed from the record and
  reported; a conflict;
- on the terminal only, with the idempotency key of a still queued or leased ``open`` as its
  comment (executed, its ack not in yet): ``pending``, left to the ack;
- on the terminal only otherwise (opened by hand, or its ack never came): ``adopted`` with
  ``origin: platform``; a conflict.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from algotrade.errors import NotFound
from forward_test_service.agents.commands import AgentUnknownInRedis
from forward_test_service.agents.layout import AgentKeys, SharedKeys, text
from forward_test_service.agents.schemas import Position, SyncItem, SyncReport, TradeSync

COMPARED = ("symbol", "side", "volume", "open_price", "sl", "tp")
_compared = operator.attrgetter(*COMPARED)
_recorded = operator.itemgetter(*COMPARED)
RECENT_SYNCS = 5
DETAILS_MAX = 50
DECODED_MAX = 50_000
"""Positions kept decoded by `TradeBook`, per generation (two generations)."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return bool(a == b)


def reconcile(
    book: Mapping[str, dict[str, Any]],
    sync: TradeSync,
    pending: set[str],
    now_ms: int,
    opening: frozenset[str] = frozenset(),
) -> tuple[SyncReport, dict[str, dict[str, Any]]]:
    """The report and the platform's new record (see the module doc for the policy)."""
    # The models' attributes, not a model_dump of every position: this runs on each sync of
    # every position the terminal holds.
    reported = {p.ticket: p for p in sync.positions}
    closed: dict[str, float] = {}  # volume of the closing deals listed, per ticket
    for deal in sync.closed:
        closed[deal.ticket] = closed.get(deal.ticket, 0.0) + deal.volume
    new_book: dict[str, dict[str, Any]] = {}
    matched = 0
    missing: list[SyncItem] = []
    unknown: list[SyncItem] = []
    diverging: list[SyncItem] = []
    for ticket, ours in book.items():
        theirs = reported.get(ticket)
        if theirs is None:
            if ticket in closed:
                missing.append(SyncItem(ticket=ticket, symbol=ours["symbol"], action="closed"))
            elif ticket in pending:
                new_book[ticket] = ours
                missing.append(SyncItem(ticket=ticket, symbol=ours["symbol"], action="pending"))
            else:
                missing.append(SyncItem(ticket=ticket, symbol=ours["symbol"], action="flagged"))
            continue
        try:
            same = _recorded(ours) == _compared(theirs)
        except KeyError:  # a record without one of the fields: compared as None below
            same = False
        if same:
            fields = {}  # the usual case, without the tolerant comparison
        else:
            fields = {
                name: {"server": ours.get(name), "platform": getattr(theirs, name)}
                for name in COMPARED
                if not _same(ours.get(name), getattr(theirs, name))
            }
        if not fields:
            matched += 1
            new_book[ticket] = ours
        elif ticket in pending:
            new_book[ticket] = ours
            diverging.append(
                SyncItem(ticket=ticket, symbol=theirs.symbol, action="pending", fields=fields)
            )
        elif fields.keys() == {"volume"} and _partly_closed(ours, theirs, closed):
            new_book[ticket] = {**ours, "volume": theirs.volume}
            diverging.append(
                SyncItem(ticket=ticket, symbol=theirs.symbol, action="closed", fields=fields)
            )
        else:
            new_book[ticket] = {**ours, **{name: getattr(theirs, name) for name in COMPARED}}
            diverging.append(
                SyncItem(ticket=ticket, symbol=theirs.symbol, action="adopted", fields=fields)
            )
    for ticket, theirs in reported.items():
        if ticket in book:
            continue
        if theirs.comment in opening:
            unknown.append(SyncItem(ticket=ticket, symbol=theirs.symbol, action="pending"))
        else:
            new_book[ticket] = {
                **{name: getattr(theirs, name) for name in COMPARED},
                "ticket": ticket,
                "origin": "platform",
            }
            unknown.append(SyncItem(ticket=ticket, symbol=theirs.symbol, action="adopted"))
    conflicts = (
        sum(item.action == "flagged" for item in missing)
        + sum(item.action == "adopted" for item in unknown)
        + sum(item.action == "adopted" for item in diverging)
    )
    report = SyncReport(
        synced_at_ms=now_ms,
        matched=matched,
        missing_on_platform=missing,
        unknown_to_server=unknown,
        diverging=diverging,
        conflicts=conflicts,
        positions=len(new_book),
    )
    return report, new_book


def _partly_closed(ours: Mapping[str, Any], theirs: Position, closed: Mapping[str, float]) -> bool:
    """The terminal holds less of the position, and the sync's closing deals of its ticket
    account for the difference."""
    recorded = ours.get("volume")
    if not isinstance(recorded, int | float) or theirs.volume >= recorded:
        return False
    return closed.get(theirs.ticket, 0.0) >= (recorded - theirs.volume) * (1 - 1e-9)


class TradeBook:
    """The platform's record of each agent's positions, and the sync that checks it."""

    def __init__(self, redis: Redis, prefix: str, *, clock: Any = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._shared = SharedKeys(prefix)
        self._clock = clock
        # The record's positions as decoded, by their stored JSON: a terminal syncs every few
        # seconds, mostly an unchanged account, and decoding all its positions again each time
        # was a tenth of a sync (~1 ms of 500). Shared, so never changed (`reconcile` changes
        # no position it is given). Two generations: the older is dropped when the newer is
        # full, so what is in use stays.
        self._decoded: dict[bytes, dict[str, Any]] = {}
        self._decoded_before: dict[bytes, dict[str, Any]] = {}

    async def positions(self, agent_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(AgentKeys.of(self._prefix, agent_id).positions)  # type: ignore[misc]
        return sorted((orjson.loads(v) for v in raw.values()), key=lambda p: str(p["ticket"]))

    async def sync(self, agent_id: str, user_id: str, sync: TradeSync) -> SyncReport:
        """Reconcile and store the result, retried if an ack changed the record meanwhile.

        Three round trips to Redis (four with commands in the queue): WATCH the record, read
        the owner, the record, the recent syncs and the queue in one pipeline, then write
        what changed in one MULTI/EXEC. `AgentUnknownInRedis` when Redis does not know the
        agent (the caller asks PostgreSQL), 404 when another user owns it."""
        k = AgentKeys.of(self._prefix, agent_id)
        for _ in range(10):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(k.positions, k.sync)
                    # Read on another connection: the WATCH above still catches any write
                    # to the record from here to the EXEC.
                    reads = self._redis.pipeline(transaction=False)
                    reads.hget(k.meta, "user_id")
                    reads.hgetall(k.positions)
                    reads.hget(k.sync, "recent")
                    for key in (k.ready, k.delayed, k.leased):
                        reads.zrange(key, 0, -1)
                    owner, raw, recent_raw, *queued = await reads.execute()
                    if owner is None:
                        raise AgentUnknownInRedis(agent_id)
                    if text(owner) != user_id:
                        raise NotFound("no such agent")
                    pending, opening = await self._pending(k, queued)
                    decoded = self._decoded
                    book = {text(t): decoded.get(v) or self._decode(v) for t, v in raw.items()}
                    recent = orjson.loads(recent_raw or b"[]")
                    now = int(self._clock() * 1000)
                    report, new_book = reconcile(book, sync, pending, now, opening)
                    recent = [*recent, report.conflicts][-RECENT_SYNCS:]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    # Only what changed: a sync that agrees rewrites nothing.
                    gone = [t for t in book if t not in new_book]
                    changed = {
                        t: orjson.dumps(p)
                        for t, p in new_book.items()
                        if p is not book.get(t) and p != book.get(t)  # mostly the same object
                    }
                    if gone:
                        pipe.hdel(k.positions, *gone)
                    if changed:
                        pipe.hset(k.positions, mapping=cast(Mapping[Any, Any], changed))
                    pipe.hset(
                        k.sync,
                        mapping={
                            "last": report.model_dump_json(
                                include={"synced_at_ms", "matched", "conflicts", "positions"}
                            ),
                            "missing_on_platform": len(report.missing_on_platform),
                            "unknown_to_server": sum(
                                i.action == "adopted" for i in report.unknown_to_server
                            ),
                            "diverging": len(report.diverging),
                            "recent": orjson.dumps(recent),
                        },
                    )
                    pipe.hincrby(k.sync, "count", 1)
                    if report.conflicts:
                        pipe.rpush(
                            self._shared.journal, _conflict_record(agent_id, user_id, report)
                        )
                    await pipe.execute()
                    return report
                except WatchError:
                    continue
        raise RuntimeError("the trade record kept changing during the sync")

    def _decode(self, stored: bytes) -> dict[str, Any]:
        """A position of the record, decoded once while it stays the same (see __init__)."""
        position = self._decoded.get(stored)
        if position is None:
            position = self._decoded_before.get(stored)
            if position is None:
                position = orjson.loads(stored)
            if len(self._decoded) >= DECODED_MAX:
                self._decoded_before, self._decoded = self._decoded, {}
            self._decoded[stored] = position
        return position

    async def recent_conflicts(self, agent_ids: list[str]) -> list[tuple[int, dict[str, Any]]]:
        """(syncs with conflicts among the recent ones, the last sync summary) per agent."""
        pipe = self._redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(AgentKeys.of(self._prefix, agent_id).sync)
        out: list[tuple[int, dict[str, Any]]] = []
        for raw in await pipe.execute():
            h = {text(a): text(b) for a, b in raw.items()}
            recent = orjson.loads(h.get("recent", "[]"))
            last: dict[str, Any] = orjson.loads(h["last"]) if "last" in h else {}
            if last:
                for name in ("missing_on_platform", "unknown_to_server", "diverging", "count"):
                    last[name] = int(h.get(name, 0))
            out.append((sum(1 for c in recent if c), last))
        return out

    async def _pending(
        self, k: AgentKeys, queued: list[list[bytes]]
    ) -> tuple[set[str], frozenset[str]]:
        """Tickets a queued or leased ``modify``/``close`` command is about, and the
        idempotency keys of queued or leased ``open`` commands; ``queued`` holds the ids in
        the ready, delayed and leased sets."""
        ids = [text(i) for ids in queued for i in ids]
        if not ids:
            return set(), frozenset()
        pipe = self._redis.pipeline(transaction=False)
        for command_id in ids:
            pipe.hmget(k.command(command_id), "kind", "body", "idem")
        tickets: set[str] = set()
        opening: set[str] = set()
        for kind, body, idem in await pipe.execute():
            if kind is None:
                continue
            if text(kind) in ("modify", "close", "close_all"):
                ticket = orjson.loads(body or b"{}").get("ticket")
                if ticket:
                    tickets.add(ticket)
            elif text(kind) == "open" and idem is not None:
                opening.add(text(idem))
        return tickets, frozenset(opening)


def _conflict_record(agent_id: str, user_id: str, report: SyncReport) -> bytes:
    details: Iterable[SyncItem] = [
        *(i for i in report.missing_on_platform if i.action == "flagged"),
        *(i for i in report.unknown_to_server if i.action == "adopted"),
        *(i for i in report.diverging if i.action == "adopted"),
    ]
    return orjson.dumps(
        {
            "kind_of_record": "sync",
            "agent_id": agent_id,
            "user_id": user_id,
            "missing_on_platform": sum(i.action == "flagged" for i in report.missing_on_platform),
            "unknown_to_server": sum(i.action == "adopted" for i in report.unknown_to_server),
            "diverging": sum(i.action == "adopted" for i in report.diverging),
            "details": [i.model_dump(exclude_none=True) for i in list(details)[:DETAILS_MAX]],
        }
    )
