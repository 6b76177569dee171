"""What a shadow push says the resource's REST answer must show (`parity.expectation`)."""

from __future__ import annotations

from algotrade import session_events
from notification_service.parity import expectation

TERMINAL = {
    "position": 2.0,
    "cash": 9_800.0,
    "realized_pnl": 0.0,
    "costs": -1.5,
    "open_tickets": 1,
    "trades": 0,
    "executed": 1,
    "refused": 0,
    "pending": 0,
}


def rest(**over: object) -> dict[str, object]:
    account = {
        "position": 2.0,
        "cash": 9_800.0,
        "equity": 10_002.0,
        "realized_pnl": 0.0,
        "costs": -1.5,
        "open_tickets": 1,
        "trades": 0,
        "orders": {"executed": 1, "refused": 0, "pending": 0},
        **over,
    }
    return {"terminal": account}


def test_a_terminal_push_agrees_differs_or_has_moved_on() -> None:
    check = expectation(session_events.TERMINAL, TERMINAL)
    assert check is not None
    assert check(rest()) is True
    assert check(rest(cash=9_700.0)) is False
    assert check(rest(costs=-3.0)) is False
    assert check(rest(trades=1)) is False
    assert check(rest(orders={"executed": 2, "refused": 0, "pending": 0})) is None
    assert check(rest(deals=1, cash=9_900.0)) is None  # a sync recorded a deal since
    assert check({"terminal": None}) is False


def test_an_equity_push_is_checked_at_its_own_bar_only() -> None:
    pushed = {"bars_applied": 5, "equity": 10.0, "cash": 4.0, "position": 1.0}
    check = expectation(session_events.EQUITY, pushed)
    assert check is not None
    assert check({"bars_applied": 5, "equity": 10.0, "cash": 4.0, "position": 1.0}) is True
    assert check({"bars_applied": 5, "equity": 11.0, "cash": 4.0, "position": 1.0}) is False
    assert check({"bars_applied": 6, "equity": 11.0, "cash": 4.0, "position": 1.0}) is None
    assert expectation(session_events.ORDER_FILLED, {}) is None
