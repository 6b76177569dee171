"""Accounts, tokens and API keys: the gateway's own endpoints (``/api/auth``, ``/api/api-keys``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Call, Flow, Rows, json_object, nothing, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.exchange import refresh

R = TypeVar("R")


def _unauthenticated(path: str, body: JSON) -> Call[JSON]:
    return Call("POST", path, json_object, json=body, authenticated=False)


class Auth(Resource[R]):
    @endpoint
    def register(self, email: str, password: str) -> Flow[JSON]:
        """Create an account (201: the user). 409 when the email is taken; 422 lists every
        password rule broken."""
        return (
            yield from self._call(
                _unauthenticated("/api/auth/register", {"email": email, "password": password})
            )
        )

    @endpoint
    def login(self, email: str, password: str) -> Flow[JSON]:
        """Sign in; the client keeps the access and refresh tokens and uses them from now on.
        The answer is the token pair."""
        pair = yield from self._call(
            _unauthenticated("/api/auth/login", {"email": email, "password": password})
        )
        self._credentials.store(pair)
        return pair

    @endpoint
    def refresh(self) -> Flow[JSON]:
        """Spend the refresh token for a new pair (the client does this by itself on a 401)."""
        return (yield from refresh(self._credentials))

    @endpoint
    def logout(self) -> Flow[None]:
        """End this sign-in (its refresh tokens) and forget the tokens."""
        token = self._credentials.refresh_token
        if token:
            yield from self._call(
                Call(
                    "POST",
                    "/api/auth/logout",
                    nothing,
                    json={"refresh_token": token},
                    authenticated=False,
                )
            )
        self._credentials.forget_tokens()

    @endpoint
    def me(self) -> Flow[JSON]:
        """The user behind the credential, with the credential's ``scopes``."""
        return (yield from self._call(calls.get("/api/auth/me")))

    @endpoint
    def create_api_key(
        self, name: str, scopes: Sequence[str], *, expires_in_days: int | None = None
    ) -> Flow[JSON]:
        """A key limited to ``scopes`` (e.g. ``["backtests:read", "backtests:write"]``). The
        answer's ``key`` is the only time the full key is shown."""
        body: JSON = {"name": name, "scopes": list(scopes)}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return (yield from self._call(calls.post("/api/api-keys", body)))

    @endpoint
    def api_keys(self) -> Flow[Rows]:
        """Your keys, newest first (no secrets); revoked ones carry ``revoked_at``."""
        page = yield from self._call(calls.get("/api/api-keys"))
        return list(page["data"])

    @endpoint
    def revoke_api_key(self, key_id: str) -> Flow[None]:
        yield from self._call(calls.delete(f"/api/api-keys/{segment(key_id)}"))
