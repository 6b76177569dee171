"""The terminal account of an agent-mode session, folded from its orders and the terminal's own
deals, against a cash-flow ledger of the same executions computed the plain way: every executed
fill moves cash by its signed notional and its costs, and the position is the sum of the signed
volumes."""

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
        "agent_commission": None,
        **agent,
    }
    return SimpleNamespace(
        seq=seq, ts=1_000 * seq, reason=reason, side=side, quantity=2.0, price=100.0, **values
    )


def deal(entry_seq: int, name: str, volume: float | None, price: float, ts: int, **kw: Any) -> Any:
    values = {"commission": 0.0, "swap": 0.0, "reported": False, **kw}
    return SimpleNamespace(
        entry_seq=entry_seq, deal=name, volume=volume, price=price, ts=ts, **values
    )


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[SimpleNamespace], list[SimpleNamespace]]:
    """A model's alternating entries and exits, each with what the terminal did, and the deals
    by which the terminal closed positions (or parts of them) by itself."""
    rows: list[SimpleNamespace] = []
    deals: list[SimpleNamespace] = []
    money = st.sampled_from([None, 0.0, -1.5, -0.25, 0.75])
    for trade in range(draw(st.integers(0, 12))):
        long = draw(st.booleans())
        entry_state = draw(st.sampled_from(OUTCOMES))
        volume = draw(st.sampled_from([None, 1.0, 2.0, 0.5, 0.0]))
        price = draw(st.floats(50, 150))
        seq = len(rows)
        rows.append(
            order(
                seq,
                "entry",
                "buy" if long else "sell",
                agent_state=entry_state,
                agent_ticket=draw(st.sampled_from([None, f"T{seq}", "P1", "P2"])),
                agent_price=price if entry_state == "executed" else None,
                agent_volume=volume if entry_state == "executed" else None,
                agent_commission=draw(money) if entry_state == "executed" else None,
            )
        )
        if entry_state == "executed" and trade % 2 == 0:
            # Partial and whole closes (None: the rest), in any time order, some listed twice.
            for k in range(draw(st.integers(0, 3))):
                deals.append(
                    deal(
                        seq,
                        f"D{seq}.{k}",
                        draw(st.sampled_from([None, 0.25, 0.5, 1.0, 3.0])),
                        draw(st.floats(50, 150)),
                        draw(st.integers(0, 50_000)),
                        commission=draw(st.sampled_from([0.0, -0.5])),
                        swap=draw(st.sampled_from([0.0, 0.25, -0.125])),
                    )
                )
        if draw(st.booleans()):  # the model exits (else the position is still open)
            exit_state = "executed" if entry_state == "executed" else "skipped"
            exit_state = draw(st.sampled_from([exit_state, "rejected", "queued"]))
            done = exit_state == "executed"
            rows.append(
                order(
                    seq + 1,
                    "signal",
                    "sell" if long else "buy",
                    agent_state=exit_state,
                    agent_price=draw(st.floats(50, 150)) if done else None,
                    agent_volume=draw(st.sampled_from([None, 0.25, 5.0])) if done else None,
                    agent_commission=draw(money) if done else None,
                )
            )
    return rows, deals


def cash_flow(
    rows: list[SimpleNamespace], deals: list[SimpleNamespace]
) -> tuple[float, float, float, float, int]:
    """(position, cash, realized P&L, costs, closes) by walking the fills as a broker's
    statement would: the session's exit first, then what the terminal closed by itself of what
    was left, deal by deal in time order (a deal that finds nothing left is the session's own
    close, listed by the sync: its swap counts, its commission if the exit's ack had none)."""
    position, cash, realized, costs, closed = 0.0, CAPITAL, 0.0, 0.0, 0
    held, sign, opened, charged = 0.0, 0.0, 0.0, False  # the last executed entry
    mine: list[SimpleNamespace] = []

    def close(volume: float, price: float) -> None:
        nonlocal position, cash, realized, closed, held
        volume = min(volume, held)
        position -= sign * volume
        cash += sign * volume * price
        realized += sign * volume * (price - opened)
        held, closed = held - volume, closed + 1

    def charge(amount: float) -> None:
        nonlocal cash, costs
        cash, costs = cash + amount, costs + amount

    def terminal_closes() -> None:
        for d in sorted(mine, key=lambda d: (d.ts, d.deal)):
            if held <= 0.0:
                charge(d.swap + (0.0 if charged else d.commission))
                continue
            charge(d.commission + d.swap)
            close(held if d.volume is None else d.volume, d.price)

    for row in rows:
        if row.agent_state == "executed":
            charge(row.agent_commission or 0.0)
        if row.reason == "entry":
            terminal_closes()
            held, mine, charged = 0.0, [], False
            if row.agent_state != "executed":
                continue
            sign = 1.0 if row.side == "buy" else -1.0
            held = row.quantity if row.agent_volume is None else row.agent_volume
            opened = row.price if row.agent_price is None else row.agent_price
            position += sign * held
            cash -= sign * held * opened
            if held > 0.0:
                mine = [d for d in deals if d.entry_seq == row.seq]
        elif row.agent_state == "executed" and held > 0.0:
            charged = row.agent_commission is not None
            close(held if row.agent_volume is None else row.agent_volume, row.agent_price)
    terminal_closes()
    return position, cash, realized, costs, closed


@settings(max_examples=300, deadline=None)
@given(sessions(), st.floats(50, 150))
def test_the_folded_account_is_the_cash_flow_of_the_executions(
    drawn: tuple[list[SimpleNamespace], list[SimpleNamespace]], mark: float
) -> None:
    rows, deals = drawn
    account = fold(CAPITAL, rows, deals)
    position, cash, realized, costs, closed = cash_flow(rows, deals)
    assert account.position == pytest.approx(position, abs=1e-9)
    assert account.cash == pytest.approx(cash, rel=1e-12, abs=1e-6)
    assert account.costs == pytest.approx(costs, rel=1e-12, abs=1e-9)
    assert account.equity(mark) == pytest.approx(cash + position * mark, rel=1e-12, abs=1e-6)
    assert len(account.trades) == closed
    assert account.realized == pytest.approx(realized, rel=1e-12, abs=1e-6)
    assert account.realized == pytest.approx(sum(t.pnl for t in account.trades), abs=1e-6)
    assert all(t.volume > 0.0 for t in account.tickets.values())
    assert all(t.volume > 0.0 for t in account.trades)
    ended = sum(r.agent_state not in (None, "queued") for r in rows)
    assert account.executed + account.refused == ended
    assert account.pending == sum(r.agent_state == "queued" for r in rows)
    # Nothing closes more than its entry opened.
    for entry in (r for r in rows if r.reason == "entry" and r.agent_state == "executed"):
        opened = entry.quantity if entry.agent_volume is None else entry.agent_volume
        left = sum(t.volume for t in account.tickets.values() if t.entry_seq == entry.seq)
        out = sum(t.volume for t in account.trades if t.entry_seq == entry.seq)
        assert left + out == pytest.approx(opened if opened > 0 else 0.0, abs=1e-9)


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
        ),
        order(5, "stop_loss", "buy", agent_state="rejected"),
        # long 2 still open, then marked
        order(6, "entry", "buy", agent_state="executed", agent_ticket="C", agent_price=90.0),
    ]
    account = fold(CAPITAL, rows, [deal(4, "S1", 1.0, 125.0, 4_500)])
    assert [(t.ticket, t.pnl, t.closed_by) for t in account.trades] == [
        ("A", 20.0, "order"),
        ("B", -5.0, "terminal"),
    ]
    assert account.trades[1].exit_ts == 4_500 and account.trades[1].exit_seq is None
    assert account.trades[1].deal == "S1"
    assert account.position == 2.0 and account.realized == 15.0
    assert account.equity(95.0) == CAPITAL + 15.0 + 2 * (95.0 - 90.0)
    assert account.equity(None) == CAPITAL + 15.0
    assert (account.executed, account.refused, account.pending) == (4, 3, 0)


def test_a_partial_close_by_the_terminal_then_the_sessions_exit_with_their_costs() -> None:
    """Long 2 at 100 (commission -2). The trader closes 0.5 by hand at 104 (deal X1,
    commission -0.5, swap -0.1); the session's exit closes the other 1.5 at 110 (commission
    -1.5). The sync lists both deals, the session's (X2) too: it finds nothing left."""
    rows = [
        order(
            0,
            "entry",
            "buy",
            agent_state="executed",
            agent_ticket="A",
            agent_price=100.0,
            agent_commission=-2.0,
        ),
        order(
            1,
            "signal",
            "sell",
            agent_state="executed",
            agent_price=110.0,
            agent_volume=1.5,
            agent_commission=-1.5,
        ),
    ]
    partial = deal(0, "X1", 0.5, 104.0, 10, commission=-0.5, swap=-0.1)
    own = deal(0, "X2", 1.5, 110.0, 20, commission=-1.5, swap=-0.3)
    account = fold(CAPITAL, rows, [own, partial])
    assert [(t.closed_by, t.volume, t.exit_price, t.deal) for t in account.trades] == [
        ("order", 1.5, 110.0, None),
        ("terminal", 0.5, 104.0, "X1"),
    ]
    exit_, by_hand = account.trades
    assert (exit_.pnl, by_hand.pnl) == (15.0, 2.0)
    # The opening commission is shared by volume; the exit's commission counts once (its ack
    # carried it), the swap of the session's own close counts (only the sync knew it).
    assert exit_.costs == pytest.approx(-1.5 + -2.0 * 0.75)
    assert by_hand.costs == pytest.approx(-0.6 + -2.0 * 0.25)
    assert account.costs == pytest.approx(-2.0 - 1.5 - 0.6 - 0.3)
    assert account.position == 0.0 and account.tickets == {}
    assert account.equity(None) == pytest.approx(CAPITAL + 17.0 + account.costs)
    assert account.deals == 2  # both recorded, the one that found nothing left too
    # Before the exit's ack: the sync's two deals close the ticket, both the terminal's.
    waiting = [rows[0], order(1, "signal", "sell", agent_state="queued")]
    early = fold(CAPITAL, waiting, [partial, own])
    assert [(t.closed_by, t.volume) for t in early.trades] == [("terminal", 0.5), ("terminal", 1.5)]
    assert settled(early, waiting, [partial, own], seq=None) == []  # its exit may still close it
    # An ack that names no volume: the exit closed all that was open when it came.
    bare = [rows[0], order(1, "signal", "sell", agent_state="executed", agent_price=110.0)]
    assert [(t.closed_by, t.volume) for t in fold(CAPITAL, bare, [partial]).trades] == [
        ("order", 2.0)
    ]


def test_a_terminal_close_is_reported_once_when_the_sessions_own_exit_cannot_close_it() -> None:
    """`settled`: what one session.terminal carries."""
    entry = order(0, "entry", "buy", agent_state="executed", agent_ticket="A", agent_price=100.0)
    stop = deal(0, "S", None, 95.0, 500)
    deals = [stop]
    waiting = order(1, "signal", "sell", agent_state="queued")
    # The sync saw the close while the session's own close was on its way: not final yet.
    rows = [entry, waiting]
    assert settled(fold(CAPITAL, rows, deals), rows, deals, seq=None) == []
    # Rejected (the position was gone): the terminal's close is the one, carried by that ack.
    refused = order(1, "signal", "sell", agent_state="rejected")
    rows = [entry, refused]
    (trade,) = settled(fold(CAPITAL, rows, deals), rows, deals, seq=1)
    assert (trade.closed_by, trade.pnl, trade.exit_ts) == ("terminal", -10.0, 500)
    stop.reported = True
    assert settled(fold(CAPITAL, rows, deals), rows, deals, seq=None) == []
    # Executed: the session's close is the one, at its own ack, and the terminal's is moot.
    stop.reported = False
    done = order(1, "signal", "sell", agent_state="executed", agent_price=99.0)
    rows = [entry, done]
    (trade,) = settled(fold(CAPITAL, rows, deals), rows, deals, seq=1)
    assert (trade.closed_by, trade.exit_seq, trade.pnl) == ("order", 1, -2.0)
    assert settled(fold(CAPITAL, rows, deals), rows, deals, seq=None) == []
    # No exit yet (the model still holds): the sync's close is final at once, and a partial
    # one too, each once.
    rows = [entry]
    half = deal(0, "H", 1.0, 97.0, 400)
    deals = [half, stop]
    closed = settled(fold(CAPITAL, rows, deals), rows, deals, seq=None)
    assert [(t.deal, t.volume) for t in closed] == [("H", 1.0), ("S", 1.0)]
    half.reported = True
    assert [t.deal for t in settled(fold(CAPITAL, rows, deals), rows, deals, seq=None)] == ["S"]


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
