"""`SimulatedAccount`: what a terminal's account does, and that a restarted agent finds it as it
was (fills included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from algotrade_sdk.account import Fill, SimulatedAccount, TradeRefused

PRICES = {"EURUSD": 1.2, "GBPUSD": 1.25}


def clock() -> float:
    return 1_717_200_000.5


def test_a_reopened_account_holds_the_same_positions_trades_and_fills(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    account = SimulatedAccount.open_file(path, balance=5_000, currency="EUR", clock=clock)
    kept = account.open("EURUSD", "buy", 2, 1.1, sl=1.0, key="k-open")
    closed = account.open("GBPUSD", "sell", 1, 1.3, key="k-open-2")
    assert closed.ticket is not None and kept.ticket is not None
    account.close(closed.ticket, PRICES.get, key="k-close")
    account.set_trading_allowed(False)

    again = SimulatedAccount.open_file(path, balance=1, currency="USD")
    assert (again.balance, again.currency, again.trading_allowed) == (5_000.05, "EUR", False)
    assert again.positions == account.positions
    assert again.positions[kept.ticket].comment == "k-open"
    assert again.positions[kept.ticket].opened_at_ms == 1_717_200_000_500
    assert again.closed == account.closed
    assert again.fill_for("k-close") == Fill("close", closed.ticket, 1.25, 1.0)
    assert again.fill_for("k-open") == kept
    assert again.equity(PRICES.get) == pytest.approx(5_000.05 + 0.2)
    assert [p.name for p in tmp_path.iterdir()] == ["account.json"]  # no temporary left
    # New tickets continue after the old ones and the closing deal (numbered alike).
    (deal,) = [t.deal for t in again.closed]
    assert deal == str(int(closed.ticket) + 1)
    again.set_trading_allowed(True)
    assert again.open("EURUSD", "buy", 1, 1.2).ticket == str(int(deal) + 1)


def test_orders_are_refused_with_a_reason_and_change_nothing() -> None:
    account = SimulatedAccount()
    ticket = account.open("EURUSD", "buy", 1, 1.1).ticket
    assert ticket is not None
    with pytest.raises(TradeRefused, match="unknown ticket 42"):
        account.modify("42", sl=1.0)
    with pytest.raises(TradeRefused, match="no price for XAUUSD"):
        account.open("XAUUSD", "buy", 1, None)
    account.open("USDJPY", "sell", 1, 150.0)
    with pytest.raises(TradeRefused, match="no price for USDJPY"):
        account.close_all(PRICES.get)
    assert len(account.positions) == 2 and account.closed == []
    account.set_trading_allowed(False)
    with pytest.raises(TradeRefused, match="trading disabled"):
        account.close(ticket, PRICES.get)
    assert ticket in account.positions


def test_modify_keeps_what_it_leaves_out_and_a_second_close_answers_the_first() -> None:
    account = SimulatedAccount()
    ticket = account.open("EURUSD", "sell", 1, 1.3, sl=1.4, tp=1.1).ticket
    assert ticket is not None
    account.modify(ticket, sl=1.35)
    assert (account.positions[ticket].sl, account.positions[ticket].tp) == (1.35, 1.1)
    first = account.close(ticket, PRICES.get)
    assert account.close(ticket, {"EURUSD": 9.9}.get) == first
    assert len(account.closed) == 1
    assert account.balance == pytest.approx(10_000 + 0.1)


def test_a_partial_close_by_hand_leaves_the_rest_and_each_deal_pays_its_commission() -> None:
    account = SimulatedAccount(commission_per_lot=1.0)
    ticket = account.open("EURUSD", "sell", 2, 1.2).ticket
    assert ticket is not None
    account.close_part(ticket, 0.5, 1.1)
    assert account.positions[ticket].volume == 1.5
    account.close_part(ticket, 5.0, 1.0)  # more than is left: the rest
    assert ticket not in account.positions
    assert [(d.volume, d.commission) for d in account.closed] == [(0.5, -0.5), (1.5, -1.5)]
    assert len({d.deal for d in account.closed}) == 2
    assert account.balance == pytest.approx(10_000 + 0.5 * 0.1 + 1.5 * 0.2 - 2.0 - 0.5 - 1.5)
    with pytest.raises(TradeRefused):
        account.close_part(ticket, 1.0, 1.0)
