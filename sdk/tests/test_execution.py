"""`CommandExecutor`: commands on the account, acks, and no second execution of a key."""

from __future__ import annotations

from algotrade_sdk.account import SimulatedAccount
from algotrade_sdk.execution import CommandExecutor
from algotrade_sdk.protocol import Command


def command(kind: str, key: str, attempts: int = 1, **body: object) -> Command:
    return {  # type: ignore[return-value,misc]
        "id": f"cmd-{key}",
        "kind": kind,
        "idempotency_key": key,
        "attempts": attempts,
        "expires_at_ms": 0,
        **body,
    }


def test_a_command_delivered_again_is_answered_from_its_fill_not_executed_twice() -> None:
    account = SimulatedAccount()
    executor = CommandExecutor(account, {"EURUSD": 1.1}.get)
    open_ = command("open", "k1", symbol="EURUSD", side="buy", volume=0.5)
    first = executor.execute(open_)
    assert not first.replayed
    assert first.ack == {"outcome": "executed", "ticket": "1000001", "price": 1.1, "volume": 0.5}
    again = CommandExecutor(account, {"EURUSD": 2.0}.get).execute({**open_, "attempts": 2})
    assert again.replayed and again.ack == first.ack
    assert len(account.positions) == 1


def test_refusals_are_rejected_acks_and_unreadable_commands_failed_ones() -> None:
    executor = CommandExecutor(SimulatedAccount(), {}.get)
    assert executor.execute(command("close", "k2", ticket="7")).ack == {
        "outcome": "rejected",
        "error": "unknown ticket 7",
    }
    assert executor.execute(command("open", "k3", symbol="EURUSD", side="buy", volume=1)).ack == {
        "outcome": "rejected",
        "error": "no price for EURUSD",
    }
    failed = executor.execute(command("open", "k4", symbol="EURUSD"))
    assert failed.ack["outcome"] == "failed"
    assert "the command has no side" in failed.ack["error"]
    assert executor.execute(command("info", "k5", message="hello")).ack == {"outcome": "executed"}
