"""The terminal account of an agent-mode session, folded from its orders, against a cash-flow
ledger of the same executions computed the plain way: every executed fill moves cash by its
signed notional, and the position is the sum of the signed volumes."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forward_test_service.terminal import fold

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
        volume = draw(st.sampled_from([None, 1.0, 2.0, 0.5]))
        price = draw(st.floats(50, 150))
        seq = len(rows)
        closed_by_terminal = entry_state == "executed" and draw(st.booleans()) and trade % 3 == 0
        rows.append(
            order(
                seq,
                "entry",
                "buy" if long else "sell",
                agent_state=entry_state,
                agent_ticket=f"T{seq}" if draw(st.booleans()) else None,
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


def cash_flow(rows: list[SimpleNamespace]) -> tuple[float, float, int]:
    """(position, cash, closed) by walking the fills as a broker's statement would: the
    session's exit first, then what the terminal closed by itself of what was left."""
    position, cash, closed = 0.0, CAPITAL, 0
    held, sign, stopped = 0.0, 0.0, None  # the last executed entry: what it still holds

    def terminal() -> None:
        nonlocal position, cash, closed, held
        if stopped is not None and held > 0.0:
            position -= sign * held
            cash += sign * held * stopped
            held, closed = 0.0, closed + 1

    for row in rows:
        if row.reason == "entry":
            terminal()
            held, stopped = 0.0, None
            if row.agent_state != "executed":
                continue
            sign = 1.0 if row.side == "buy" else -1.0
            held = row.quantity if row.agent_volume is None else row.agent_volume
            price = row.price if row.agent_price is None else row.agent_price
            position += sign * held
            cash -= sign * held * price
            stopped = row.terminal_close_price
        elif row.agent_state == "executed" and held > 0.0:
            volume = held if row.agent_volume is None else min(row.agent_volume, held)
            position -= sign * volume
            cash += sign * volume * row.agent_price
            held, closed = held - volume, closed + 1
    terminal()
    return position, cash, closed


@settings(max_examples=300, deadline=None)
@given(sessions(), st.floats(50, 150))
def test_the_folded_account_is_the_cash_flow_of_the_executions(
    rows: list[SimpleNamespace], mark: float
) -> None:
    account = fold(CAPITAL, rows)
    position, cash, closed = cash_flow(rows)
    assert account.position == pytest.approx(position, abs=1e-9)
    assert account.cash == pytest.approx(cash, rel=1e-12, abs=1e-6)
    assert account.equity(mark) == pytest.approx(cash + position * mark, rel=1e-12, abs=1e-6)
    assert len(account.trades) == closed
    assert account.realized == pytest.approx(math.fsum(t.pnl for t in account.trades))
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
