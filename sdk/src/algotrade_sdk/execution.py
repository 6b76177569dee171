"""`CommandExecutor`: a leased command carried out on the simulated account, and its ack.

A command whose idempotency key the account already filled is not executed again: it is
answered from the recorded fill. That is the case of a command delivered again because its ack
was lost (the agent died, or the connection dropped, between executing and acknowledging).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from algotrade_sdk.account import Fill, PriceSource, SimulatedAccount, TradeRefused
from algotrade_sdk.protocol import Command, CommandAck

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Execution:
    """The ack to send, and whether it repeats an earlier fill (nothing was executed now)."""

    ack: CommandAck
    replayed: bool = False


class CommandExecutor:
    """Executes commands on ``account`` at prices from ``prices``."""

    def __init__(self, account: SimulatedAccount, prices: PriceSource) -> None:
        self.account = account
        self._prices = prices

    def execute(self, command: Command) -> Execution:
        key = command["idempotency_key"]
        recorded = self.account.fill_for(key)
        if recorded is not None:
            logger.info(
                "command %s (%s, key %s) delivered again (attempt %d): acking its recorded fill",
                command["id"],
                command["kind"],
                key,
                command["attempts"],
            )
            return Execution(executed(recorded), replayed=True)
        try:
            fill = self._carry_out(command, key)
        except TradeRefused as refused:
            logger.warning("command %s (%s) rejected: %s", command["id"], command["kind"], refused)
            return Execution({"outcome": "rejected", "error": str(refused)})
        except (KeyError, TypeError, ValueError) as exc:  # a command this agent cannot read
            logger.error("command %s (%s) failed: %r", command["id"], command["kind"], exc)
            return Execution({"outcome": "failed", "error": f"cannot execute: {exc!r}"[:1000]})
        logger.info("command %s (%s) executed: %s", command["id"], command["kind"], fill)
        return Execution(executed(fill))

    def _carry_out(self, command: Command, key: str) -> Fill:
        account = self.account
        kind = command["kind"]
        if kind == "open":
            symbol = _required(command.get("symbol"), "symbol")
            return account.open(
                symbol,
                _required(command.get("side"), "side"),
                _required(command.get("volume"), "volume"),
                self._prices(symbol),
                sl=command.get("sl"),
                tp=command.get("tp"),
                key=key,
            )
        if kind == "modify":
            return account.modify(
                _required(command.get("ticket"), "ticket"),
                sl=command.get("sl"),
                tp=command.get("tp"),
                key=key,
            )
        if kind == "close":
            return account.close(_required(command.get("ticket"), "ticket"), self._prices, key=key)
        if kind == "close_all":
            return account.close_all(self._prices, key=key)
        if kind == "info":
            logger.warning("message from the platform: %s", command.get("message"))
            return Fill("info")
        raise ValueError(f"unknown command kind {kind!r}")


def executed(fill: Fill) -> CommandAck:
    ack: CommandAck = {"outcome": "executed"}
    if fill.ticket is not None:
        ack["ticket"] = fill.ticket
    if fill.price is not None:
        ack["price"] = fill.price
    if fill.volume is not None:
        ack["volume"] = fill.volume
    if fill.commission is not None:
        ack["commission"] = fill.commission
    return ack


def _required(value: T | None, name: str) -> T:
    if value is None:
        raise ValueError(f"the command has no {name}")
    return value
