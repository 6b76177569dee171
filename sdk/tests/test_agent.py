"""The reference agent against the real forward-test service and gateway (and market data for
bars), as a trader runs it: registered through the gateway, speaking only with its key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sdk_testkit import Trader, now_ms, running, synced_after

from algotrade_sdk.account import SimulatedAccount
from algotrade_sdk.agent import ReferenceAgent
from algotrade_sdk.bars import Bar
from algotrade_sdk.execution import Execution
from algotrade_sdk.protocol import Command
from algotrade_testkit.plugin import wait_for
from algotrade_testkit.services import ALL_SCOPES, internal_token

pytestmark = pytest.mark.timeout(90)

START = 1_717_200_000  # 2024-06-01 00:00 UTC, a minute boundary


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


async def test_commands_are_executed_acked_and_a_trade_sync_agrees(
    stack: Any, tmp_path: Path
) -> None:
    trader: Trader = await stack.trader()
    account = SimulatedAccount.open_file(tmp_path / "account.json")
    prices = {"EURUSD": 1.1, "GBPUSD": 1.3}
    agent = ReferenceAgent(trader.config(stack.url), account, prices=prices.get)
    async with running(agent):
        opened = await trader.enqueue(
            kind="open", symbol="EURUSD", side="buy", volume=0.5, sl=1.05, tp=1.2,
            idempotency_key="open-eurusd-1",
        )  # fmt: skip
        done = await trader.ended(opened["id"])
        ticket = done["result"]["ticket"]
        assert (done["state"], done["attempts"]) == ("executed", 1)
        assert done["result"] == {"ticket": ticket, "price": 1.1, "volume": 0.5}
        position = account.positions[ticket]
        assert (position.comment, position.open_price, position.sl) == ("open-eurusd-1", 1.1, 1.05)

        modified = await trader.enqueue(kind="modify", ticket=ticket, sl=1.08, tp=1.25)
        assert (await trader.ended(modified["id"]))["state"] == "executed"
        assert (account.positions[ticket].sl, account.positions[ticket].tp) == (1.08, 1.25)

        other = await trader.enqueue(kind="open", symbol="GBPUSD", side="sell", volume=1)
        other_ticket = (await trader.ended(other["id"]))["result"]["ticket"]
        prices["EURUSD"] = 1.15
        closed = await trader.ended((await trader.enqueue(kind="close", ticket=ticket))["id"])
        assert closed["state"] == "executed"
        assert closed["result"] == {"ticket": ticket, "price": 1.15, "volume": 0.5}

        unknown = await trader.ended((await trader.enqueue(kind="close", ticket="999"))["id"])
        assert unknown["state"] == "rejected"
        assert unknown["result"] == {"error": "unknown ticket 999"}
        account.set_trading_allowed(False)
        refused = await trader.enqueue(kind="open", symbol="EURUSD", side="buy", volume=1)
        assert (await trader.ended(refused["id"]))["result"] == {"error": "trading disabled"}
        account.set_trading_allowed(True)

        report = await synced_after(agent)
        assert report["matched"] == 1
        assert report["conflicts"] == 0
        assert report["positions"] == 1
        assert report["unknown_to_server"] == report["missing_on_platform"] == []
        assert report["diverging"] == []

        assert list(account.positions) == [other_ticket]
        assert only(account.closed).ticket == ticket
        assert account.balance == pytest.approx(10_000 + 0.05 * 0.5)
        on_server = only(await trader.positions())
        assert on_server["ticket"] == other_ticket
        assert (on_server["symbol"], on_server["side"], on_server["volume"]) == (
            "GBPUSD", "sell", 1.0,
        )  # fmt: skip
        assert (on_server["open_price"], on_server["origin"]) == (1.3, "command")

        await wait_for(lambda: agent.stats.heartbeats >= 3, within=5)
        seen = (await trader.agent())["connection"]
        assert seen["state"] == "healthy"
        assert seen["latency_ms"] is not None
        assert seen["account"]["open_positions"] == 1
        assert seen["account"]["balance"] == pytest.approx(10_000 + 0.05 * 0.5)
        assert seen["account"]["trade_allowed"] is True
    assert (agent.stats.executed, agent.stats.rejected, agent.stats.replayed) == (4, 2, 0)
    assert (agent.stats.acks, agent.stats.acks_dropped, agent.stats.reconnects) == (6, 0, 0)
    assert agent.stats.sync_conflicts == 0
    reopened = SimulatedAccount.open_file(tmp_path / "account.json")
    assert list(reopened.positions) == [other_ticket]
    assert reopened.fill_for("open-eurusd-1") == account.fill_for("open-eurusd-1")


class AgentDied(Exception):
    """Raised by the hook below: the agent process ends between executing and acking."""


def die_after_executing(command: Command, execution: Execution) -> None:
    raise AgentDied(command["id"])


async def test_a_command_redelivered_after_a_lost_ack_is_acked_from_its_recorded_fill(
    stack: Any, tmp_path: Path
) -> None:
    trader: Trader = await stack.trader()
    path = tmp_path / "account.json"
    account = SimulatedAccount.open_file(path)
    first = ReferenceAgent(
        trader.config(stack.url), account, prices={"EURUSD": 1.1}.get,
        on_executed=die_after_executing,
    )  # fmt: skip
    run = asyncio.create_task(first.run())
    await wait_for(lambda: first.connected, within=10)
    queued = await trader.enqueue(
        kind="open", symbol="EURUSD", side="buy", volume=0.3, idempotency_key="lost-ack-1"
    )
    with pytest.raises(AgentDied):
        await asyncio.wait_for(run, 10)
    fill = account.fill_for("lost-ack-1")
    assert fill is not None and fill.ticket is not None
    leased = await trader.command(queued["id"])
    assert (leased["state"], leased["attempts"]) == ("leased", 1)
    assert [p.comment for p in SimulatedAccount.open_file(path).positions.values()] == [
        "lost-ack-1"
    ]

    # A new agent process on the same account file, with the key from its environment.
    env = {**os.environ, "ALGOTRADE_AGENT_KEY": trader.api_key}
    second = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "algotrade_sdk.agent",
        "--url", stack.url, "--agent-id", trader.agent_id, "--account", str(path),
        "--heartbeat-seconds", "1", "--sync-seconds", "1", "--poll-wait-seconds", "5",
        "--backoff-initial-seconds", "0.1", "--backoff-max-seconds", "0.5",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        done = await trader.ended(queued["id"], within=20)
        acked_at = now_ms()
        assert (done["state"], done["attempts"]) == ("executed", 2)
        assert done["result"] == {"ticket": fill.ticket, "price": 1.1, "volume": 0.3}

        async def synced_since_ack() -> dict[str, Any] | None:
            last = await trader.last_sync()
            return last if last and last["synced_at_ms"] > acked_at + 100 else None

        last = await wait_for(synced_since_ack, within=10, interval=0.2)
        assert (last["matched"], last["conflicts"], last["positions"]) == (1, 0, 1)
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(second.communicate(), 15)
    log = (out + err).decode()
    assert second.returncode == 0, log
    assert "delivered again (attempt 2): acking its recorded fill" in log
    assert trader.api_key not in log
    reopened = SimulatedAccount.open_file(path)
    assert [(p.ticket, p.volume) for p in reopened.positions.values()] == [(fill.ticket, 0.3)]
    assert reopened.closed == []
    on_server = only(await trader.positions())
    assert (on_server["ticket"], on_server["origin"]) == (fill.ticket, "command")


async def test_a_sync_that_contradicts_the_platform_is_reported_never_silently_applied(
    stack: Any, tmp_path: Path
) -> None:
    trader: Trader = await stack.trader()
    account = SimulatedAccount.open_file(tmp_path / "account.json")
    agent = ReferenceAgent(trader.config(stack.url), account, prices={"EURUSD": 1.1}.get)
    async with running(agent):
        kept = await trader.enqueue(kind="open", symbol="EURUSD", side="buy", volume=1, sl=1.05)
        lost = await trader.enqueue(kind="open", symbol="EURUSD", side="sell", volume=2)
        kept_ticket = (await trader.ended(kept["id"]))["result"]["ticket"]
        lost_ticket = (await trader.ended(lost["id"]))["result"]["ticket"]
        calm = await synced_after(agent)
        assert (calm["matched"], calm["conflicts"]) == (2, 0)

        # By hand, between two syncs: a position opened outside any command, a stop loss
        # moved on the chart, and a position the terminal lost track of.
        manual = account.open("EURUSD", "buy", 0.7, 1.12).ticket
        assert manual is not None
        account.edit(kept_ticket, sl=1.07)
        account.forget(lost_ticket)
        report = await synced_after(agent)
        assert report["matched"] == 0
        assert report["conflicts"] == 3
        assert report["positions"] == 2
        assert report["unknown_to_server"] == [
            {"ticket": manual, "symbol": "EURUSD", "action": "adopted", "fields": None}
        ]
        assert report["diverging"] == [
            {
                "ticket": kept_ticket,
                "symbol": "EURUSD",
                "action": "adopted",
                "fields": {"sl": {"server": 1.05, "platform": 1.07}},
            }
        ]
        assert report["missing_on_platform"] == [
            {"ticket": lost_ticket, "symbol": "EURUSD", "action": "flagged", "fields": None}
        ]
        # The account is what the terminal holds: the sync changed nothing in it.
        assert sorted(account.positions) == sorted([kept_ticket, manual])
        assert account.positions[kept_ticket].sl == 1.07
        assert account.positions[manual].comment is None
        by_ticket = {p["ticket"]: p for p in await trader.positions()}
        assert sorted(by_ticket) == sorted([kept_ticket, manual])
        assert (by_ticket[kept_ticket]["sl"], by_ticket[kept_ticket]["origin"]) == (
            1.07, "command",
        )  # fmt: skip
        assert (by_ticket[manual]["origin"], by_ticket[manual]["open_price"]) == (
            "platform", 1.12,
        )  # fmt: skip
        settled = await synced_after(agent)
        assert (settled["matched"], settled["conflicts"]) == (2, 0)
    assert agent.stats.sync_conflicts == 3


async def test_a_partial_close_by_hand_is_reported_closed_with_its_commission(
    stack: Any, tmp_path: Path
) -> None:
    """The trader closes part of a position on the terminal: the next sync lists that deal
    (named, with its commission), and the platform records the smaller position as a partial
    close, not a conflict. Acks carry each execution's commission."""
    trader: Trader = await stack.trader()
    account = SimulatedAccount.open_file(tmp_path / "account.json", commission_per_lot=2.0)
    agent = ReferenceAgent(trader.config(stack.url), account, prices={"EURUSD": 1.1}.get)
    async with running(agent):
        opened = await trader.ended(
            (await trader.enqueue(kind="open", symbol="EURUSD", side="buy", volume=1.5))["id"]
        )
        ticket = opened["result"]["ticket"]
        assert opened["result"] == {"ticket": ticket, "price": 1.1, "volume": 1.5,
                                    "commission": -3.0}  # fmt: skip
        assert (await synced_after(agent))["conflicts"] == 0

        account.close_part(ticket, 0.5, 1.2)
        report = await synced_after(agent)
        assert (report["conflicts"], report["matched"]) == (0, 0)
        assert report["diverging"] == [
            {
                "ticket": ticket,
                "symbol": "EURUSD",
                "action": "closed",
                "fields": {"volume": {"server": 1.5, "platform": 1.0}},
            }
        ]
        assert only(await trader.positions())["volume"] == 1.0
        deal = only(account.closed)
        assert (deal.volume, deal.commission, deal.deal is not None) == (0.5, -1.0, True)
        assert (await synced_after(agent))["matched"] == 1  # the record holds the rest

        closed = await trader.ended((await trader.enqueue(kind="close", ticket=ticket))["id"])
        assert closed["result"] == {"ticket": ticket, "price": 1.1, "volume": 1.0,
                                    "commission": -2.0}  # fmt: skip
    assert account.balance == pytest.approx(10_000 + 0.5 * 0.1 - 3.0 - 1.0 - 2.0)
    assert agent.stats.sync_conflicts == 0


async def test_a_modify_of_the_stop_loss_alone_keeps_the_take_profit_on_both_sides(
    stack: Any, tmp_path: Path
) -> None:
    trader: Trader = await stack.trader()
    account = SimulatedAccount.open_file(tmp_path / "account.json")
    agent = ReferenceAgent(trader.config(stack.url), account, prices={"EURUSD": 1.1}.get)
    async with running(agent):
        opened = await trader.enqueue(
            kind="open", symbol="EURUSD", side="buy", volume=1, sl=1.05, tp=1.2
        )
        ticket = (await trader.ended(opened["id"]))["result"]["ticket"]
        moved = await trader.enqueue(kind="modify", ticket=ticket, sl=1.08)
        assert (await trader.ended(moved["id"]))["state"] == "executed"
        assert (account.positions[ticket].sl, account.positions[ticket].tp) == (1.08, 1.2)
        report = await synced_after(agent)
        assert report["diverging"] == []
        assert (report["matched"], report["conflicts"]) == (1, 0)


def minute_bar(i: int) -> Bar:
    close = 1.1 + i / 1000
    return Bar("EURUSD", "1m", START + 60 * i, close - 0.0005, close + 0.001, close - 0.001,
               close, 100.0 + i)  # fmt: skip


async def test_the_agent_rides_out_a_restart_of_the_platform_losing_no_bar_and_no_command(
    make_stack: Any, tmp_path: Path
) -> None:
    async with make_stack(market=True) as stack:
        trader: Trader = await stack.trader()
        account = SimulatedAccount.open_file(tmp_path / "account.json")
        agent = ReferenceAgent(trader.config(stack.url), account)
        async with running(agent):
            for i in range(3):
                agent.push_bar(minute_bar(i))
            await wait_for(lambda: agent.stats.bars_accepted == 3, within=10)

            await stack.gateway.stop()
            await stack.forward.stop()
            await wait_for(lambda: not agent.connected, within=5)
            for i in (3, 4, 2, 5, 6, 7):  # bar 2 again: market data has it already
                agent.push_bar(minute_bar(i))
            await asyncio.sleep(1.0)  # a few reconnect attempts meanwhile
            assert len(agent.bars) == 6
            assert agent.stats.bars_accepted == 3

            # The service is back first: the trader's commands wait in its queue (queued
            # here directly, with the token the gateway would forward, as the gateway is
            # still down), then the gateway comes back.
            await stack.forward.start()
            user = {
                "Authorization": "Bearer "
                + internal_token(stack.gateway_settings, trader.user_id, ALL_SCOPES)
            }
            queued = []
            async with httpx.AsyncClient(base_url=stack.forward.url, timeout=10) as direct:
                for body in (
                    {"kind": "open", "symbol": "EURUSD", "side": "buy", "volume": 2},
                    {"kind": "info", "message": "back after maintenance"},
                ):
                    answer = await direct.post(
                        f"/api/agents/{trader.agent_id}/commands", json=body, headers=user
                    )
                    assert answer.status_code == 201, answer.text
                    queued.append(answer.json()["id"])
            await asyncio.sleep(0.5)
            assert not agent.connected
            await stack.gateway.start()

            opened, told = [await trader.ended(command_id) for command_id in queued]
            assert (opened["state"], opened["attempts"]) == ("executed", 1)
            assert opened["result"]["price"] == minute_bar(7).close  # the last bar closed
            assert (told["state"], told["attempts"]) == ("executed", 1)
            await wait_for(lambda: len(agent.bars) == 0, within=10)
            assert agent.connected
            stats = agent.stats
            assert (stats.bars_queued, stats.bars_accepted, stats.bars_duplicate) == (9, 8, 1)
            assert (stats.bars_corrected, stats.bars_rejected) == (0, 0)
            assert stats.reconnects == 1
            assert stats.disconnects == 1

            history = await stack.client.get(
                "/api/market/symbols/EURUSD/bars",
                params={"timeframe": "1m"},
                headers=trader.headers,
            )
            assert history.status_code == 200, history.text
            bars = history.json()["bars"]
            assert [b["close"] for b in bars] == [minute_bar(i).close for i in range(8)]
            assert [b["volume"] for b in bars] == [100.0 + i for i in range(8)]
            assert bars[0]["ts"].startswith("2024-06-01T00:00:00")
            assert bars[7]["ts"].startswith("2024-06-01T00:07:00")
            ticket = opened["result"]["ticket"]
            assert list(account.positions) == [ticket]
            assert only(await trader.positions())["ticket"] == ticket


class AckLostOnce(httpx.AsyncHTTPTransport):
    """A network that drops the agent's first ack: the connection fails before it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ack") and not self.dropped:
            self.dropped += 1
            raise httpx.ConnectError("dropped by the test", request=request)
        return await super().handle_async_request(request)


async def test_an_ack_that_cannot_be_sent_is_kept_and_sent_first_when_the_link_is_back(
    stack: Any, tmp_path: Path
) -> None:
    trader: Trader = await stack.trader()
    account = SimulatedAccount.open_file(tmp_path / "account.json")
    network = AckLostOnce()
    agent = ReferenceAgent(
        trader.config(stack.url), account, prices={"EURUSD": 1.1}.get, transport=network
    )
    async with running(agent):
        queued = await trader.enqueue(kind="open", symbol="EURUSD", side="buy", volume=1)
        done = await trader.ended(queued["id"])
        assert (done["state"], done["attempts"]) == ("executed", 1)
        assert done["result"]["ticket"] == only(list(account.positions))
        assert network.dropped == 1
        assert (agent.stats.disconnects, agent.stats.reconnects) == (1, 1)
        assert (agent.stats.executed, agent.stats.replayed, agent.stats.acks) == (1, 0, 1)
        assert agent.pending_acks == 0
