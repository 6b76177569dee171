"""`SimulatedAccount`: the trading account the reference agent executes commands on.

It stands in for a broker account behind a terminal: positions by ticket, closed trades, a
balance, and equity at current prices (margin is not simulated: it is 0). Like a terminal's own
trade history it outlives the agent process: with a file, every change is written at once
(atomically), so an agent restarted on the same file finds the same account.

Each executed order carries the command's idempotency key, the way an MT5 agent stamps it on the
order comment, and the account remembers the fill it made under that key. A command delivered
again after its ack was lost is then answered from that fill (`SimulatedAccount.fill_for`)
instead of being executed a second time.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Side = Literal["buy", "sell"]
PriceSource = Callable[[str], "float | None"]
"""A symbol's current price, or None when there is none (no bar seen yet)."""

FORMAT_VERSION = 1
FIRST_TICKET = 1_000_001
FILLS_KEPT = 10_000
"""Idempotency keys remembered; the platform forgets an ended command's key after 7 days."""
CLOSED_KEPT = 10_000


class TradeRefused(Exception):
    """The account refused an order (unknown ticket, trading disabled, no price): the command
    is acknowledged as ``rejected`` with this message."""


@dataclass
class Position:
    """An open position. ``comment`` is the idempotency key of the command that opened it
    (None for a position opened by hand)."""

    ticket: str
    symbol: str
    side: Side
    volume: float
    open_price: float
    opened_at_ms: int
    sl: float | None = None
    tp: float | None = None
    comment: str | None = None

    def profit(self, price: float) -> float:
        """Profit at ``price``, for a contract size of 1."""
        direction = 1.0 if self.side == "buy" else -1.0
        return (price - self.open_price) * self.volume * direction


@dataclass(frozen=True)
class ClosedTrade:
    ticket: str
    symbol: str
    side: Side
    volume: float
    open_price: float
    close_price: float
    closed_at_ms: int
    profit: float
    deal: str | None = None  # the closing deal's id (numbered as the tickets are)
    commission: float = 0.0  # the closing deal's (negative: charged)


@dataclass(frozen=True)
class Fill:
    """What executing one command did, as its ack reports it (``ticket``, ``price`` and
    ``volume`` where they apply)."""

    kind: str
    ticket: str | None = None
    price: float | None = None
    volume: float | None = None
    commission: float | None = None  # negative: charged


class SimulatedAccount:
    """A simulated broker account (see the module doc). Every mutating method saves the file
    before it returns, so a fill is durable before the agent acknowledges it."""

    def __init__(
        self,
        *,
        balance: float = 10_000.0,
        currency: str = "USD",
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
        commission_per_lot: float = 0.0,
    ) -> None:
        """``commission_per_lot``: what each deal (an open, a close, a part of one) is charged
        per unit of volume; reported in acks and syncs as a negative commission."""
        self.balance = float(balance)
        self.commission_per_lot = float(commission_per_lot)
        self.currency = currency
        self.trading_allowed = True
        self.positions: dict[str, Position] = {}
        self.closed: list[ClosedTrade] = []
        self._fills: dict[str, Fill] = {}
        self._next_ticket = FIRST_TICKET
        self._path = path
        self._clock = clock

    # ------------------------------------------------------------------ persistence

    @classmethod
    def open_file(
        cls,
        path: Path,
        *,
        balance: float = 10_000.0,
        currency: str = "USD",
        clock: Callable[[], float] = time.time,
        commission_per_lot: float = 0.0,
    ) -> SimulatedAccount:
        """The account kept in ``path``; a new one (``balance``, ``currency``) when the file
        does not exist yet."""
        account = cls(
            balance=balance,
            currency=currency,
            path=path,
            clock=clock,
            commission_per_lot=commission_per_lot,
        )
        if path.exists():
            account._restore(json.loads(path.read_text()))
        else:
            account.save()
        return account

    @property
    def path(self) -> Path | None:
        return self._path

    def save(self) -> None:
        """Write the account to its file (if any): a temporary file renamed over the old one,
        so a crash mid-write leaves the previous state, never half of one."""
        if self._path is None:
            return
        state = {
            "version": FORMAT_VERSION,
            "currency": self.currency,
            "balance": self.balance,
            "trading_allowed": self.trading_allowed,
            "next_ticket": self._next_ticket,
            "positions": [asdict(p) for p in self.positions.values()],
            "closed": [asdict(t) for t in self.closed],
            "fills": {key: asdict(fill) for key, fill in self._fills.items()},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("version") != FORMAT_VERSION:
            raise ValueError(f"{self._path}: unknown account file version {state.get('version')}")
        self.currency = state["currency"]
        self.balance = float(state["balance"])
        self.trading_allowed = bool(state["trading_allowed"])
        self._next_ticket = int(state["next_ticket"])
        self.positions = {p["ticket"]: Position(**p) for p in state["positions"]}
        self.closed = [ClosedTrade(**t) for t in state["closed"]]
        self._fills = {key: Fill(**fill) for key, fill in state["fills"].items()}

    # ------------------------------------------------------------------ reading

    def fill_for(self, key: str) -> Fill | None:
        """The fill recorded for idempotency key ``key``, if a command with it was executed."""
        return self._fills.get(key)

    def equity(self, price_of: PriceSource) -> float:
        """Balance plus the open positions' profit (a position without a price counts at its
        open price)."""
        floating = 0.0
        for position in self.positions.values():
            price = price_of(position.symbol)
            floating += position.profit(position.open_price if price is None else price)
        return self.balance + floating

    def closed_since(self, since_ms: int) -> list[ClosedTrade]:
        return [t for t in self.closed if t.closed_at_ms >= since_ms]

    # ------------------------------------------------------------------ trading

    def set_trading_allowed(self, allowed: bool) -> None:
        """The terminal's "algo trading" switch: while off, every order is refused."""
        self.trading_allowed = allowed
        self.save()

    def open(
        self,
        symbol: str,
        side: Side,
        volume: float,
        price: float | None,
        *,
        sl: float | None = None,
        tp: float | None = None,
        key: str | None = None,
    ) -> Fill:
        """Open a position at ``price`` (None: there is no price, refused); ``key`` None is a
        position opened by hand."""
        self._require_trading()
        if price is None:
            raise TradeRefused(f"no price for {symbol}")
        if volume <= 0:
            raise TradeRefused(f"invalid volume {volume}")
        ticket = str(self._next_ticket)
        self._next_ticket += 1
        self.positions[ticket] = Position(
            ticket=ticket,
            symbol=symbol,
            side=side,
            volume=float(volume),
            open_price=float(price),
            opened_at_ms=self._now_ms(),
            sl=sl,
            tp=tp,
            comment=key,
        )
        commission = self._charge(volume) or None  # none charged: none reported
        return self._done(key, Fill("open", ticket, float(price), float(volume), commission))

    def modify(
        self,
        ticket: str,
        *,
        sl: float | None = None,
        tp: float | None = None,
        key: str | None = None,
    ) -> Fill:
        """Move a position's stop loss and/or take profit; the one left out (None) is kept."""
        self._require_trading()
        position = self._position(ticket)
        if sl is not None:
            position.sl = sl
        if tp is not None:
            position.tp = tp
        return self._done(key, Fill("modify", ticket, None, position.volume))

    def close(self, ticket: str, price_of: PriceSource, *, key: str | None = None) -> Fill:
        """Close a position at its symbol's price. A ticket already closed answers its closing
        trade (the order's intent holds), as an MT5 agent acks the closing deal."""
        self._require_trading()
        earlier = next((t for t in reversed(self.closed) if t.ticket == ticket), None)
        if earlier is not None and ticket not in self.positions:
            return self._done(key, Fill("close", ticket, earlier.close_price, earlier.volume))
        position = self._position(ticket)
        price = self._price(price_of, position.symbol)
        deal = self._settle(position, price)
        fill = Fill("close", ticket, price, deal.volume, deal.commission or None)
        return self._done(key, fill)

    def close_part(self, ticket: str, volume: float, price: float) -> None:
        """Close ``volume`` of a position by hand (outside any command), as a trader would on
        the terminal, or a target hit for part of it: a closing deal of its own; the position
        keeps the rest (all of it closed when ``volume`` is as much as it holds)."""
        position = self._position(ticket)
        if not volume > 0:
            raise TradeRefused(f"invalid volume {volume}")
        self._settle(position, float(price), min(float(volume), position.volume))
        self.save()

    def close_all(self, price_of: PriceSource, *, key: str | None = None) -> Fill:
        """Close every open position; refused as a whole when a symbol has no price."""
        self._require_trading()
        prices = {p.symbol: self._price(price_of, p.symbol) for p in self.positions.values()}
        deals = [self._settle(p, prices[p.symbol]) for p in list(self.positions.values())]
        volume, commission = sum(d.volume for d in deals), sum(d.commission for d in deals)
        return self._done(key, Fill("close_all", None, None, volume, commission or None))

    def forget(self, ticket: str) -> None:
        """Drop a position without a closing trade: a terminal that lost track of it."""
        del self.positions[ticket]
        self.save()

    def edit(self, ticket: str, **changes: Any) -> None:
        """Change a position's fields by hand (outside any command), as a trader dragging a
        stop loss on the chart would."""
        self.positions[ticket] = replace(self.positions[ticket], **changes)
        self.save()

    # ------------------------------------------------------------------ internals

    def _require_trading(self) -> None:
        if not self.trading_allowed:
            raise TradeRefused("trading disabled")

    def _position(self, ticket: str) -> Position:
        position = self.positions.get(ticket)
        if position is None:
            raise TradeRefused(f"unknown ticket {ticket}")
        return position

    @staticmethod
    def _price(price_of: PriceSource, symbol: str) -> float:
        price = price_of(symbol)
        if price is None:
            raise TradeRefused(f"no price for {symbol}")
        return float(price)

    def _settle(self, position: Position, price: float, volume: float | None = None) -> ClosedTrade:
        """A closing deal of ``volume`` of ``position`` (None: all of it) at ``price``."""
        volume = position.volume if volume is None else volume
        profit = replace(position, volume=volume).profit(price)
        if volume >= position.volume:
            del self.positions[position.ticket]
        else:
            self.positions[position.ticket] = replace(position, volume=position.volume - volume)
        self.balance += profit
        deal = ClosedTrade(
            ticket=position.ticket,
            symbol=position.symbol,
            side=position.side,
            volume=volume,
            open_price=position.open_price,
            close_price=price,
            closed_at_ms=self._now_ms(),
            profit=profit,
            deal=str(self._next_ticket),
            commission=self._charge(volume),
        )
        self.closed.append(deal)
        self._next_ticket += 1
        del self.closed[:-CLOSED_KEPT]
        return deal

    def _charge(self, volume: float) -> float:
        """The commission of a deal of ``volume``, taken from the balance (negative)."""
        commission = -self.commission_per_lot * volume
        self.balance += commission
        return commission + 0.0  # not -0.0

    def _done(self, key: str | None, fill: Fill) -> Fill:
        if key is not None:
            self._fills[key] = fill
            while len(self._fills) > FILLS_KEPT:
                del self._fills[next(iter(self._fills))]
        self.save()
        return fill

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
