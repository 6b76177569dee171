"""Errors of forward-test sessions, rooted at `algotrade.errors.AlgoTradeError`."""

from __future__ import annotations

from algotrade.errors import ValidationFailed


class SessionInvalid(ValidationFailed):
    """A session that cannot start as asked; ``errors`` locate each problem."""

    title = "Invalid session"
    code = "session_invalid"


def invalid(loc: str, code: str, message: str, detail: str | None = None) -> SessionInvalid:
    """A `SessionInvalid` naming one problem of the request body's field ``loc``."""
    return SessionInvalid(
        detail or message, errors=[{"loc": ["body", loc], "code": code, "message": message}]
    )
