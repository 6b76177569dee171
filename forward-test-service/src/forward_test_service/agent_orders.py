"""Sessions in agent mode: every order the session's fill model makes also goes to its agent.

A session in ``agent`` mode runs exactly as a paper session (the plan, the shared fill model,
the same trades and equity), and each of its fills becomes a command in its agent's priority
queue, named by an idempotency key made of the session and the fill's number
(`order_key`). So a bar applied again after a crash queues nothing twice, and an agent that
receives a command twice executes it once (the key is in the order's comment).

- An entry fill becomes ``open`` (side, volume, the agent's symbol).
- An exit fill becomes ``close`` of the ticket the agent reported when it executed the entry.
  Until that ack arrives the exit waits (``agent_state = waiting``), and the ack releases it
  (`AgentOrders.on_ack`). If the entry was rejected or failed, the exit is ``skipped``.
- Each order row (``session_orders``) keeps its command id and what the agent answered:
  state, ticket, executed price and volume, error. The model's price stays next to it, so the
  slippage between the model and the terminal is on every order.

The session's position and equity are the fill model's; the agent's executions are recorded
against them and the agent's trade sync reconciles the terminal (`agents.sync`). Routing runs
after the bar's PostgreSQL record and before its checkpoint, so a crash in between re-applies
the bar and routes it again (harmless: the keys are the same).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import session_events
from algotrade.errors import AlgoTradeError
from algotrade.simulation.live import Fill
from forward_test_service import terminal
from forward_test_service.agents.commands import CommandQueue
from forward_test_service.agents.schemas import (
    ClosedTrade,
    CommandCreate,
    CommandPublic,
    TradeSync,
)
from forward_test_service.models import session_orders as orders_t
from forward_test_service.models import sessions as sessions_t
from forward_test_service.models import terminal_deals as deals_t
from forward_test_service.store import BarRecord, SessionStore, terminal_rows

logger = logging.getLogger(__name__)

ENTRY = "entry"
COMMAND_EXPIRY_SECONDS = 300.0

# The deals of a trade sync (the terminal's closes, whole or partial), recorded on the executed
# entries that opened their positions: only this agent's sessions of this user, a ticket of the
# session's symbol and side closed after its entry; when several entries carry the ticket (a
# netting account's position id, a ticket used again), the latest. Each deal once per agent
# (the first report stands). The session's own closes are listed too: recorded alike, they
# find nothing left to close (`forward_test_service.terminal.fold`).
_TERMINAL_DEALS = text(
    "INSERT INTO forward.terminal_deals (agent_id, ticket, deal, session_id, entry_seq, "
    "volume, price, ts, commission, swap) "
    "SELECT DISTINCT ON (c.ticket, c.deal) :agent, c.ticket, c.deal, o.session_id, o.seq, "
    "c.volume, c.price, c.ts, c.commission, c.swap "
    "FROM unnest(CAST(:tickets AS text[]), CAST(:deals AS text[]), CAST(:symbols AS text[]), "
    "CAST(:sides AS text[]), CAST(:volumes AS float8[]), CAST(:prices AS float8[]), "
    "CAST(:ts AS bigint[]), CAST(:commissions AS float8[]), CAST(:swaps AS float8[])) "
    "AS c(ticket, deal, symbol, side, volume, price, ts, commission, swap) "
    "JOIN forward.session_orders AS o ON o.agent_ticket = c.ticket AND o.reason = 'entry' "
    "AND o.agent_state = 'executed' AND o.side = c.side AND c.ts >= o.ts "
    "JOIN forward.sessions AS s ON s.id = o.session_id AND s.agent_id = :agent "
    "AND s.user_id = :user AND upper(coalesce(s.agent_symbol, s.symbol)) = upper(c.symbol) "
    "ORDER BY c.ticket, c.deal, o.ts DESC, o.seq DESC, o.session_id DESC "
    "ON CONFLICT DO NOTHING "
    "RETURNING session_id"
)


@dataclass(frozen=True, slots=True)
class Route:
    """Where an agent-mode session's orders go."""

    user_id: str
    agent_id: str
    symbol: str  # the agent's name of the symbol


def order_key(session_id: str, seq: int) -> str:
    """The idempotency key of a session's order (at most 31 characters, MT5's comment)."""
    return f"{session_id[-16:]}.{seq}"


class AgentOrders:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        queue: CommandQueue,
        store: SessionStore,
    ) -> None:
        self._sessions = sessions
        self._queue = queue
        self._store = store  # stages ``session.terminal`` with the change it describes

    async def route(self, records: Sequence[BarRecord], routes: Mapping[str, Route]) -> None:
        """Queue the fills of ``records`` whose session has a route (see the module doc)."""
        for record in records:
            route = routes.get(record.session_id)
            if route is None or record.outcome is None:
                continue
            for k, fill in enumerate(record.outcome.fills):
                await self._send(record.session_id, record.first_fill + k, fill, route)

    async def _send(self, session_id: str, seq: int, fill: Fill, route: Route) -> None:
        if fill.reason == ENTRY:
            command = CommandCreate(
                kind="open",
                idempotency_key=order_key(session_id, seq),
                symbol=route.symbol,
                side=fill.side,
                volume=fill.quantity,
                expires_in_seconds=COMMAND_EXPIRY_SECONDS,
            )
        else:
            ticket = await self._exit_ticket(session_id, seq)
            if ticket is None:
                return  # waiting for its entry's ack, or not sent at all
            command = self._close(session_id, seq, ticket)
        await self._enqueue(session_id, seq, command, route)

    def _close(self, session_id: str, seq: int, ticket: str) -> CommandCreate:
        return CommandCreate(
            kind="close",
            idempotency_key=order_key(session_id, seq),
            ticket=ticket,
            expires_in_seconds=COMMAND_EXPIRY_SECONDS,
        )

    async def _enqueue(
        self, session_id: str, seq: int, command: CommandCreate, route: Route
    ) -> None:
        try:
            queued, _ = await self._queue.enqueue(
                route.agent_id, route.user_id, command, session_id=session_id
            )
        except AlgoTradeError as exc:  # the agent is gone (deleted): say so on the order
            await self._mark(session_id, seq, state="failed", error=exc.detail)
            return
        await self._set_unrouted(session_id, seq, command_id=queued.id, agent_state="queued")

    async def _set_unrouted(self, session_id: str, seq: int, **values: Any) -> None:
        """Set ``values`` on the order unless a command carries it already (`_unrouted`)."""
        async with self._sessions.begin() as db:
            await db.execute(_unrouted(session_id, [seq]).values(**values))

    async def _exit_ticket(self, session_id: str, seq: int) -> str | None:
        """The ticket exit ``seq`` closes: the one the agent gave its entry (the last entry
        before it). Until the entry's ack comes the exit is marked ``waiting`` and that ack
        releases it; after an entry that ended unexecuted it is ``skipped``. Under the
        session's row lock, as `on_ack`, so the ack and this look cannot miss each other."""
        async with self._sessions.begin() as db:
            await _lock(db, [session_id])
            entry = (
                await db.execute(
                    select(orders_t.c.agent_state, orders_t.c.agent_ticket)
                    .where(
                        orders_t.c.session_id == session_id,
                        orders_t.c.seq < seq,
                        orders_t.c.reason == ENTRY,
                    )
                    .order_by(orders_t.c.seq.desc())
                    .limit(1)
                )
            ).first()
            state = None if entry is None else entry.agent_state
            if state == "executed" and entry is not None and entry.agent_ticket:
                return str(entry.agent_ticket)
            mark: dict[str, Any] = {"agent_state": "waiting", "agent_error": None}
            if state == "executed":
                mark = {"agent_state": "failed", "agent_error": "the entry's ack named no ticket"}
            elif state in terminal.ENDED:
                mark = {"agent_state": "skipped", "agent_error": f"the entry was {state}"}
            await db.execute(_unrouted(session_id, [seq]).values(**mark))
        return None

    async def _mark(
        self, session_id: str, seq: int, *, state: str, error: str | None = None
    ) -> None:
        await self._set_unrouted(session_id, seq, agent_state=state, agent_error=error)

    async def settle(self, rows: Sequence[Any]) -> bool:
        """Orders still ``queued`` whose command ended without an ack (expired, or failed
        after its retries, inside the queue): record the end as an ack would. True when any
        changed."""
        changed = False
        for row in rows:
            if row.agent_state != "queued" or row.command_id is None:
                continue
            route = await self._route_of(row.session_id)
            if route is None:
                continue
            try:
                command = await self._queue.get(route.agent_id, route.user_id, row.command_id)
            except AlgoTradeError:
                continue  # ended long ago (kept 7 days) or the agent is gone: leave as is
            if command.state in ("expired", "failed", "rejected", "executed"):
                await self.on_ack(command, route)
                changed = True
        return changed

    async def _route_of(self, session_id: str) -> Route | None:
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(
                        sessions_t.c.user_id, sessions_t.c.agent_id, sessions_t.c.agent_symbol
                    ).where(sessions_t.c.id == session_id)
                )
            ).first()
        if row is None or row.agent_id is None:
            return None
        return Route(row.user_id, row.agent_id, row.agent_symbol or "")

    async def on_ack(self, command: CommandPublic, route: Route) -> None:
        """Record the agent's answer on the session's order, once (the ack's route and a
        reader settling the order may both come here); an executed entry releases the exits
        waiting for its ticket, a refused one skips them, in the same transaction as the
        ``session.terminal`` it stages."""
        if not command.session_id:
            return
        result = command.result or {}
        ticket: str | None = result.get("ticket")
        released: Sequence[Any] = ()
        async with self._sessions.begin() as db:
            await _lock(db, [command.session_id])
            row = (
                await db.execute(
                    update(orders_t)
                    .where(
                        orders_t.c.command_id == command.id,
                        orders_t.c.agent_state.is_distinct_from(command.state),
                    )
                    .values(
                        agent_state=command.state,
                        agent_ticket=ticket,
                        agent_price=result.get("price"),
                        agent_volume=result.get("volume"),
                        agent_error=result.get("error"),
                        agent_commission=result.get("commission"),
                    )
                    .returning(orders_t.c.session_id, orders_t.c.seq, orders_t.c.reason)
                )
            ).first()
            if row is None:
                return  # recorded already
            if row.reason == ENTRY:
                waiting = await self._waiting_exits(db, row.session_id, row.seq)
                if command.state == "executed" and ticket:
                    released = waiting
                elif waiting:
                    skipped = _unrouted(row.session_id, [w.seq for w in waiting])
                    error = f"the entry was {command.state}"
                    await db.execute(skipped.values(agent_state="skipped", agent_error=error))
            await self._stage_terminal(db, row.session_id, route.user_id, "ack", row.seq)
        self._store.wake()
        for exit_row in released:
            assert ticket is not None  # released only by an executed entry with its ticket
            await self._release(row.session_id, exit_row.seq, ticket, route)

    async def _waiting_exits(self, db: AsyncSession, session_id: str, seq: int) -> Sequence[Any]:
        """The exits after entry ``seq`` and before the next entry waiting for its ticket."""
        following = (
            select(func.min(orders_t.c.seq))
            .where(
                orders_t.c.session_id == session_id,
                orders_t.c.seq > seq,
                orders_t.c.reason == ENTRY,
            )
            .scalar_subquery()
        )
        return (
            await db.execute(
                select(orders_t.c.seq).where(
                    and_(
                        orders_t.c.session_id == session_id,
                        orders_t.c.seq > seq,
                        orders_t.c.agent_state == "waiting",
                        func.coalesce(orders_t.c.seq < following, True),
                    )
                )
            )
        ).all()

    async def _stage_terminal(
        self,
        db: AsyncSession,
        session_id: str,
        user_id: str,
        cause: Literal["ack", "sync"],
        seq: int | None = None,
    ) -> None:
        """Stage ``session.terminal``: the terminal account after this change, with the trades
        it settled (see `settled`).

        The caller holds the session's row lock (`_lock`), so changes of one session stage
        their accounts one after the other, each folding what the one before committed."""
        capital = await db.scalar(select(sessions_t.c.capital).where(sessions_t.c.id == session_id))
        rows = await terminal_rows(db, session_id)
        account = terminal.fold(float(capital or 0.0), rows.orders, rows.deals)
        closed = terminal.settled(account, rows.orders, rows.deals, seq=seq)
        reported = [(t.entry_seq, t.deal) for t in closed if t.closed_by == "terminal"]
        if reported:
            await db.execute(
                update(deals_t)
                .where(
                    deals_t.c.session_id == session_id,
                    tuple_(deals_t.c.entry_seq, deals_t.c.deal).in_(reported),
                )
                .values(reported=True)
            )
        await self._store.stage(
            db,
            session_events.TERMINAL,
            session_events.SessionTerminal(
                session_id=session_id,
                cause=cause,
                seq=seq,
                position=account.position,
                cash=account.cash,
                realized_pnl=account.realized,
                costs=account.costs,
                open_tickets=len(account.tickets),
                trades=len(account.trades),
                executed=account.executed,
                deals=account.deals,
                refused=account.refused,
                pending=account.pending,
                closed=[
                    session_events.TerminalTrade(
                        ticket=t.ticket,
                        side=t.side,
                        volume=t.volume,
                        entry_price=t.entry_price,
                        exit_price=t.exit_price,
                        pnl=t.pnl,
                        costs=t.costs,
                        entry_seq=t.entry_seq,
                        exit_seq=t.exit_seq,
                        deal=t.deal,
                        exit_ts=t.exit_ts,
                        closed_by=t.closed_by,
                    )
                    for t in closed
                ],
            ),
            user_id,
            session_id,
        )

    async def on_sync(self, agent_id: str, user_id: str, sync: TradeSync) -> int:
        """Record the deals a trade sync lists (the terminal's closes, whole or partial) on the
        sessions' entries that opened their positions (`_TERMINAL_DEALS`;
        `forward_test_service.terminal` applies them). Returns how many were new."""
        # A position of the deal's ticket opened after the deal: the deal closed an earlier one.
        opened = {p.ticket: p.opened_at_ms for p in sync.positions if p.opened_at_ms is not None}
        deals = {
            (d.ticket, deal_key(d)): d
            for d in sync.closed
            if opened.get(d.ticket, d.closed_at_ms) <= d.closed_at_ms
        }
        if not deals:
            return 0
        async with self._sessions.begin() as db:
            agent_sessions = (
                await db.execute(
                    select(sessions_t.c.id).where(
                        sessions_t.c.agent_id == agent_id, sessions_t.c.user_id == user_id
                    )
                )
            ).scalars()
            await _lock(db, list(agent_sessions))
            listed = list(deals.values())
            recorded = (
                (
                    await db.execute(
                        _TERMINAL_DEALS,
                        {
                            "tickets": [ticket for ticket, _ in deals],
                            "deals": [key for _, key in deals],
                            "symbols": [d.symbol for d in listed],
                            "sides": [d.side for d in listed],
                            "volumes": [d.volume for d in listed],
                            "prices": [d.close_price for d in listed],
                            "ts": [d.closed_at_ms for d in listed],
                            "commissions": [d.commission for d in listed],
                            "swaps": [d.swap for d in listed],
                            "agent": agent_id,
                            "user": user_id,
                        },
                    )
                )
                .scalars()
                .all()
            )
            for session_id in sorted(set(recorded)):
                await self._stage_terminal(db, session_id, user_id, "sync")
        if recorded:
            self._store.wake()
        return len(recorded)

    async def _release(self, session_id: str, seq: int, ticket: str, route: Route) -> None:
        await self._set_unrouted(session_id, seq, agent_state=None)
        await self._enqueue(session_id, seq, self._close(session_id, seq, ticket), route)


def deal_key(deal: ClosedTrade) -> str:
    """What names a deal once per ticket: the terminal's deal id, else its time, volume and
    price (a "/" never in an id: the two kinds of name cannot meet)."""
    return deal.deal or f"{deal.closed_at_ms}/{deal.volume!r}/{deal.close_price!r}"


async def _lock(db: AsyncSession, session_ids: Sequence[str]) -> None:
    """Lock these sessions' rows for the transaction, in id order (no two lockers wait on each
    other): whatever changes a session's orders from the agent's side, and what reads them to
    hand an exit its ticket, take it first."""
    if session_ids:
        await db.execute(
            select(sessions_t.c.id)
            .where(sessions_t.c.id.in_(sorted(session_ids)))
            .order_by(sessions_t.c.id)
            .with_for_update()
        )


def _unrouted(session_id: str, seqs: Sequence[int]) -> Any:
    """An update of these orders of the session that no command carries yet (whoever routed
    an order first wins: routing is idempotent, so a second router's values are the same)."""
    return update(orders_t).where(
        orders_t.c.session_id == session_id,
        orders_t.c.seq.in_(seqs),
        orders_t.c.command_id.is_(None),
    )
