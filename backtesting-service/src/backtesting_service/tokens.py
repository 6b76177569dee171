"""Internal tokens this service mints to call other services on a job's user's behalf.

A job runs long after the request that created it, so the worker cannot forward the caller's
token. It signs its own short-lived internal token for the same user (the platform's shared
signing key, as the gateway does), holding only the scope the call needs, so the other
service applies that user's ownership rules.
"""

from __future__ import annotations

from algotrade.auth import KeySet, Principal, TokenIssuer
from algotrade.config import ServiceSettings


class ServiceTokens:
    def __init__(self, settings: ServiceSettings, *, ttl_seconds: int) -> None:
        self._issuer = TokenIssuer(KeySet.from_settings(settings), issuer=settings.jwt_issuer)
        self._audience = settings.internal_token_audience
        self._ttl = ttl_seconds

    def for_user(self, user_id: str, *scopes: str) -> str:
        principal = Principal(user_id=user_id, scopes=frozenset(scopes))
        return self._issuer.issue(
            principal,
            audience=self._audience,
            token_type="internal",  # noqa: S106 - a token kind, not a secret
            ttl_seconds=self._ttl,
        )
