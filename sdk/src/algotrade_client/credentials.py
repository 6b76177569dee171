"""`Credentials`: what a client authenticates with (an access token and its refresh token, or
an API key), shared by every resource of one client, and never shown.

An access token goes in ``Authorization: Bearer``; an API key in ``X-API-Key``. When both are
set (an API-key client that then logged in), the token wins. ``generation`` counts the token
changes, so a call that got a 401 can tell whether someone refreshed since it was sent.
"""

from __future__ import annotations

import threading
from typing import Any


class Credentials:
    def __init__(
        self,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.token = token
        self.refresh_token = refresh_token
        self.api_key = api_key
        self.generation = 0
        # Held by the one flow refreshing; others wait for it (a refresh token is spent on use,
        # and presenting a spent one again makes the gateway revoke the whole session).
        self._refreshing = threading.Lock()

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {}

    def websocket_credential(self) -> str | None:
        """What goes in the ``bearer.<credential>`` subprotocol: the token, else the key."""
        return self.token or self.api_key

    def store(self, pair: dict[str, Any]) -> None:
        """Keep a `TokenPair` answer (login, refresh, password change)."""
        self.token = str(pair["access_token"])
        if pair.get("refresh_token"):
            self.refresh_token = str(pair["refresh_token"])
        self.generation += 1

    def forget_tokens(self) -> None:
        self.token = None
        self.refresh_token = None
        self.generation += 1

    def try_begin_refresh(self) -> bool:
        return self._refreshing.acquire(blocking=False)

    def end_refresh(self) -> None:
        self._refreshing.release()

    def describe(self) -> str:
        """Which kinds of credential are held, for reprs (never their values)."""
        kinds = [
            name
            for name, value in (
                ("token", self.token),
                ("refresh_token", self.refresh_token),
                ("api_key", self.api_key),
            )
            if value
        ]
        return "+".join(kinds) or "none"

    def __repr__(self) -> str:
        return f"Credentials({self.describe()})"
