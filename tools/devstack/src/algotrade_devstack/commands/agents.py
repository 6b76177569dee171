"""``algotrade agent run --simulate``: the reference execution agent on a simulated account."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import console, problems

KEY_ENV = "ALGOTRADE_AGENT_KEY"


def run(
    simulate: bool = typer.Option(
        False, "--simulate", help="trade a simulated account (the only kind for now)"
    ),
    agent_id: str = typer.Option(None, help=f"an agent of yours (its key in ${KEY_ENV})"),
    account: Path = typer.Option(
        Path("algotrade-account.json"), help="the simulated account's file"
    ),
    price: list[str] = typer.Option([], help="SYMBOL=PRICE a simulated price (repeatable)"),
    heartbeat_seconds: float = typer.Option(5.0, help="heartbeat interval"),
) -> None:
    """Run the reference agent: heartbeats, long-polled commands executed with simulated fills,
    trade syncs. Without --agent-id a new agent is registered and its key used (shown once)."""
    if not simulate:
        raise typer.BadParameter("only --simulate is available: the agent trades a file account")
    from algotrade_sdk.agent import main

    key = os.environ.get(KEY_ENV)
    if agent_id is None:
        with problems(), context.client() as client:
            created = client.agents.register(
                {
                    "name": "simulated terminal",
                    "platform": "other",
                    "account_number": "SIM-1",
                    "broker": "simulated",
                    "currency": "USD",
                    "heartbeat_seconds": heartbeat_seconds,
                }
            )
        agent_id, key = created["id"], created["api_key"]
        console.print(f"registered agent {agent_id}; its key is used for this run only")
    if not key:
        raise typer.BadParameter(f"put agent {agent_id}'s key in ${KEY_ENV}")
    os.environ[KEY_ENV] = key
    argv = [
        "--url",
        context.url(),
        "--agent-id",
        agent_id,
        "--key-env",
        KEY_ENV,
        "--account",
        str(account),
        "--heartbeat-seconds",
        str(heartbeat_seconds),
    ]
    for item in price:
        argv += ["--price", item]
    raise typer.Exit(main(argv))
