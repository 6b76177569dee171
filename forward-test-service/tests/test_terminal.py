"""The terminal account of an agent-mode session, folded from its orders, against a cash-flow
ledger of the same executions computed the plain way: every executed fill moves cash by its
signed notional, and the position is the sum of the signed volumes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward_test_service.terminal import fold, settled

CAPITAL = 10_000.0
OUTCOMES = ("executed", "executed", "executed", "rejected", "failed", "expired", "queued")


def order(seq: int, reason: str, side: str, **agent: Any) -> SimpleNamespace:
    values = {
        "agent_state": None,
        "agent_ticket": None,
        "agent_price": None,
        "agent_volume": None,
        "terminal_close_price": None,
        "terminal_closed_ts": None,
        "terminal_close_reported": False,
        **agent,
    }
    return SimpleNamespace(
        seq=seq, ts=1_000 * seq, reason=reason, side=side, quantity=2.0, price=100.0, **values
    )


@st.composite
def sessions(draw: st.DrawFn) -> list[SimpleNamespace]:
    """A model's alternating entries and exits, each with what the terminal did."""
    rows: list[SimpleNamespace] = []
    for trade in range(draw(st.integers(0, 12))):
        long = draw(st.booleans())
        entry_state = draw(st.sampled_from(OUTCOMES))
        volume = draw(st.sampled_from([None, 1.0, 2.0, 0.5, 0.0]))
        price = draw(st.floats(50, 150))
        seq = len(rows)
        closed_by_terminal = entry_state == "executed" and draw(st.booleans()) and trade % 3 == 0
        rows.append(
            order(
                seq,
                "entry",
                "buy" if long else "sell",
                agent_state=entry_state,
                agent_ticket=draw(st.sampled_from([None, f"T{seq}", "P1", "P2"])),
                agent_price=price if entry_state == "executed" else None,
                agent_volume=volume if entry_state == "executed" else None,
                terminal_close_price=draw(st.floats(50, 150)) if closed_by_terminal else None,
            )
        )
        if draw(st.booleans()):  # the model exits (else the position is still open)
            exit_state = "executed" if entry_state == "executed" else "skipped"
            exit_state = draw(st.sampled_from([exit_state, "rejected", "queued"]))
            rows.append(
                order(
                    seq + 1,
                    "signal",
                    "sell" if long else "buy",
                    agent_state=exit_state,
                    agent_price=draw(st.floats(50, 150)) if exit_state == "executed" else None,
                    agent_volume=draw(st.sampled_from([None, 0.25, 5.0]))
                    if exit_state == "executed"
                    else None,
                )
            )
    return rows


def cash_flow(rows: list[SimpleNamespace]) -> tuple[float, float, float, int]:
    """(position, cash, realized P&L, closes) by walking the fills as a broker's statement
    would: the session's exit first, then what the terminal closed by itself of what was
    left."""
    position, cash, realized, closed = 0.0, CAPITAL, 0.0, 0
    held, sign, opened, stopped = 0.0, 0.0, 0.0, None  # the last executed entry

    def close(volume: float, price: float) -> None:
        nonlocal position, cash, realized, closed, held
        position -= sign * volume
        cash += sign * volume * price
        realized += sign * volume * (price - opened)
        held, closed = held - volume, closed + 1

    for row in rows:
        if row.reason == "entry":
            if stopped is not None and held > 0.0:
                close(held, stopped)
            held, stopped = 0.0, None
            if row.agent_state != "executed":
                continue
            sign = 1.0 if row.side == "buy" else -1.0
            held = row.quantity if row.agent_volume is None else row.agent_volume
            opened = row.price if row.agent_price is None else row.agent_price
            position += sign * held
            cash -= sign * held * opened
            stopped = row.terminal_close_price
        elif row.agent_state == "executed" and held > 0.0:
            volume = held if row.agent_volume is None else min(row.agent_volume, held)
            close(volume, row.agent_price)
    if stopped is not None and held > 0.0:
        close(held, stopped)
    return position, cash, realized, closed


@settings(max_examples=300, deadline=None)
@given(sessions(), st.floats(50, 150))
def test_the_folded_account_is_the_cash_flow_of_the_executions(
    rows: list[SimpleNamespace], mark: float
) -> None:
    account = fold(CAPITAL, rows)
    position, cash, realized, closed = cash_flow(rows)
    assert account.position == pytest.approx(position, abs=1e-9)
    assert account.cash == pytest.approx(cash, rel=1e-12, abs=1e-6)
    assert account.equity(mark) == pytest.approx(cash + position * mark, rel=1e-12, abs=1e-6)
    assert len(account.trades) == closed
    assert account.realized == pytest.approx(realized, rel=1e-12, abs=1e-6)
    assert all(t.volume > 0.0 for t in account.tickets.values())
    ended = sum(r.agent_state not in (None, "queued") for r in rows)
    assert account.executed + account.refused == ended
    assert account.pending == sum(r.agent_state == "queued" for r in rows)


def test_slippage_a_refusal_and_a_terminal_close() -> None:
    rows = [
        # long 2 at 101 (the model said 100), closed at 111 by the session's exit
        order(0, "entry", "buy", agent_state="executed", agent_ticket="A", agent_price=101.0),
        order(1, "signal", "sell", agent_state="executed", agent_price=111.0, agent_ticket="D9"),
        # the next entry is refused: its exit is skipped and nothing moves
        order(2, "entry", "sell", agent_state="rejected"),
        order(3, "signal", "buy", agent_state="skipped"),
        # short 1 at 120, stopped out by the terminal at 125 before the model's exit
        order(
            4,
            "entry",
            "sell",
            agent_state="executed",
            agent_ticket="B",
            agent_price=120.0,
            agent_volume=1.0,
            terminal_close_price=125.0,
            terminal_closed_ts=4_500,
        ),
        order(5, "stop_loss", "buy", agent_state="rejected"),
        # long 2 still open, then marked
        order(6, "entry", "buy", agent_state="executed", agent_ticket="C", agent_price=90.0),
    ]
    account = fold(CAPITAL, rows)
    assert [(t.ticket, t.pnl, t.closed_by) for t in account.trades] == [
        ("A", 20.0, "order"),
        ("B", -5.0, "terminal"),
    ]
    assert account.trades[1].exit_ts == 4_500 and account.trades[1].exit_seq is None
    assert account.position == 2.0 and account.realized == 15.0
    assert account.equity(95.0) == CAPITAL + 15.0 + 2 * (95.0 - 90.0)
    assert account.equity(None) == CAPITAL + 15.0
    assert (account.executed, account.refused, account.pending) == (4, 3, 0)


def test_a_terminal_close_is_reported_once_when_the_sessions_own_exit_cannot_close_it() -> None:
    """`settled`: what one session.terminal carries."""
    entry = order(0, "entry", "buy", agent_state="executed", agent_ticket="A", agent_price=100.0)
    entry.terminal_close_price, entry.terminal_closed_ts = 95.0, 500
    waiting = order(1, "signal", "sell", agent_state="queued")
    # The sync saw the close while the session's own close was on its way: not final yet.
    rows = [entry, waiting]
    assert settled(fold(CAPITAL, rows), rows, seq=None) == []
    # Rejected (the position was gone): the terminal's close is the one, carried by that ack.
    refused = order(1, "signal", "sell", agent_state="rejected")
    rows = [entry, refused]
    (trade,) = settled(fold(CAPITAL, rows), rows, seq=1)
    assert (trade.closed_by, trade.pnl, trade.exit_ts) == ("terminal", -10.0, 500)
    entry.terminal_close_reported = True
    assert settled(fold(CAPITAL, rows), rows, seq=None) == []
    # Executed: the session's close is the one, at its own ack, and the terminal's is moot.
    entry.terminal_close_reported = False
    done = order(1, "signal", "sell", agent_state="executed", agent_price=99.0)
    rows = [entry, done]
    (trade,) = settled(fold(CAPITAL, rows), rows, seq=1)
    assert (trade.closed_by, trade.exit_seq, trade.pnl) == ("order", 1, -2.0)
    assert settled(fold(CAPITAL, rows), rows, seq=None) == []
    # No exit yet (the model still holds): the sync's close is final at once.
    rows = [entry]
    assert [t.closed_by for t in settled(fold(CAPITAL, rows), rows, seq=None)] == ["terminal"]


def test_two_positions_named_alike_are_two_positions() -> None:
    """A netting account's position id (or a ticket number used again) names both entries."""
    rows = [
        order(0, "entry", "buy", agent_state="executed", agent_ticket="P1", agent_price=100.0),
        order(1, "signal", "sell", agent_state="rejected"),
        order(2, "entry", "buy", agent_state="executed", agent_ticket="P1", agent_price=110.0),
    ]
    account = fold(CAPITAL, rows)
    assert account.position == 4.0
    assert account.cash == CAPITAL - 2 * 100.0 - 2 * 110.0
    assert account.equity(110.0) == CAPITAL + 2 * 10.0
