"""Agent mode: the session's account as the terminal executed it.

A session in agent mode has two accounts. The **model** is the paper session's: the plan and
the shared fill model decide every order, so it stays comparable with its backtest. The
**terminal** account is what the agent reported: each executed ``open`` opens a ticket at the
terminal's price and volume, each executed ``close`` closes its ticket at the terminal's
price, and a position the terminal closed by itself (its own stop, a margin call, the trader's
hand), as the trade sync reported it, is closed at the price the sync gave. A rejected, failed,
expired or skipped order changes nothing, and an order still queued changes nothing yet.

`fold` derives the terminal account from the session's orders alone (their agent columns), so
it is the same whoever computes it and whenever: an ack or a sync changes the orders, never a
second copy of the account. Acks carry no commission, so the terminal account has no fees
(the sync's ``profit`` of a terminal-closed trade is the terminal's own figure and is not
used either: P&L is side x volume x price move, in the symbol's price units).

Conventions, as the model's: ``cash`` is the capital plus realized P&L minus what the open
tickets cost (``side x volume x open price``), so ``equity = cash + position x mark``.
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True, slots=True)
class TerminalTrade:
    ticket: str
    side: Literal["long", "short"]
    volume: float
    entry_price: float
    exit_price: float
    pnl: float
    entry_seq: int
    exit_seq: int | None  # the session's exit order; None when the terminal closed it
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
    executed: int = 0  # orders the terminal executed
    refused: int = 0  # rejected, failed, expired or skipped
    pending: int = 0  # queued or waiting

    @property
    def position(self) -> float:
        return math.fsum(t.side * t.volume for t in self.tickets.values())

    @property
    def cash(self) -> float:
        cost = math.fsum(t.side * t.volume * t.price for t in self.tickets.values())
        return self.capital + self.realized - cost

    def equity(self, mark: float | None) -> float:
        """Marked at ``mark`` (the last bar's close); with no mark, at the open prices."""
        if mark is None or not math.isfinite(mark):
            return self.capital + self.realized
        return self.cash + self.position * mark

    def summary(self, mark: float | None) -> dict[str, Any]:
        return {
            "position": self.position,
            "cash": self.cash,
            "equity": self.equity(mark),
            "realized_pnl": self.realized,
            "mark": mark if mark is not None and math.isfinite(mark) else None,
            "open_tickets": len(self.tickets),
            "trades": len(self.trades),
            "orders": {"executed": self.executed, "refused": self.refused, "pending": self.pending},
        }

    def _close(
        self, ticket: Ticket, volume: float, price: float, exit_seq: int | None, ts: int
    ) -> None:
        volume = min(volume, ticket.volume)
        if volume <= 0.0:
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
                entry_seq=ticket.entry_seq,
                exit_seq=exit_seq,
                entry_ts=ticket.entry_ts,
                exit_ts=ts,
                closed_by="order" if exit_seq is not None else "terminal",
            )
        )
        ticket.volume -= volume
        if ticket.volume <= 1e-12 * max(1.0, volume):
            del self.tickets[ticket.entry_seq]


def fold(capital: float, orders: Iterable[Any]) -> TerminalAccount:
    """The terminal account of a session's ``orders`` (rows of ``session_orders``, in seq
    order; see the module doc).

    The model's orders alternate: an entry, then the exit that closes it (the next order).
    A close the terminal made by itself is applied after the session's own exit, to what that
    exit left: when both are reported (the sync saw the session's close before its ack came),
    the session's order is the one that closed the ticket.
    """
    account = TerminalAccount(capital=capital)
    last: tuple[Ticket, Any] | None = None  # the last executed entry's ticket, and its order
    for order in orders:
        state = order.agent_state
        if state == EXECUTED:
            account.executed += 1
        elif state in ENDED:
            account.refused += 1
        elif state is not None:
            account.pending += 1
        if order.reason == ENTRY:
            _terminal_close(account, last)
            last = None
            if state != EXECUTED:
                continue
            volume = order.quantity if order.agent_volume is None else order.agent_volume
            if volume <= 0.0:
                continue  # executed, but nothing was bought or sold
            price = order.price if order.agent_price is None else order.agent_price
            ticket = Ticket(
                # An ack without a ticket still opened something: name it by the order.
                ticket=order.agent_ticket or f"#{order.seq}",
                side=1 if order.side == "buy" else -1,
                volume=float(volume),
                price=float(price),
                entry_seq=order.seq,
                entry_ts=order.ts,
            )
            account.tickets[order.seq] = ticket
            last = (ticket, order)
        elif state == EXECUTED and last is not None:
            # The close command named the last entry's ticket (the ack may name a deal).
            ticket = last[0]
            if ticket.entry_seq in account.tickets:
                volume = ticket.volume if order.agent_volume is None else order.agent_volume
                price = order.price if order.agent_price is None else order.agent_price
                account._close(ticket, float(volume), float(price), order.seq, order.ts)
    _terminal_close(account, last)
    return account


def _terminal_close(account: TerminalAccount, last: tuple[Ticket, Any] | None) -> None:
    """Close what is left of ``last``'s ticket where the terminal said it closed it."""
    if last is None:
        return
    ticket, entry = last
    if entry.terminal_close_price is None or ticket.entry_seq not in account.tickets:
        return
    account._close(
        ticket,
        ticket.volume,
        float(entry.terminal_close_price),
        None,
        entry.terminal_closed_ts or entry.ts,
    )


def settled(
    account: TerminalAccount, orders: Sequence[Any], *, seq: int | None
) -> list[TerminalTrade]:
    """The trades of ``account`` that the change to order ``seq`` (an ack; None for a sync)
    made final and that no earlier ``session.terminal`` carried: a trade the session's exit
    closed, at that exit's ack; one the terminal closed, once the entry's own exit can no
    longer close it (there is none yet, or it ended unexecuted) and until it is reported
    (``terminal_close_reported`` on the entry)."""
    by_seq = {order.seq: order for order in orders}
    found = []
    for trade in account.trades:
        if trade.closed_by == "order":
            if trade.exit_seq == seq:
                found.append(trade)
            continue
        entry = by_seq[trade.entry_seq]
        exit_ = by_seq.get(trade.entry_seq + 1)
        pending = exit_ is not None and exit_.agent_state not in ENDED
        if not entry.terminal_close_reported and not pending:
            found.append(trade)
    return found
