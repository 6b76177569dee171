"""``algotrade notifications status | set``: the notification service's families through the
gateway, with a credential from ``ALGOTRADE_TOKEN`` (an access token or an API key)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

FAMILY_COLUMNS = ("mode", "pushed", "deliveries", "withheld", "subscribers")


class CommandFailed(Exception):
    """The gateway refused or could not be reached; the message says why."""


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _request(method: str, url: str, token: str, body: Any = None) -> dict[str, Any]:
    """The JSON answer of one call to the gateway; `CommandFailed` saying why otherwise."""
    try:
        response = httpx.request(method, url, headers=_headers(token), json=body, timeout=10)
    except httpx.HTTPError as exc:
        raise CommandFailed(f"the gateway at {url} is unreachable: {type(exc).__name__}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise CommandFailed(f"{method} {response.url.path}: {response.status_code} {detail}")
    return dict(response.json())


def fetch_status(gateway: str, token: str) -> dict[str, Any]:
    return _request("GET", f"{gateway}/api/notifications/status", token)


def set_mode(
    gateway: str, token: str, family: str, mode: str, reason: str | None
) -> dict[str, Any]:
    body = {"mode": mode, "reason": reason}
    return _request("PUT", f"{gateway}/api/notifications/features/{family}", token, body)


def status_table(status: dict[str, Any], now: float | None = None) -> Table:
    """One row per family: mode, pushes, subscribers, parity and the age of its last message."""
    now = time.time() if now is None else now
    table = Table(
        title=(
            f"notifications: {status['sockets']} sockets, {status['subscriptions']} "
            f"subscriptions, {status['instances']} instance(s)"
        )
    )
    table.add_column("family")
    for column in FAMILY_COLUMNS:
        table.add_column(column, justify="right" if column != "mode" else "left")
    table.add_column("parity checked", justify="right")
    table.add_column("mismatches", justify="right")
    table.add_column("last message", justify="right")
    for family, row in status["families"].items():
        last = row["last_message_at"]
        table.add_row(
            family,
            *(str(row[c]) for c in FAMILY_COLUMNS),
            str(row["parity"]["checked"]),
            str(row["parity"]["mismatches"]),
            "-" if last is None else f"{max(0.0, now - last):.1f}s ago",
        )
    return table


def print_status(gateway: str, token: str, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # piped or captured: whole rows, no truncation
    console.print(status_table(fetch_status(gateway, token)))
