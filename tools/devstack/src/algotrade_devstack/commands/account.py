"""``algotrade login | whoami | logout``."""

from __future__ import annotations

import typer

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import JSON_OPTION, console, print_json, problems


def login(
    email: str = typer.Option(..., prompt=True, help="your account's email"),
    password: str = typer.Option(..., prompt=True, hide_input=True, help="asked when not given"),
    url: str = typer.Option(None, envvar="ALGOTRADE_URL", help="the gateway (default: stored)"),
) -> None:
    """Log in and keep the tokens in your config directory (readable by you only)."""
    from algotrade_client import Client

    gateway = url or context.url()
    with problems(), Client(gateway) as client:
        client.auth.login(email, password)
        me = client.auth.me()
        path = context.save(
            {"url": gateway, "token": client.token, "refresh_token": client.refresh_token}
        )
    console.print(f"logged in as [bold]{me['email']}[/] at {gateway} (tokens in {path})")


def whoami(as_json: bool = JSON_OPTION) -> None:
    """Who the stored login (or ALGOTRADE_API_KEY) is, and what it may do."""
    with problems(), context.client() as client:
        me = client.auth.me()
    if as_json:
        print_json(me)
    else:
        console.print(f"{me['email']} ({me['id']}) at {context.url()}")
        console.print(f"scopes: {', '.join(me.get('scopes') or [])}")


def logout() -> None:
    """Forget the stored tokens."""
    console.print("logged out" if context.forget() else "not logged in")
