"""Agent mode: the session's account as the terminal executed it.

A session in agent mode has two accounts. The **model** is the paper session's: the plan and
the shared fill model decide every order, so it stays comparable with its backtest. The
**terminal** account is what the agent reported: each executed ``open`` opens a ticket at the
terminal's price and volume, each executed ``close`` closes its ticket at the terminal's
price, and each deal by which the terminal closed a ticket (or part of it) by itself (its own
stop or target, a margin call, the trader's hand), as the trade sync reported it, closes that
volume at the deal's price. A rejected, failed, expired or skipped order changes nothing, and
an order still queued changes nothing yet.

`fold` derives the terminal account from the session's orders (their agent columns) and the
terminal's deals recorded against them (``terminal_deals``) alone, so it is the same whoever
computes it and whenever: an ack or a sync records what the terminal did, never a second copy
of the account.

Conventions, as the model's: ``cash`` is the capital plus realized P&L plus the terminal's
costs minus what the open tickets cost (``side x volume x open price``), so
``equity = cash + position x mark``. A trade's ``pnl`` is side x volume x price move, in the
symbol's price units (the sync's ``profit`` is the terminal's own figure and is not used);
its ``costs`` are the commission and swap the terminal reported for the deal that closed it
plus its share (by volume) of the commission of the ack that opened it, signed as the terminal
signs them (negative: charged), so a trade nets ``pnl + costs``. ``costs`` of the account is
every commission and swap reported, the open tickets' included.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ENTRY = "entry"
EXECUTED = "executed"
ENDED = frozenset({"executed", "rejected", "failed", "expired", "skipped"})


@dataclass(slots=True)
class Ticket:
    """An open position on the terminal."""

    ticket: str
    side: int  # +1 long, -1 short
    volume: float  # what is still open
    price: float  # the terminal's open price
    entry_seq: int
    entry_ts: int
    opened: float  # the volume opened: `costs` is shared out by it
    costs: float = 0.0  # the opening ack's commission


@dataclass(frozen=True, slots=True)
class TerminalTrade:
    ticket: str
    side: Literal["long", "short"]
    volume: float
    entry_price: float
    exit_price: float
    pnl: float
    costs: float
    entry_seq: int
    exit_seq: int | None  # the session's exit order; None when the terminal closed it
    deal: str | None  # the terminal's deal when it closed it; None for the session's exit
    entry_ts: int
    exit_ts: int
    closed_by: Literal["order", "terminal"]


@dataclass(slots=True)
class TerminalAccount:
    capital: float
    # Open tickets by the session's entry that opened them (a terminal may name two positions
    # alike: a netting account's position id, or a ticket number used again).
    tickets: dict[int, Ticket] = field(default_factory=dict)
    trades: list[TerminalTrade] = field(default_factory=list)
    realized: float = 0.0
    costs: float = 0.0  # every commission and swap reported (negative: charged)
    deals: int = 0  # the terminal's own deals recorded (each a change of the account)
    executed: int = 0  # orders the terminal executed
    refused: int = 0  # rejected, failed, expired or skipped
    pending: int = 0  # queued or waiting

    @property
    def position(self) -> float:
        return math.fsum(t.side * t.volume for t in self.tickets.values())

    @property
    def cash(self) -> float:
        cost = math.fsum(t.side * t.volume * t.price for t in self.tickets.values())
        return self.capital + self.realized + self.costs - cost

    def equity(self, mark: float | None) -> float:
        """Marked at ``mark`` (the last bar's close); with no mark, at the open prices."""
        if mark is None or not math.isfinite(mark):
            return self.capital + self.realized + self.costs
        return self.cash + self.position * mark

    def summary(self, mark: float | None) -> dict[str, Any]:
        return {
            "position": self.position,
            "cash": self.cash,
            "equity": self.equity(mark),
            "realized_pnl": self.realized,
            "costs": self.costs,
            "mark": mark if mark is not None and math.isfinite(mark) else None,
            "open_tickets": len(self.tickets),
            "trades": len(self.trades),
            "deals": self.deals,
            "orders": {"executed": self.executed, "refused": self.refused, "pending": self.pending},
        }

    def _close(
        self,
        ticket: Ticket,
        volume: float,
        price: float,
        ts: int,
        *,
        exit_seq: int | None = None,
        deal: str | None = None,
        costs: float = 0.0,
    ) -> None:
        """Close ``volume`` of ``ticket`` (at most what is open) at ``price``; ``costs`` are the
        closing deal's (already in the account's)."""
        volume = min(volume, ticket.volume)
        if volume <= _EPSILON * ticket.opened:
            return
        pnl = ticket.side * volume * (price - ticket.price)
        self.realized += pnl
        self.trades.append(
            TerminalTrade(
                ticket=ticket.ticket,
                side="long" if ticket.side > 0 else "short",
                volume=volume,
                entry_price=ticket.price,
                exit_price=price,
                pnl=pnl,
                costs=costs + ticket.costs * volume / ticket.opened,
                entry_seq=ticket.entry_seq,
                exit_seq=exit_seq,
                deal=deal,
                entry_ts=ticket.entry_ts,
                exit_ts=ts,
                closed_by="order" if exit_seq is not None else "terminal",
            )
        )
        ticket.volume -= volume
        if ticket.volume <= _EPSILON * ticket.opened:
            del self.tickets[ticket.entry_seq]


_EPSILON = 1e-12
"""What is left of a ticket below this share of its volume is rounding: the ticket is closed."""


def fold(capital: float, orders: Iterable[Any], deals: Iterable[Any] = ()) -> TerminalAccount:
    """The terminal account of a session's ``orders`` (rows of ``session_orders``, in seq
    order) and the terminal's own ``deals`` (rows of ``terminal_deals``); see the module doc.

    The model's orders alternate: an entry, then the exit that closes it (the next order).
    The deals the terminal made by itself on an entry's ticket apply after the session's own
    exit, in their time order, each to what was left: the sync lists the session's close too
    (before or after its ack came), and after that exit nothing is left for it to close. So
    when the exit's ack names the volume it closed, the terminal's partial closes before it
    take the rest; when it names none, the exit closed all of it at its price.
    """
    by_entry: defaultdict[int, list[Any]] = defaultdict(list)
    for deal in deals:
        by_entry[deal.entry_seq].append(deal)
    account = TerminalAccount(capital=capital, deals=sum(map(len, by_entry.values())))
    last: Ticket | None = None  # the last executed entry's ticket
    charged = False  # its exit's ack carried a commission
    for order in orders:
        state = order.agent_state
        if state == EXECUTED:
            account.executed += 1
            account.costs += order.agent_commission or 0.0
        elif state in ENDED:
            account.refused += 1
        elif state is not None:
            account.pending += 1
        if order.reason == ENTRY:
            _terminal_closes(account, last, by_entry, charged)
            last, charged = None, False
            if state != EXECUTED:
                continue
            volume = order.quantity if order.agent_volume is None else order.agent_volume
            if volume <= 0.0:
                continue  # executed, but nothing was bought or sold
            price = order.price if order.agent_price is None else order.agent_price
            last = Ticket(
                # An ack without a ticket still opened something: name it by the order.
                ticket=order.agent_ticket or f"#{order.seq}",
                side=1 if order.side == "buy" else -1,
                volume=float(volume),
                price=float(price),
                entry_seq=order.seq,
                entry_ts=order.ts,
                opened=float(volume),
                costs=order.agent_commission or 0.0,
            )
            account.tickets[order.seq] = last
        elif state == EXECUTED and last is not None and last.entry_seq in account.tickets:
            # The close command named the last entry's ticket (the ack may name a deal).
            volume = last.volume if order.agent_volume is None else order.agent_volume
            price = order.price if order.agent_price is None else order.agent_price
            charged = order.agent_commission is not None
            account._close(
                last,
                float(volume),
                float(price),
                order.ts,
                exit_seq=order.seq,
                costs=order.agent_commission or 0.0,
            )
    _terminal_closes(account, last, by_entry, charged)
    return account


def _terminal_closes(
    account: TerminalAccount, ticket: Ticket | None, by_entry: dict[int, list[Any]], charged: bool
) -> None:
    """Apply the deals the terminal made by itself on ``ticket``, in time order. A deal that
    finds nothing left is the session's own close as the sync listed it: its swap counts, and
    its commission unless the exit's ack (``charged``) carried it already."""
    if ticket is None:
        return
    for deal in sorted(by_entry.get(ticket.entry_seq, ()), key=lambda d: (d.ts, d.deal)):
        if ticket.entry_seq not in account.tickets:
            account.costs += deal.swap + (0.0 if charged else deal.commission)
            continue
        costs = deal.commission + deal.swap
        account.costs += costs
        volume = ticket.volume if deal.volume is None else float(deal.volume)  # None: the rest
        account._close(ticket, volume, float(deal.price), deal.ts, deal=deal.deal, costs=costs)


def settled(
    account: TerminalAccount, orders: Sequence[Any], deals: Sequence[Any], *, seq: int | None
) -> list[TerminalTrade]:
    """The trades of ``account`` that the change to order ``seq`` (an ack; None for a sync)
    made final and that no earlier ``session.terminal`` carried: a trade the session's exit
    closed, at that exit's ack; one a deal of the terminal closed, once the entry's own exit
    can no longer close it (there is none yet, or it ended) and until it is reported
    (``reported`` on the deal)."""
    by_seq = {order.seq: order for order in orders}
    reported = {(deal.entry_seq, deal.deal) for deal in deals if deal.reported}
    found = []
    for trade in account.trades:
        if trade.closed_by == "order":
            if trade.exit_seq == seq:
                found.append(trade)
            continue
        exit_ = by_seq.get(trade.entry_seq + 1)
        pending = exit_ is not None and exit_.agent_state not in ENDED
        if (trade.entry_seq, trade.deal) not in reported and not pending:
            found.append(trade)
    return found
