"""``algotrade session start | ls | watch | terminal | stop``."""

from __future__ import annotations

from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import (
    JSON_OPTION,
    console,
    number,
    print_json,
    problems,
    rows_table,
    show,
)

COLUMNS = ("id", "status", "symbol", "timeframe", "bars_applied", "position", "equity")


def start(
    strategy_id: str = typer.Argument(..., help="a stored strategy's id", show_default=False),
    symbol: str = typer.Option(..., help="the symbol whose live bars it trades on"),
    timeframe: str = typer.Option(..., help="1m, 5m, 1h, ..."),
    capital: float = typer.Option(10_000.0, help="paper capital"),
    version: int = typer.Option(None, help="default: the strategy's current version"),
    fee_bps: float = typer.Option(0.0, help="fee in basis points of each fill"),
    slippage_bps: float = typer.Option(0.0, help="slippage in basis points"),
    agent: str = typer.Option(
        None, help="agent mode: one of your agents' id; each order also goes to it"
    ),
    agent_symbol: str = typer.Option(
        None, help="agent mode: the symbol's name at the agent's broker (default: --symbol)"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start a forward session of a stored strategy on a symbol's live bars: on paper, or
    through one of your execution agents (--agent)."""
    body: dict[str, Any] = {
        "strategy_id": strategy_id,
        "symbol": symbol,
        "timeframe": timeframe,
        "capital": capital,
        "config": {"fee_bps": fee_bps, "slippage_bps": slippage_bps},
    }
    if version is not None:
        body["version"] = version
    if agent is not None:
        body.update(mode="agent", agent_id=agent, agent_symbol=agent_symbol)
    with problems(), context.client() as client:
        session = client.sessions.start(body)
    show(session, as_json, lambda s: rows_table([s], COLUMNS, title="session started"))


def list_sessions(
    status: str = typer.Option(None, help="running, paused, stopped or failed"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Your sessions, newest first."""
    with problems(), context.client() as client:
        rows = client.sessions.list(status=status)
    show(rows, as_json, lambda r: rows_table(r, COLUMNS))


def stop(
    session_id: str = typer.Argument(..., show_default=False), as_json: bool = JSON_OPTION
) -> None:
    """Stop a session (its history stays)."""
    with problems(), context.client() as client:
        session = client.sessions.stop(session_id)
    show(session, as_json, lambda s: rows_table([s], COLUMNS, title="session stopped"))


TERMINAL_COLUMNS = ("position", "cash", "equity", "realized_pnl", "open_tickets", "trades")
TRADE_COLUMNS = ("ticket", "side", "volume", "entry_price", "exit_price", "pnl", "closed_by")


def terminal(
    session_id: str = typer.Argument(..., show_default=False), as_json: bool = JSON_OPTION
) -> None:
    """Agent mode: the account as the terminal executed the orders, beside the model's."""
    with problems(), context.client() as client:
        view = client.sessions.terminal(session_id)

    def render(v: dict[str, Any]) -> Table:
        table = Table(title=f"session {v['session_id']}: terminal and model")
        table.add_column("account")
        for column in TERMINAL_COLUMNS:
            table.add_column(column)
        table.add_row("terminal", *(number(v["account"].get(c)) for c in TERMINAL_COLUMNS))
        table.add_row("model", *(number(v["model"].get(c)) for c in TERMINAL_COLUMNS))
        return table

    show(view, as_json, render)
    if not as_json and view["trades"]:
        console.print(rows_table(view["trades"], TRADE_COLUMNS, title="terminal trades"))


class Board:
    """What `watch` shows: the session's state, updated by each event."""

    def __init__(self, session: dict[str, Any]) -> None:
        self.state = dict(session)
        self.trades = 0
        self.fills = 0
        self.bars_seen = 0

    def apply(self, message: dict[str, Any]) -> None:
        if message.get("type") == "snapshot":
            self.state.update(message.get("data") or {})
            return
        event = message.get("event") or {}
        payload = event.get("payload") or {}
        kind = event.get("type")
        if kind == "session.equity":
            self.bars_seen += max(len(payload.get("points") or []), 1)
            for key in ("equity", "cash", "position", "bars_applied"):
                self.state[key] = payload.get(key, self.state.get(key))
        elif kind == "trade.closed":
            self.trades += 1
        elif kind == "order.filled":
            self.fills += 1
        elif kind in ("session.stopped", "session.failed", "session.paused", "session.resumed"):
            self.state["status"] = payload.get("status") or kind.removeprefix("session.")

    def table(self) -> Table:
        table = Table(title=f"session {self.state.get('id')} ({self.state.get('status')})")
        table.add_column("")
        table.add_column("", justify="right")
        for key in ("symbol", "timeframe", "bars_applied", "position", "cash", "equity"):
            table.add_row(key, number(self.state.get(key)))
        table.add_row("fills seen", number(self.fills))
        table.add_row("trades closed seen", number(self.trades))
        return table


def watch(
    session_id: str = typer.Argument(..., show_default=False),
    bars: int = typer.Option(0, min=0, help="stop after this many bars (0: until Ctrl-C)"),
    as_json: bool = typer.Option(False, "--json", help="print each message as a JSON line"),
) -> None:
    """A live table of the session, updated over the WebSocket as bars are applied."""
    with problems(), context.client() as client:
        board = Board(client.sessions.get(session_id))
        messages = client.subscribe([f"session:{session_id}"])
        try:
            with Live(board.table(), console=console, transient=False, auto_refresh=False) as live:
                if as_json:
                    live.stop()
                for message in messages:
                    board.apply(message)
                    if as_json:
                        print_json(message)
                    else:
                        live.update(board.table(), refresh=True)
                    if bars and board.bars_seen >= bars:
                        break
                    if board.state.get("status") in ("stopped", "failed"):
                        break
        except KeyboardInterrupt:
            pass
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()
